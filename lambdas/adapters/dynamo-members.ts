import { DeleteCommand, GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Membership, MembershipStore } from '../ports.js';
import { callAws } from './aws-errors.js';
import { getAll, queryAll } from './dynamo-batch.js';

const WHAT = 'the membership table';
const sinceSeqOf = (value: unknown) => (typeof value === 'number' && Number.isSafeInteger(value) ? value : 0);

/**
 * Conversation membership: one item per (conversationId, userId). `sinceSeq` is the conversation's last seq when
 * the member was (re-)added: their devices collect only what comes after it. Items written before it existed
 * count from 0.
 */
export class DynamoMembershipStore implements MembershipStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async get(conversationId: string, userId: string): Promise<Membership | undefined> {
    const result = await callAws(WHAT, () =>
      this.db.send(
        new GetCommand({ TableName: this.tableName, Key: { conversationId, userId }, ProjectionExpression: 'userId, sinceSeq' }),
      ),
    );
    if (result.Item === undefined) return undefined;
    return { conversationId, userId, sinceSeq: sinceSeqOf(result.Item.sinceSeq) };
  }

  async getMany(userId: string, conversationIds: readonly string[]): Promise<Map<string, Membership>> {
    const keys = [...new Set(conversationIds)].map((conversationId) => ({ conversationId, userId }));
    const items = await getAll(this.db, this.tableName, WHAT, keys, { consistent: true });
    const found = new Map<string, Membership>();
    for (const item of items) {
      if (typeof item.conversationId !== 'string') continue;
      found.set(item.conversationId, { conversationId: item.conversationId, userId, sinceSeq: sinceSeqOf(item.sinceSeq) });
    }
    return found;
  }

  async list(conversationId: string): Promise<string[]> {
    const items = await queryAll(this.db, WHAT, {
      TableName: this.tableName,
      KeyConditionExpression: 'conversationId = :c',
      ExpressionAttributeValues: { ':c': conversationId },
      ProjectionExpression: 'userId',
      ConsistentRead: true,
    });
    return items.flatMap((item) => (typeof item.userId === 'string' ? [item.userId] : []));
  }

  async isMember(conversationId: string, userId: string): Promise<boolean> {
    return (await this.get(conversationId, userId)) !== undefined;
  }

  async add(conversationId: string, userId: string, sinceSeq: number): Promise<void> {
    await callAws(WHAT, () =>
      this.db.send(new PutCommand({ TableName: this.tableName, Item: { conversationId, userId, sinceSeq, addedAt: Date.now() } })),
    );
  }

  async remove(conversationId: string, userId: string): Promise<void> {
    await callAws(WHAT, () =>
      this.db.send(new DeleteCommand({ TableName: this.tableName, Key: { conversationId, userId } })),
    );
  }
}

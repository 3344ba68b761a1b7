import { DeleteCommand, GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Membership, MembershipStore } from '../ports.js';
import { callAws } from './aws-errors.js';

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
    const result = await callAws('the membership table', () =>
      this.db.send(
        new GetCommand({ TableName: this.tableName, Key: { conversationId, userId }, ProjectionExpression: 'userId, sinceSeq' }),
      ),
    );
    if (result.Item === undefined) return undefined;
    const sinceSeq = result.Item.sinceSeq;
    return { conversationId, userId, sinceSeq: typeof sinceSeq === 'number' && Number.isSafeInteger(sinceSeq) ? sinceSeq : 0 };
  }

  async isMember(conversationId: string, userId: string): Promise<boolean> {
    return (await this.get(conversationId, userId)) !== undefined;
  }

  async add(conversationId: string, userId: string, sinceSeq: number): Promise<void> {
    await callAws('the membership table', () =>
      this.db.send(new PutCommand({ TableName: this.tableName, Item: { conversationId, userId, sinceSeq, addedAt: Date.now() } })),
    );
  }

  async remove(conversationId: string, userId: string): Promise<void> {
    await callAws('the membership table', () =>
      this.db.send(new DeleteCommand({ TableName: this.tableName, Key: { conversationId, userId } })),
    );
  }
}

import { DeleteCommand, GetCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { MEMBER_USER_INDEX } from '../../deploy/tables.js';
import type { Membership, MembershipPage, MembershipStore, ReadMark } from '../ports.js';
import { callAws, isConditionFailure } from './aws-errors.js';
import { getAll, queryAll } from './dynamo-batch.js';

const WHAT = 'the membership table';
const sinceSeqOf = (value: unknown) => (typeof value === 'number' && Number.isSafeInteger(value) ? value : 0);
/** A membership from its stored item (a read position never written is 0). */
const membershipOf = (conversationId: string, userId: string, item: Record<string, unknown>): Membership => ({
  conversationId,
  userId,
  sinceSeq: sinceSeqOf(item.sinceSeq),
  readSeq: sinceSeqOf(item.readSeq),
});

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
        new GetCommand({ TableName: this.tableName, Key: { conversationId, userId }, ProjectionExpression: 'userId, sinceSeq, readSeq' }),
      ),
    );
    if (result.Item === undefined) return undefined;
    return membershipOf(conversationId, userId, result.Item);
  }

  async getMany(userId: string, conversationIds: readonly string[]): Promise<Map<string, Membership>> {
    const keys = [...new Set(conversationIds)].map((conversationId) => ({ conversationId, userId }));
    const items = await getAll(this.db, this.tableName, WHAT, keys, { consistent: true });
    const found = new Map<string, Membership>();
    for (const item of items) {
      if (typeof item.conversationId !== 'string') continue;
      found.set(item.conversationId, membershipOf(item.conversationId, userId, item));
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

  /**
   * An update, not a put: a re-add of a current member keeps their read position (it never moves backwards); a
   * new member's starts at `sinceSeq`, so what was sent before they joined is not unread. A member removed and
   * added again starts at the re-add's `sinceSeq`, which is at or above any position they had reached.
   */
  async add(conversationId: string, userId: string, sinceSeq: number): Promise<void> {
    await callAws(WHAT, () =>
      this.db.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { conversationId, userId },
          UpdateExpression: 'SET sinceSeq = :s, addedAt = :now, readSeq = if_not_exists(readSeq, :s)',
          ExpressionAttributeValues: { ':s': sinceSeq, ':now': Date.now() },
        }),
      ),
    );
  }

  async remove(conversationId: string, userId: string): Promise<void> {
    await callAws(WHAT, () =>
      this.db.send(new DeleteCommand({ TableName: this.tableName, Key: { conversationId, userId } })),
    );
  }

  async listByUser(userId: string, page: { limit: number; after?: string }): Promise<MembershipPage> {
    const limit = Math.max(1, Math.floor(page.limit));
    const bounds =
      page.after === undefined
        ? { KeyConditionExpression: 'userId = :u', ExpressionAttributeValues: { ':u': userId } }
        : { KeyConditionExpression: 'userId = :u AND conversationId > :after', ExpressionAttributeValues: { ':u': userId, ':after': page.after } };
    const memberships: Membership[] = [];
    let startKey: Record<string, unknown> | undefined;
    // One more than the page, so a full page knows whether there is more without another request.
    do {
      const result = await callAws(WHAT, () =>
        this.db.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: MEMBER_USER_INDEX,
            ...bounds,
            Limit: limit + 1 - memberships.length,
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      for (const item of result.Items ?? []) {
        if (typeof item.conversationId === 'string') memberships.push(membershipOf(item.conversationId, userId, item));
      }
      startKey = result.LastEvaluatedKey;
    } while (startKey !== undefined && memberships.length <= limit);
    const listed = memberships.slice(0, limit);
    const last = listed[listed.length - 1];
    return memberships.length > limit && last !== undefined ? { memberships: listed, nextAfter: last.conversationId } : { memberships: listed };
  }

  async raiseReadSeq(conversationId: string, userId: string, seq: number): Promise<ReadMark | undefined> {
    // A position is never below 0: raising to 0 can only be answered with the stored one.
    if (seq > 0) {
      try {
        await callAws(WHAT, () =>
          this.db.send(
            new UpdateCommand({
              TableName: this.tableName,
              Key: { conversationId, userId },
              UpdateExpression: 'SET readSeq = :s',
              // The membership must exist (a non-member gets no item), and the position only moves forward.
              ConditionExpression: 'attribute_exists(userId) AND (attribute_not_exists(readSeq) OR readSeq < :s)',
              ExpressionAttributeValues: { ':s': seq },
            }),
          ),
        );
        return { readSeq: seq, moved: true };
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
      }
    }
    const result = await callAws(WHAT, () =>
      this.db.send(
        new GetCommand({ TableName: this.tableName, Key: { conversationId, userId }, ProjectionExpression: 'readSeq', ConsistentRead: true }),
      ),
    );
    return result.Item === undefined ? undefined : { readSeq: sinceSeqOf(result.Item.readSeq), moved: false };
  }
}

import { DeleteCommand, GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { MembershipStore } from '../ports.js';
import { callAws } from './aws-errors.js';

/** Conversation membership: one item per (conversationId, userId). */
export class DynamoMembershipStore implements MembershipStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async isMember(conversationId: string, userId: string): Promise<boolean> {
    const result = await callAws('the membership table', () =>
      this.db.send(
        new GetCommand({ TableName: this.tableName, Key: { conversationId, userId }, ProjectionExpression: 'userId' }),
      ),
    );
    return result.Item !== undefined;
  }

  async add(conversationId: string, userId: string): Promise<void> {
    await callAws('the membership table', () =>
      this.db.send(new PutCommand({ TableName: this.tableName, Item: { conversationId, userId, addedAt: Date.now() } })),
    );
  }

  async remove(conversationId: string, userId: string): Promise<void> {
    await callAws('the membership table', () =>
      this.db.send(new DeleteCommand({ TableName: this.tableName, Key: { conversationId, userId } })),
    );
  }
}

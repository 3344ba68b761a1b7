import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import type { Clock, ConnectionRecord, ConnectionRegistry } from '../ports.js';
import { CONVERSATION_INDEX } from '../../deploy/tables.js';
import { callAws } from './aws-errors.js';

const BINDING_CACHE_LIMIT = 10_000;

/**
 * Connection registry in DynamoDB: keyed by connection id, queried by conversation through the GSI.
 *
 * `get` remembers what it found: a connection's binding never changes and its id is never reused, so a
 * container answers later frames of the same connection without a read (rows removed here are forgotten;
 * a connection removed elsewhere sends no more frames).
 */
export class DynamoConnectionRegistry implements ConnectionRegistry {
  private readonly bindings = new Map<string, ConnectionRecord>();

  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly clock: Clock,
  ) {}

  async register(record: ConnectionRecord): Promise<void> {
    await callAws('the connection registry', () =>
      this.db.send(new PutCommand({ TableName: this.tableName, Item: { ...record } })),
    );
  }

  async get(connectionId: string): Promise<ConnectionRecord | undefined> {
    const cached = this.bindings.get(connectionId);
    if (cached !== undefined) {
      if (this.isLive(cached)) return cached;
      this.bindings.delete(connectionId);
    }
    const result = await callAws('the connection registry', () =>
      this.db.send(new GetCommand({ TableName: this.tableName, Key: { connectionId }, ConsistentRead: true })),
    );
    const record = toRecord(result.Item);
    if (record === undefined || !this.isLive(record)) return undefined;
    // Oldest first out: a Map keeps insertion order.
    if (this.bindings.size >= BINDING_CACHE_LIMIT) {
      const oldest = this.bindings.keys().next();
      if (oldest.done !== true) this.bindings.delete(oldest.value);
    }
    this.bindings.set(connectionId, record);
    return record;
  }

  async listByConversation(conversationId: string): Promise<ConnectionRecord[]> {
    const records: ConnectionRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    // Expired rows are filtered here, so correctness never waits for TTL (which dynalite does not have).
    const nowSeconds = Math.floor(this.clock.now() / 1000);
    do {
      const page = await callAws('the connection registry', () =>
        this.db.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: CONVERSATION_INDEX,
            KeyConditionExpression: 'conversationId = :c',
            FilterExpression: 'expiresAt > :now',
            ExpressionAttributeValues: { ':c': conversationId, ':now': nowSeconds },
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      for (const item of page.Items ?? []) {
        const record = toRecord(item);
        if (record !== undefined) records.push(record);
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
    return records;
  }

  async remove(connectionId: string): Promise<void> {
    this.bindings.delete(connectionId);
    await callAws('the connection registry', () =>
      this.db.send(new DeleteCommand({ TableName: this.tableName, Key: { connectionId } })),
    );
  }

  private isLive(record: ConnectionRecord): boolean {
    return record.expiresAt * 1000 > this.clock.now();
  }
}

function toRecord(item: Record<string, unknown> | undefined): ConnectionRecord | undefined {
  if (item === undefined) return undefined;
  const { connectionId, userId, deviceId, conversationId, connectedAt, expiresAt } = item;
  if (
    typeof connectionId !== 'string' ||
    typeof userId !== 'string' ||
    typeof deviceId !== 'string' ||
    typeof conversationId !== 'string' ||
    typeof connectedAt !== 'number' ||
    typeof expiresAt !== 'number'
  ) {
    return undefined;
  }
  return { connectionId, userId, deviceId, conversationId, connectedAt, expiresAt };
}

import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import type { Clock, ConnectionRecord, ConnectionRegistry, RemovedConnection, Subscription } from '../ports.js';
import { CONVERSATION_INDEX } from '../../deploy/tables.js';
import { callAws, isConditionFailure } from './aws-errors.js';
import { getAll, queryAll, writeAll } from './dynamo-batch.js';

const RECORD_CACHE_LIMIT = 10_000;
const CONNECTION_ENTRY = '#connection';
const USER_ENTRY = '#connections';
const SUBSCRIPTION_PREFIX = 'c#';
const WHAT = 'the connection registry';

const subscriptionEntry = (conversationId: string) => `${SUBSCRIPTION_PREFIX}${conversationId}`;
/** A user's set of open connections; `#` never occurs in an API Gateway connection id, so the keys cannot meet. */
const userKey = (userId: string) => ({ connectionId: `user#${encodeURIComponent(userId)}`, entry: USER_ENTRY });

/**
 * The connection registry in DynamoDB (deploy/tables.ts, `connectionsTable`): a connection's record and its
 * subscriptions share its partition; the conversation index lists a conversation's subscriptions; each user
 * has one item holding the ids of their open connections, updated with a conditional write so the per-user
 * limit holds however many connects race.
 *
 * `connection` remembers what it found: a connection's record never changes and its id is never reused, so a
 * container answers later frames of the same connection without reading it again. Subscriptions change, so
 * they are always read (strongly consistent: a frame right after its `subscribe` sees it).
 */
export class DynamoConnectionRegistry implements ConnectionRegistry {
  private readonly records = new Map<string, ConnectionRecord>();

  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly clock: Clock,
  ) {}

  async open(record: ConnectionRecord, maxPerUser: number): Promise<boolean> {
    // The record first, then the slot: an id in a user's set without its record is then surely gone (removed, or
    // its open refused), so releasing such slots can never free one whose record is still being written.
    const item = { ...record, entry: CONNECTION_ENTRY };
    await callAws(WHAT, () => this.db.send(new PutCommand({ TableName: this.tableName, Item: item })));
    if (await this.claimSlot(record, maxPerUser)) return true;
    if ((await this.releaseStaleSlots(record.userId)) > 0 && (await this.claimSlot(record, maxPerUser))) return true;
    // Refused: leave nothing behind.
    await callAws(WHAT, () =>
      this.db.send(new DeleteCommand({ TableName: this.tableName, Key: { connectionId: record.connectionId, entry: CONNECTION_ENTRY } })),
    );
    return false;
  }

  async connection(connectionId: string): Promise<ConnectionRecord | undefined> {
    const cached = this.records.get(connectionId);
    if (cached !== undefined) {
      if (this.isLive(cached)) return cached;
      this.records.delete(connectionId);
    }
    const result = await callAws(WHAT, () =>
      this.db.send(
        new GetCommand({ TableName: this.tableName, Key: { connectionId, entry: CONNECTION_ENTRY }, ConsistentRead: true }),
      ),
    );
    const record = toRecord(result.Item);
    if (record === undefined || !this.isLive(record)) return undefined;
    // Oldest first out: a Map keeps insertion order.
    if (this.records.size >= RECORD_CACHE_LIMIT) {
      const oldest = this.records.keys().next();
      if (oldest.done !== true) this.records.delete(oldest.value);
    }
    this.records.set(connectionId, record);
    return record;
  }

  async subscription(connectionId: string, conversationId: string): Promise<Subscription | undefined> {
    const result = await callAws(WHAT, () =>
      this.db.send(
        new GetCommand({
          TableName: this.tableName,
          Key: { connectionId, entry: subscriptionEntry(conversationId) },
          ConsistentRead: true,
        }),
      ),
    );
    const subscription = toSubscription(result.Item);
    return subscription !== undefined && this.isLive(subscription) ? subscription : undefined;
  }

  async subscriptionsOf(connectionId: string): Promise<string[]> {
    const items = await queryAll(this.db, WHAT, {
      TableName: this.tableName,
      KeyConditionExpression: 'connectionId = :id AND begins_with(#entry, :prefix)',
      ExpressionAttributeNames: { '#entry': 'entry' },
      ExpressionAttributeValues: { ':id': connectionId, ':prefix': SUBSCRIPTION_PREFIX },
      ProjectionExpression: 'conversationId',
      ConsistentRead: true,
    });
    return items.flatMap((item) => (typeof item.conversationId === 'string' ? [item.conversationId] : []));
  }

  async subscribe(record: ConnectionRecord, conversationIds: readonly string[], now: number): Promise<void> {
    await writeAll(
      this.db,
      this.tableName,
      WHAT,
      conversationIds.map((conversationId) => ({
        PutRequest: { Item: { ...record, entry: subscriptionEntry(conversationId), conversationId, subscribedAt: now } },
      })),
    );
  }

  async unsubscribe(connectionId: string, conversationIds: readonly string[]): Promise<void> {
    await writeAll(
      this.db,
      this.tableName,
      WHAT,
      conversationIds.map((conversationId) => ({ DeleteRequest: { Key: { connectionId, entry: subscriptionEntry(conversationId) } } })),
    );
  }

  async listByConversation(conversationId: string): Promise<Subscription[]> {
    // Expired rows are filtered here, so correctness never waits for TTL (which dynalite does not have).
    const items = await queryAll(this.db, WHAT, {
      TableName: this.tableName,
      IndexName: CONVERSATION_INDEX,
      KeyConditionExpression: 'conversationId = :c',
      FilterExpression: 'expiresAt > :now',
      ExpressionAttributeValues: { ':c': conversationId, ':now': Math.floor(this.clock.now() / 1000) },
    });
    return items.flatMap((item) => {
      const subscription = toSubscription(item);
      return subscription === undefined ? [] : [subscription];
    });
  }

  async devicesSubscribed(userId: string, conversationId: string): Promise<Set<string>> {
    const result = await callAws(WHAT, () =>
      this.db.send(new GetCommand({ TableName: this.tableName, Key: userKey(userId), ConsistentRead: true })),
    );
    const open = result.Item?.open;
    const ids = open instanceof Set ? [...open].filter((id): id is string => typeof id === 'string') : [];
    if (ids.length === 0) return new Set();
    const entry = subscriptionEntry(conversationId);
    const found = await getAll(this.db, this.tableName, WHAT, ids.map((connectionId) => ({ connectionId, entry })), { consistent: true });
    const devices = new Set<string>();
    for (const item of found) {
      const subscription = toSubscription(item);
      // Expired rows are left out here too (TTL may not have removed them yet).
      if (subscription !== undefined && subscription.userId === userId && this.isLive(subscription)) devices.add(subscription.deviceId);
    }
    return devices;
  }

  async remove(connectionId: string): Promise<RemovedConnection | undefined> {
    this.records.delete(connectionId);
    const items = await queryAll(this.db, WHAT, {
      TableName: this.tableName,
      KeyConditionExpression: 'connectionId = :id',
      ExpressionAttributeNames: { '#entry': 'entry' },
      ExpressionAttributeValues: { ':id': connectionId },
      ProjectionExpression: '#entry, userId',
      ConsistentRead: true,
    });
    const keys: { connectionId: string; entry: string }[] = [];
    let userId: string | undefined;
    const conversationIds: string[] = [];
    for (const item of items) {
      if (typeof item.entry !== 'string') continue;
      keys.push({ connectionId, entry: item.entry });
      if (item.entry.startsWith(SUBSCRIPTION_PREFIX)) conversationIds.push(item.entry.slice(SUBSCRIPTION_PREFIX.length));
      if (typeof item.userId === 'string') userId ??= item.userId;
    }
    // Subscriptions first, the record last: a removal cut short leaves a record that `remove` can find again.
    const ordered = [...keys.filter((k) => k.entry !== CONNECTION_ENTRY), ...keys.filter((k) => k.entry === CONNECTION_ENTRY)];
    await writeAll(this.db, this.tableName, WHAT, ordered.map((Key) => ({ DeleteRequest: { Key } })));
    if (userId === undefined) return undefined;
    await this.releaseSlots(userId, [connectionId]);
    return { userId, conversationIds };
  }

  /** Adds the connection to its user's set if the set has room (or already holds it). */
  private async claimSlot(record: ConnectionRecord, maxPerUser: number): Promise<boolean> {
    try {
      await callAws(WHAT, () =>
        this.db.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: userKey(record.userId),
            // The item lives as long as the user's newest connection could (TTL removes an idle user's item).
            UpdateExpression: 'ADD #open :ids SET expiresAt = :expiresAt',
            ConditionExpression: 'attribute_not_exists(#open) OR size(#open) < :max OR contains(#open, :id)',
            ExpressionAttributeNames: { '#open': 'open' },
            ExpressionAttributeValues: {
              ':ids': new Set([record.connectionId]),
              ':id': record.connectionId,
              ':max': maxPerUser,
              ':expiresAt': record.expiresAt,
            },
          }),
        ),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  /**
   * Drops from the user's set the connections that are gone without a `$disconnect`: their record expired or
   * was removed (a post met 410, or a `remove` was cut short). Returns how many were dropped.
   */
  private async releaseStaleSlots(userId: string): Promise<number> {
    const result = await callAws(WHAT, () =>
      this.db.send(new GetCommand({ TableName: this.tableName, Key: userKey(userId), ConsistentRead: true })),
    );
    const open = result.Item?.open;
    const ids = open instanceof Set ? [...open].filter((id): id is string => typeof id === 'string') : [];
    if (ids.length === 0) return 0;
    const found = await getAll(this.db, this.tableName, WHAT, ids.map((connectionId) => ({ connectionId, entry: CONNECTION_ENTRY })), {
      consistent: true,
    });
    const live = new Set(
      found.map(toRecord).flatMap((record) => (record !== undefined && this.isLive(record) ? [record.connectionId] : [])),
    );
    const stale = ids.filter((id) => !live.has(id));
    await this.releaseSlots(userId, stale);
    return stale.length;
  }

  private async releaseSlots(userId: string, connectionIds: readonly string[]): Promise<void> {
    if (connectionIds.length === 0) return;
    await callAws(WHAT, () =>
      this.db.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: userKey(userId),
          UpdateExpression: 'DELETE #open :ids',
          ConditionExpression: 'attribute_exists(#open)',
          ExpressionAttributeNames: { '#open': 'open' },
          ExpressionAttributeValues: { ':ids': new Set(connectionIds) },
        }),
      ),
    ).catch((error: unknown) => {
      // No set at all: nothing to release.
      if (!isConditionFailure(error)) throw error;
    });
  }

  private isLive(record: ConnectionRecord): boolean {
    return record.expiresAt * 1000 > this.clock.now();
  }
}

function toRecord(item: Record<string, unknown> | undefined): ConnectionRecord | undefined {
  if (item === undefined) return undefined;
  const { connectionId, userId, deviceId, connectedAt, expiresAt, tokenExpiresAt } = item;
  if (
    typeof connectionId !== 'string' ||
    typeof userId !== 'string' ||
    typeof deviceId !== 'string' ||
    typeof connectedAt !== 'number' ||
    typeof expiresAt !== 'number'
  ) {
    return undefined;
  }
  return { connectionId, userId, deviceId, connectedAt, expiresAt, ...(typeof tokenExpiresAt === 'number' ? { tokenExpiresAt } : {}) };
}

function toSubscription(item: Record<string, unknown> | undefined): Subscription | undefined {
  const record = toRecord(item);
  const conversationId = item?.conversationId;
  if (record === undefined || typeof conversationId !== 'string') return undefined;
  return { ...record, conversationId };
}

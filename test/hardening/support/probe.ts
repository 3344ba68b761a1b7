import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { Redis } from 'ioredis';
import { DynamoMembershipStore } from '../../../lambdas/adapters/dynamo-members.js';
import { CONVERSATION_INDEX } from '../../../deploy/tables.js';
import type { LocalBackend } from '../../../local/backend.js';
import { uniqueId } from '../../support/env.js';
import { lambdas } from '../../support/lambdas.js';

/** The connections table's items (deploy/tables.ts, `connectionsTable`), spelled as the registry writes them. */
export const CONNECTION_ENTRY = '#connection';
export const SUBSCRIPTION_PREFIX = 'c#';
/** The key of a user's set of open connections. */
export function userEntryKey(userId: string): { connectionId: string; entry: string } {
  return { connectionId: `user#${encodeURIComponent(userId)}`, entry: '#connections' };
}
/**
 * Looks at what the backend really holds — registry rows in DynamoDB, keys in Redis — from outside the handlers,
 * with clients of its own.
 */
export class BackendProbe {
  readonly db: DynamoDBDocumentClient;
  readonly redis: Redis;

  constructor(private readonly backend: Pick<LocalBackend, 'dynamodbEndpoint' | 'redisUrl' | 'tables'>) {
    this.db = DynamoDBDocumentClient.from(
      new DynamoDBClient({ endpoint: backend.dynamodbEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }),
    );
    this.redis = new Redis(backend.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  }

  /** A new conversation with these members. */
  async conversationWith(...userIds: string[]): Promise<string> {
    const conversationId = uniqueId('hard');
    const members = new DynamoMembershipStore(this.db, this.backend.tables.members);
    for (const userId of userIds) await members.add(conversationId, userId, 0);
    return conversationId;
  }

  /**
   * The subscriptions of a conversation: the items of the conversation index the handlers query (only
   * `c#<conversationId>` items carry `conversationId`, so a connection's record or a user's set never shows here).
   */
  async rowsOf(conversationId: string): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.db.send(
        new QueryCommand({
          TableName: this.backend.tables.connections,
          IndexName: CONVERSATION_INDEX,
          KeyConditionExpression: 'conversationId = :c',
          ExpressionAttributeValues: { ':c': conversationId },
          ExclusiveStartKey: startKey,
        }),
      );
      items.push(...(page.Items ?? []));
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
    return items;
  }

  /** A connection's record (`#connection`: userId, deviceId, connectedAt, expiresAt), or undefined. */
  async record(connectionId: string): Promise<Record<string, unknown> | undefined> {
    const result = await this.db.send(
      new GetCommand({ TableName: this.backend.tables.connections, Key: { connectionId, entry: CONNECTION_ENTRY }, ConsistentRead: true }),
    );
    return result.Item;
  }

  /** A connection's subscription to a conversation (`c#<conversationId>`), or undefined. */
  async subscription(connectionId: string, conversationId: string): Promise<Record<string, unknown> | undefined> {
    const result = await this.db.send(
      new GetCommand({
        TableName: this.backend.tables.connections,
        Key: { connectionId, entry: `${SUBSCRIPTION_PREFIX}${conversationId}` },
        ConsistentRead: true,
      }),
    );
    return result.Item;
  }

  /** The entries of a connection's partition (its record and its subscriptions), sorted: what $disconnect removes. */
  async entriesOf(connectionId: string): Promise<string[]> {
    const entries: string[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.db.send(
        new QueryCommand({
          TableName: this.backend.tables.connections,
          KeyConditionExpression: 'connectionId = :id',
          ExpressionAttributeValues: { ':id': connectionId },
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) entries.push(String(item.entry));
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
    return entries.sort();
  }

  /** The ids in a user's set of open connections (`user#<encoded userId>`, `#connections`), sorted; [] without one. */
  async openConnectionsOf(userId: string): Promise<string[]> {
    const result = await this.db.send(
      new GetCommand({ TableName: this.backend.tables.connections, Key: userEntryKey(userId), ConsistentRead: true }),
    );
    const open: unknown = result.Item?.open;
    return open instanceof Set ? [...open].map(String).sort() : [];
  }

  /** Every Redis key of a conversation (they all carry the hash tag `{c:<id>}`). */
  async redisKeys(conversationId: string): Promise<string[]> {
    return (await this.redis.keys(`{c:${conversationId}}:*`)).sort();
  }

  /** The conversation's message log items, ascending (the record of every message). */
  async logItems(conversationId: string): Promise<Record<string, unknown>[]> {
    const result = await this.db.send(
      new QueryCommand({
        TableName: this.backend.tables.messages,
        KeyConditionExpression: 'conversationId = :c',
        ExpressionAttributeValues: { ':c': conversationId },
        ConsistentRead: true,
      }),
    );
    return result.Items ?? [];
  }

  /**
   * What a conversation has stored: its log, idempotency and device-position items and its subscriptions in
   * DynamoDB, and its Redis keys other than rate-limit buckets (the seq cache). What a refused frame (or a
   * refused $connect) must not create.
   */
  async storedKeys(conversationId: string): Promise<string[]> {
    const query = (table: string) =>
      this.db.send(
        new QueryCommand({
          TableName: table,
          KeyConditionExpression: 'conversationId = :c',
          ExpressionAttributeValues: { ':c': conversationId },
          ConsistentRead: true,
        }),
      );
    const [idempotency, positions] = await Promise.all([query(this.backend.tables.idempotency), query(this.backend.tables.positions)]);
    return [
      ...(await this.logItems(conversationId)).map((item) => `messages:${String(item.seq)}`),
      ...(idempotency.Items ?? []).map((item) => `idempotency:${String(item.key)}`),
      ...(positions.Items ?? []).map((item) => `positions:${String(item.device)}`),
      ...(await this.rowsOf(conversationId)).map((item) => `subscriptions:${String(item.connectionId)}`),
      ...(await this.redisKeys(conversationId)).filter((key) => !key.includes('}:rl:')),
    ].sort();
  }

  /** The content of any Redis key as text (strings, sets, sorted sets, hashes). */
  async dump(key: string): Promise<string> {
    const type = await this.redis.type(key);
    if (type === 'string') return (await this.redis.get(key)) ?? '';
    if (type === 'set') return JSON.stringify(await this.redis.smembers(key));
    if (type === 'zset') return JSON.stringify(await this.redis.zrange(key, '0', '-1'));
    if (type === 'hash') return JSON.stringify(await this.redis.hgetall(key));
    return `<${type}>`;
  }

  async close(): Promise<void> {
    this.db.destroy();
    this.redis.disconnect();
  }
}

/** What switchEnv reconfigures: the test's handlers and, when given, a local backend's functions. */
export interface Reconfigurable {
  env: Record<string, string>;
  restartFunctions(): Promise<void>;
}

/**
 * Switches handler configuration for one test: sets (or, with undefined, removes) environment variables — in
 * process.env for the test's own handlers, and in the backend's environment when one is given — and cold-starts
 * the functions so the next invocation builds from them; the returned function puts everything back.
 */
export async function switchEnv(overrides: Record<string, string | undefined>, backend?: Reconfigurable, handlers: { reset(): Promise<void> } = lambdas): Promise<() => Promise<void>> {
  const saved = new Map<string, string | undefined>();
  const savedBackend = new Map<string, string | undefined>();
  for (const [key, value] of Object.entries(overrides)) {
    saved.set(key, process.env[key]);
    if (value === undefined) Reflect.deleteProperty(process.env, key);
    else process.env[key] = value;
    if (backend !== undefined) {
      savedBackend.set(key, backend.env[key]);
      if (value === undefined) Reflect.deleteProperty(backend.env, key);
      else backend.env[key] = value;
    }
  }
  await handlers.reset();
  await backend?.restartFunctions();
  return async () => {
    for (const [key, value] of saved) {
      if (value === undefined) Reflect.deleteProperty(process.env, key);
      else process.env[key] = value;
    }
    if (backend !== undefined) {
      for (const [key, value] of savedBackend) {
        if (value === undefined) Reflect.deleteProperty(backend.env, key);
        else backend.env[key] = value;
      }
    }
    await handlers.reset();
    await backend?.restartFunctions();
  };
}

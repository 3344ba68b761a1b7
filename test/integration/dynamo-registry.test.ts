import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DeleteCommand, DynamoDBDocumentClient, GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { DynamoConnectionRegistry } from '../../lambdas/adapters/dynamo-registry.js';
import { UnavailableError } from '../../lambdas/errors.js';
import type { ConnectionRecord, Subscription } from '../../lambdas/ports.js';
import { CONVERSATION_INDEX } from '../../deploy/tables.js';
import { closedPort } from './net.js';
import { DUMMY_CREDENTIALS, createTables, instrumentedDoc, startDynalite, type LocalDynamo } from '../support/dynalite.js';

const TABLES = { connections: 'connections', members: 'members' };
const START = Date.UTC(2030, 0, 1, 12, 0, 0);
const RECORD_ENTRY = '#connection';
const USER_ENTRY = '#connections';

interface SentCommand {
  command: string;
  input: Record<string, unknown>;
}

let dynamo: LocalDynamo;
let recordingClient: DynamoDBClient;
let recorded: DynamoDBDocumentClient;
const sent: SentCommand[] = [];
let nowMs = START;
const clock = { now: () => nowMs };
let registry: DynamoConnectionRegistry;

beforeAll(async () => {
  dynamo = await startDynalite();
  await createTables(dynamo.client, TABLES);
  // A client of its own, so the recorder sees exactly what the registry sends (the document client shares its
  // middleware stack with the client it wraps). It records the commands that go on the wire: the document
  // client's PutCommand/GetCommand/QueryCommand arrive as PutItemCommand/GetItemCommand/QueryCommand, and a Scan
  // through either client would show as ScanCommand.
  recordingClient = new DynamoDBClient({
    endpoint: dynamo.endpoint,
    region: dynamo.region,
    credentials: DUMMY_CREDENTIALS,
    maxAttempts: 1,
  });
  recorded = DynamoDBDocumentClient.from(recordingClient);
  recorded.middlewareStack.add(
    (next, context) => async (args) => {
      const input = typeof args.input === 'object' && args.input !== null ? { ...args.input } : {};
      sent.push({ command: context.commandName ?? 'unknown', input });
      return next(args);
    },
    { step: 'initialize', name: 'recordSentCommands' },
  );
  registry = new DynamoConnectionRegistry(recorded, TABLES.connections, clock);
});

afterAll(async () => {
  recordingClient.destroy();
  await dynamo.close();
});

beforeEach(() => {
  nowMs = START;
  sent.length = 0;
});

const nowSeconds = () => Math.floor(nowMs / 1000);

/** A user id of its own per test (the table is shared), with characters the user key must encode. */
const newUser = () => `auth0|${randomUUID()}`;

function record(overrides: Partial<ConnectionRecord> = {}): ConnectionRecord {
  const connectionId = overrides.connectionId ?? `${randomUUID()}=`;
  return {
    connectionId,
    userId: `user-${connectionId.slice(0, 8)}`,
    deviceId: 'device-1',
    connectedAt: nowMs,
    expiresAt: nowSeconds() + 3600,
    ...overrides,
  };
}

const subscription = (row: ConnectionRecord, conversationId: string): Subscription => ({ ...row, conversationId });

function commandNames(): string[] {
  return sent.map((entry) => entry.command);
}

const byId = (a: { connectionId: string }, b: { connectionId: string }) => a.connectionId.localeCompare(b.connectionId);

async function seed(items: Record<string, unknown>[]): Promise<void> {
  for (let start = 0; start < items.length; start += 25) {
    const batch = items.slice(start, start + 25).map((Item) => ({ PutRequest: { Item } }));
    const result = await dynamo.doc.send(new BatchWriteCommand({ RequestItems: { [TABLES.connections]: batch } }));
    expect(Object.keys(result.UnprocessedItems ?? {})).toHaveLength(0);
  }
}

/** Every item stored under a connection id (its record and subscriptions), read directly. */
async function entriesOf(connectionId: string): Promise<Record<string, unknown>[]> {
  const { Items = [] } = await dynamo.doc.send(
    new QueryCommand({
      TableName: TABLES.connections,
      KeyConditionExpression: 'connectionId = :id',
      ExpressionAttributeValues: { ':id': connectionId },
      ConsistentRead: true,
    }),
  );
  return Items;
}

async function storedRecord(connectionId: string): Promise<Record<string, unknown> | undefined> {
  const { Item } = await dynamo.doc.send(
    new GetCommand({ TableName: TABLES.connections, Key: { connectionId, entry: RECORD_ENTRY }, ConsistentRead: true }),
  );
  return Item;
}

const userKey = (userId: string) => ({ connectionId: `user#${encodeURIComponent(userId)}`, entry: USER_ENTRY });

async function userItem(userId: string): Promise<Record<string, unknown> | undefined> {
  const { Item } = await dynamo.doc.send(new GetCommand({ TableName: TABLES.connections, Key: userKey(userId), ConsistentRead: true }));
  return Item;
}

/** The ids in the user's set of open connections, sorted (empty when the set or the item is gone). */
async function openSlots(userId: string): Promise<string[]> {
  const open = (await userItem(userId))?.open;
  if (open === undefined) return [];
  expect(open).toBeInstanceOf(Set);
  return open instanceof Set ? [...open].map(String).sort() : [];
}

describe('DynamoConnectionRegistry on dynalite: records', () => {
  it('opens a connection and gets its record back exactly', async () => {
    const row = record({ connectionId: 'Ab+/c=', userId: newUser(), deviceId: 'phone' });
    await expect(registry.open(row, 3)).resolves.toBe(true);
    await expect(registry.connection('Ab+/c=')).resolves.toEqual(row);
    expect(await storedRecord('Ab+/c=')).toMatchObject({ ...row, entry: RECORD_ENTRY });
    // The record carries no conversationId, so it can never show in the conversation index.
    expect(await storedRecord('Ab+/c=')).not.toHaveProperty('conversationId');
    expect(commandNames()).not.toContain('ScanCommand');
  });

  it('keeps the token\'s expiry with the record (read from a fresh registry, so from the table)', async () => {
    const row = { ...record({ connectionId: `tok-${randomUUID()}`, userId: newUser(), deviceId: 'phone' }), tokenExpiresAt: Date.now() + 600_000 };
    await expect(registry.open(row, 3)).resolves.toBe(true);
    const fresh = new DynamoConnectionRegistry(dynamo.doc, TABLES.connections, clock);
    await expect(fresh.connection(row.connectionId)).resolves.toEqual(row);
  });

  it('gets undefined for an unknown connection id', async () => {
    await expect(registry.connection(`unknown-${randomUUID()}`)).resolves.toBeUndefined();
  });

  it('remembers a record: a second `connection` sends nothing', async () => {
    const cached = new DynamoConnectionRegistry(recorded, TABLES.connections, clock);
    const row = record({ userId: newUser() });
    await cached.open(row, 3);
    const send = vi.spyOn(recorded, 'send');
    try {
      await expect(cached.connection(row.connectionId)).resolves.toEqual(row);
      expect(send).toHaveBeenCalledTimes(1);
      send.mockClear();
      await expect(cached.connection(row.connectionId)).resolves.toEqual(row);
      expect(send).not.toHaveBeenCalled();
      // Another container (another registry) has not seen it and reads it.
      const other = new DynamoConnectionRegistry(recorded, TABLES.connections, clock);
      await expect(other.connection(row.connectionId)).resolves.toEqual(row);
      expect(send).toHaveBeenCalledTimes(1);
    } finally {
      send.mockRestore();
    }
  });

  it('does not remember an unknown connection: it is read again', async () => {
    const id = `later-${randomUUID()}`;
    await expect(registry.connection(id)).resolves.toBeUndefined();
    const row = record({ connectionId: id, userId: newUser() });
    await registry.open(row, 3);
    await expect(registry.connection(id)).resolves.toEqual(row);
  });

  it('treats a record whose expiresAt has passed as gone, although it is still stored (and even when remembered)', async () => {
    const userId = newUser();
    const alreadyExpired = record({ userId, expiresAt: nowSeconds() - 1 });
    const expiresSoon = record({ userId, expiresAt: nowSeconds() + 60 });
    await registry.open(alreadyExpired, 3);
    await registry.open(expiresSoon, 3);

    expect(await storedRecord(alreadyExpired.connectionId)).toBeDefined();
    await expect(registry.connection(alreadyExpired.connectionId)).resolves.toBeUndefined();
    await expect(registry.connection(expiresSoon.connectionId)).resolves.toEqual(expiresSoon);

    nowMs += 61_000;
    await expect(registry.connection(expiresSoon.connectionId)).resolves.toBeUndefined();
  });
});

describe('DynamoConnectionRegistry on dynalite: subscriptions', () => {
  it('subscribes, reads the subscriptions back and unsubscribes', async () => {
    const row = record({ userId: newUser() });
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    await registry.open(row, 3);
    await registry.subscribe(row, [a, b], nowMs);

    await expect(registry.subscription(row.connectionId, a)).resolves.toEqual(subscription(row, a));
    await expect(registry.subscription(row.connectionId, b)).resolves.toEqual(subscription(row, b));
    await expect(registry.subscription(row.connectionId, c)).resolves.toBeUndefined();
    expect((await registry.subscriptionsOf(row.connectionId)).sort()).toEqual([a, b].sort());
    await expect(registry.listByConversation(a)).resolves.toEqual([subscription(row, a)]);
    // The stored subscription: the record's fields, the conversation and when it was made.
    expect(await entriesOf(row.connectionId)).toContainEqual({ ...row, entry: `c#${a}`, conversationId: a, subscribedAt: nowMs });

    await registry.unsubscribe(row.connectionId, [a, c]);
    await expect(registry.subscription(row.connectionId, a)).resolves.toBeUndefined();
    await expect(registry.subscriptionsOf(row.connectionId)).resolves.toEqual([b]);
    await expect(registry.listByConversation(a)).resolves.toEqual([]);
    await expect(registry.listByConversation(b)).resolves.toEqual([subscription(row, b)]);
    // Unsubscribing leaves the record.
    await expect(registry.connection(row.connectionId)).resolves.toEqual(row);
  });

  it('answers which devices of one user are subscribed to a conversation, from the user’s own connections only', async () => {
    const userId = newUser();
    const conversationId = randomUUID();
    const phone = record({ userId, deviceId: 'phone' });
    const laptop = record({ userId, deviceId: 'laptop' });
    const tablet = record({ userId, deviceId: 'tablet', expiresAt: nowSeconds() + 60 });
    const otherUser = record({ userId: newUser(), deviceId: 'phone' });
    for (const row of [phone, laptop, tablet, otherUser]) await registry.open(row, 10);
    await registry.subscribe(phone, [conversationId], nowMs);
    await registry.subscribe(laptop, [randomUUID()], nowMs);
    await registry.subscribe(tablet, [conversationId], nowMs);
    await registry.subscribe(otherUser, [conversationId], nowMs);
    sent.length = 0;
    await expect(registry.devicesSubscribed(userId, conversationId)).resolves.toEqual(new Set(['phone', 'tablet']));
    // Two reads, whatever the conversation holds: the user's set, then one batch of their subscriptions there.
    expect(commandNames()).toEqual(['GetItemCommand', 'BatchGetItemCommand']);
    // An expired subscription is not live, though TTL has not removed it.
    nowMs += 120_000;
    await expect(registry.devicesSubscribed(userId, conversationId)).resolves.toEqual(new Set(['phone']));
    await expect(registry.devicesSubscribed(newUser(), conversationId)).resolves.toEqual(new Set());
  });

  it('reads a subscription strongly consistently', async () => {
    const row = record({ userId: newUser() });
    const conversationId = randomUUID();
    await registry.subscribe(row, [conversationId], nowMs);
    sent.length = 0;
    await registry.subscription(row.connectionId, conversationId);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.input).toMatchObject({ TableName: TABLES.connections, ConsistentRead: true });
  });

  it('subscribing twice to a conversation keeps one subscription', async () => {
    const row = record({ userId: newUser() });
    const conversationId = randomUUID();
    await registry.subscribe(row, [conversationId], nowMs);
    await registry.subscribe(row, [conversationId], nowMs + 5);
    await expect(registry.subscriptionsOf(row.connectionId)).resolves.toEqual([conversationId]);
    await expect(registry.listByConversation(conversationId)).resolves.toEqual([subscription(row, conversationId)]);
  });

  it('subscribes and unsubscribes more than 25 conversations at once (batches of 25)', async () => {
    const row = record({ userId: newUser() });
    const conversations = Array.from({ length: 60 }, () => randomUUID());
    await registry.subscribe(row, conversations, nowMs);
    expect(commandNames().filter((name) => name === 'BatchWriteItemCommand')).toHaveLength(3);
    expect((await registry.subscriptionsOf(row.connectionId)).sort()).toEqual([...conversations].sort());
    await registry.unsubscribe(row.connectionId, conversations.slice(0, 55));
    expect((await registry.subscriptionsOf(row.connectionId)).sort()).toEqual(conversations.slice(55).sort());
  });

  it('an expired subscription is gone, although it is still stored', async () => {
    const row = record({ userId: newUser(), expiresAt: nowSeconds() + 60 });
    const conversationId = randomUUID();
    await registry.subscribe(row, [conversationId], nowMs);
    await expect(registry.subscription(row.connectionId, conversationId)).resolves.toEqual(subscription(row, conversationId));
    nowMs += 61_000;
    await expect(registry.subscription(row.connectionId, conversationId)).resolves.toBeUndefined();
    await expect(registry.listByConversation(conversationId)).resolves.toEqual([]);
  });
});

describe('DynamoConnectionRegistry on dynalite: listByConversation', () => {
  it("lists only that conversation's live subscriptions, never records or user items", async () => {
    const conversationId = randomUUID();
    const other = randomUUID();
    const userId = newUser();
    const mine = [record({ userId }), record({ userId }), record({ userId })];
    for (const row of mine) {
      await registry.open(row, 10);
      await registry.subscribe(row, [conversationId, other], nowMs);
    }
    const expired = record({ userId, expiresAt: nowSeconds() - 10 });
    await registry.open(expired, 10);
    await registry.subscribe(expired, [conversationId], nowMs);
    // Opened but not subscribed: its record must not show.
    await registry.open(record({ userId }), 10);
    await registry.subscribe(record(), [other], nowMs);

    const listed = await registry.listByConversation(conversationId);
    expect([...listed].sort(byId)).toEqual(mine.map((row) => subscription(row, conversationId)).sort(byId));
    await expect(registry.listByConversation(randomUUID())).resolves.toEqual([]);

    // What the index holds at all: subscriptions only.
    const { Items = [] } = await dynamo.doc.send(
      new QueryCommand({
        TableName: TABLES.connections,
        IndexName: CONVERSATION_INDEX,
        KeyConditionExpression: 'conversationId = :c',
        ExpressionAttributeValues: { ':c': conversationId },
      }),
    );
    expect(Items).toHaveLength(4);
    for (const item of Items) expect(item.entry).toBe(`c#${conversationId}`);
  });

  it('queries the conversation index and never scans', async () => {
    const conversationId = randomUUID();
    await registry.subscribe(record(), [conversationId], nowMs);
    sent.length = 0;
    await registry.listByConversation(conversationId);

    expect(commandNames()).not.toContain('ScanCommand');
    expect(commandNames()).toEqual(['QueryCommand']);
    expect(sent[0]?.input).toMatchObject({ TableName: TABLES.connections, IndexName: CONVERSATION_INDEX });
  });

  it('follows LastEvaluatedKey across pages of more than 1 MB (1,200 padded subscriptions)', async () => {
    const conversationId = randomUUID();
    const padding = 'p'.repeat(1500);
    const live: string[] = [];
    const items: Record<string, unknown>[] = [];
    for (let i = 0; i < 1200; i += 1) {
      const connectionId = `conn-${String(i).padStart(5, '0')}=`;
      // Every 100th row is expired, on both pages: the filter must apply to each page, not only the first.
      const expired = i % 100 === 7;
      if (!expired) live.push(connectionId);
      const row = record({ connectionId, expiresAt: expired ? nowSeconds() - 5 : nowSeconds() + 600 });
      items.push({ ...row, entry: `c#${conversationId}`, conversationId, subscribedAt: nowMs, padding });
      // Each connection's record sits next to its subscription in the table: it must not leak in.
      if (i % 10 === 0) items.push({ ...row, entry: RECORD_ENTRY, padding });
    }
    // Subscriptions to another conversation must not leak in either.
    const stranger = record();
    items.push({ ...stranger, entry: `c#${randomUUID()}`, conversationId: randomUUID(), padding });
    await seed(items);
    sent.length = 0;

    const listed = await registry.listByConversation(conversationId);

    const queries = sent.filter((entry) => entry.command === 'QueryCommand');
    expect(queries.length).toBeGreaterThanOrEqual(2);
    expect(commandNames().every((name) => name === 'QueryCommand')).toBe(true);
    for (const query of queries) expect(query.input).toMatchObject({ IndexName: CONVERSATION_INDEX });
    // Every page after the first starts where the previous one stopped.
    expect(queries[0]?.input.ExclusiveStartKey).toBeUndefined();
    for (const query of queries.slice(1)) expect(query.input.ExclusiveStartKey).toBeDefined();

    const ids = listed.map((r) => r.connectionId);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(live);
    expect(listed.every((r) => r.conversationId === conversationId)).toBe(true);
  });
});

describe('DynamoConnectionRegistry on dynalite: remove', () => {
  it('removes the record and every subscription (100, in batches) and frees the user slot', async () => {
    const userId = newUser();
    const drop = record({ userId });
    const keep = record({ userId });
    const conversations = Array.from({ length: 100 }, () => randomUUID());
    const [first] = conversations;
    if (first === undefined) throw new Error('no conversation');
    await registry.open(drop, 2);
    await registry.open(keep, 2);
    await registry.subscribe(drop, conversations, nowMs);
    await registry.subscribe(keep, [first], nowMs);
    // Read first, so the record is remembered: remove must forget it too.
    await expect(registry.connection(drop.connectionId)).resolves.toEqual(drop);
    expect(await entriesOf(drop.connectionId)).toHaveLength(101);
    sent.length = 0;

    const removed = await registry.remove(drop.connectionId);

    expect(removed).toEqual({ userId, conversationIds: [...conversations].sort() });
    // 101 deletes: five batches of at most 25.
    const batches = sent.filter((entry) => entry.command === 'BatchWriteItemCommand');
    expect(batches).toHaveLength(5);
    await expect(entriesOf(drop.connectionId)).resolves.toEqual([]);
    await expect(registry.connection(drop.connectionId)).resolves.toBeUndefined();
    await expect(registry.subscriptionsOf(drop.connectionId)).resolves.toEqual([]);
    await expect(registry.listByConversation(first)).resolves.toEqual([subscription(keep, first)]);
    await expect(registry.connection(keep.connectionId)).resolves.toEqual(keep);
    // Its place among the user's open connections is released by remove itself.
    await expect(openSlots(userId)).resolves.toEqual([keep.connectionId]);
    await expect(registry.open(record({ userId }), 2)).resolves.toBe(true);
  });

  it('removing an unknown connection, or one whose user has no set, is a no-op', async () => {
    await expect(registry.remove(`never-${randomUUID()}`)).resolves.toBeUndefined();
    const orphan = record({ userId: newUser() });
    await seed([{ ...orphan, entry: RECORD_ENTRY }]);
    await expect(registry.remove(orphan.connectionId)).resolves.toEqual({ userId: orphan.userId, conversationIds: [] });
    await expect(entriesOf(orphan.connectionId)).resolves.toEqual([]);
    await expect(userItem(orphan.userId)).resolves.toBeUndefined();
  });
});

describe('DynamoConnectionRegistry on dynalite: the per-user limit', () => {
  it('accepts up to the limit and refuses the next, leaving nothing stored for it', async () => {
    const userId = newUser();
    const accepted = [record({ userId }), record({ userId }), record({ userId })];
    for (const row of accepted) await expect(registry.open(row, 3)).resolves.toBe(true);
    const before = await userItem(userId);

    const refused = record({ userId, expiresAt: nowSeconds() + 7200 });
    sent.length = 0;
    await expect(registry.open(refused, 3)).resolves.toBe(false);

    // Its record is written before the slot is tried (so a slot is never released while its record is on the
    // way) and deleted when the slot is refused.
    expect(commandNames()).toContain('DeleteItemCommand');
    expect(commandNames()).not.toContain('BatchWriteItemCommand');
    await expect(entriesOf(refused.connectionId)).resolves.toEqual([]);
    await expect(registry.connection(refused.connectionId)).resolves.toBeUndefined();
    // The user's item is untouched: same set, same expiresAt.
    await expect(userItem(userId)).resolves.toEqual(before);
    await expect(openSlots(userId)).resolves.toEqual(accepted.map((row) => row.connectionId).sort());
    // The limit is per user: another user is not affected.
    await expect(registry.open(record({ userId: newUser() }), 3)).resolves.toBe(true);
  });

  it('keeps the user item alive as long as its newest connection (expiresAt)', async () => {
    const userId = newUser();
    const first = record({ userId, expiresAt: nowSeconds() + 600 });
    await registry.open(first, 3);
    await expect(userItem(userId)).resolves.toMatchObject({ ...userKey(userId), expiresAt: first.expiresAt });
    const second = record({ userId, expiresAt: nowSeconds() + 1200 });
    await registry.open(second, 3);
    await expect(userItem(userId)).resolves.toMatchObject({ expiresAt: second.expiresAt });
  });

  it('accepts exactly the limit among 10 concurrent opens (conditional write)', async () => {
    for (let round = 0; round < 5; round += 1) {
      const userId = newUser();
      const rows = Array.from({ length: 10 }, () => record({ userId }));
      const results = await Promise.all(rows.map((row) => registry.open(row, 3)));

      const accepted = rows.filter((_, i) => results[i] === true).map((row) => row.connectionId).sort();
      expect(accepted).toHaveLength(3);
      await expect(openSlots(userId)).resolves.toEqual(accepted);
      const stored: string[] = [];
      for (const row of rows) if ((await storedRecord(row.connectionId)) !== undefined) stored.push(row.connectionId);
      expect(stored.sort()).toEqual(accepted);
    }
  });

  it('accepts exactly the limit among 10 concurrent opens when the record writes are slow', async () => {
    // A connection that has its slot but whose record is still being written is open, not stale: a concurrent
    // open at the limit must not release its slot.
    const slow = instrumentedDoc(dynamo, {
      before: async (command) => {
        if (command.command === 'PutItemCommand') await new Promise((resolve) => setTimeout(resolve, 100));
      },
    });
    try {
      const slowRegistry = new DynamoConnectionRegistry(slow.doc, TABLES.connections, clock);
      const userId = newUser();
      const rows = Array.from({ length: 10 }, () => record({ userId }));
      const results = await Promise.all(rows.map((row) => slowRegistry.open(row, 3)));

      const accepted = rows.filter((_, i) => results[i] === true).map((row) => row.connectionId).sort();
      const stored: string[] = [];
      for (const row of rows) if ((await storedRecord(row.connectionId)) !== undefined) stored.push(row.connectionId);
      expect({ accepted: accepted.length, stored: stored.length }).toEqual({ accepted: 3, stored: 3 });
      await expect(openSlots(userId)).resolves.toEqual(accepted);
    } finally {
      slow.destroy();
    }
  });

  it('releases the slot of a connection whose record was removed without its slot (a lost $disconnect)', async () => {
    const userId = newUser();
    const [lost, b, c] = [record({ userId }), record({ userId }), record({ userId })];
    for (const row of [lost, b, c]) await registry.open(row, 3);
    await dynamo.doc.send(new DeleteCommand({ TableName: TABLES.connections, Key: { connectionId: lost.connectionId, entry: RECORD_ENTRY } }));

    const next = record({ userId });
    await expect(registry.open(next, 3)).resolves.toBe(true);
    await expect(openSlots(userId)).resolves.toEqual([b, c, next].map((row) => row.connectionId).sort());
    await expect(registry.connection(next.connectionId)).resolves.toEqual(next);
    // At the limit again, with every connection live: refused.
    await expect(registry.open(record({ userId }), 3)).resolves.toBe(false);
  });

  it('releases the slot of a connection whose record has expired', async () => {
    const userId = newUser();
    const old = record({ userId, expiresAt: nowSeconds() + 60 });
    const [b, c] = [record({ userId }), record({ userId })];
    for (const row of [old, b, c]) await registry.open(row, 3);
    await expect(registry.open(record({ userId }), 3)).resolves.toBe(false);

    nowMs += 120_000;
    const next = record({ userId });
    await expect(registry.open(next, 3)).resolves.toBe(true);
    await expect(openSlots(userId)).resolves.toEqual([b, c, next].map((row) => row.connectionId).sort());
  });

  it('releases a slot whose record was never written (died between the two writes)', async () => {
    const userId = newUser();
    const [a, b] = [record({ userId }), record({ userId })];
    for (const row of [a, b]) await registry.open(row, 3);
    await dynamo.doc.send(
      new UpdateCommand({
        TableName: TABLES.connections,
        Key: userKey(userId),
        UpdateExpression: 'ADD #open :ids',
        ExpressionAttributeNames: { '#open': 'open' },
        ExpressionAttributeValues: { ':ids': new Set([`ghost-${randomUUID()}`]) },
      }),
    );
    const next = record({ userId });
    await expect(registry.open(next, 3)).resolves.toBe(true);
    await expect(openSlots(userId)).resolves.toEqual([a, b, next].map((row) => row.connectionId).sort());
  });

  it('re-opening the same connection id is idempotent, even at the limit', async () => {
    const userId = newUser();
    const row = record({ userId });
    const other = record({ userId });
    await expect(registry.open(row, 2)).resolves.toBe(true);
    await expect(registry.open(other, 2)).resolves.toBe(true);
    await expect(registry.open(row, 2)).resolves.toBe(true);
    await expect(openSlots(userId)).resolves.toEqual([row.connectionId, other.connectionId].sort());
    await expect(registry.connection(row.connectionId)).resolves.toEqual(row);
    await expect(entriesOf(row.connectionId)).resolves.toHaveLength(1);
  });
});

describe('DynamoConnectionRegistry on dynalite: errors', () => {
  it('lets a non-transient error through unchanged (missing table)', async () => {
    const missing = new DynamoConnectionRegistry(dynamo.doc, 'no-such-table', clock);
    const error: unknown = await missing.connection('x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(UnavailableError);
    expect(error instanceof Error ? error.name : undefined).toBe('ResourceNotFoundException');
    await expect(missing.open(record(), 3)).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });

  it('reports an unreachable DynamoDB as UnavailableError', async () => {
    const port = await closedPort();
    const client = new DynamoDBClient({
      endpoint: `http://127.0.0.1:${port}`,
      region: 'us-east-1',
      credentials: DUMMY_CREDENTIALS,
      maxAttempts: 1,
    });
    try {
      const down = new DynamoConnectionRegistry(DynamoDBDocumentClient.from(client), TABLES.connections, clock);
      const row = record();
      await expect(down.open(row, 3)).rejects.toBeInstanceOf(UnavailableError);
      await expect(down.connection('x')).rejects.toBeInstanceOf(UnavailableError);
      await expect(down.subscription('x', 'c')).rejects.toBeInstanceOf(UnavailableError);
      await expect(down.subscriptionsOf('x')).rejects.toBeInstanceOf(UnavailableError);
      await expect(down.subscribe(row, ['c'], nowMs)).rejects.toBeInstanceOf(UnavailableError);
      await expect(down.unsubscribe('x', ['c'])).rejects.toBeInstanceOf(UnavailableError);
      await expect(down.listByConversation('c')).rejects.toBeInstanceOf(UnavailableError);
      await expect(down.remove('x')).rejects.toBeInstanceOf(UnavailableError);
    } finally {
      client.destroy();
    }
  });
});

import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DynamoConnectionRegistry } from '../../lambdas/adapters/dynamo-registry.js';
import { UnavailableError } from '../../lambdas/errors.js';
import type { ConnectionRecord } from '../../lambdas/ports.js';
import { CONVERSATION_INDEX } from '../../deploy/tables.js';
import { closedPort } from './net.js';
import { DUMMY_CREDENTIALS, createTables, startDynalite, type LocalDynamo } from '../support/dynalite.js';

const TABLES = { connections: 'connections', members: 'members' };
const START = Date.UTC(2030, 0, 1, 12, 0, 0);

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

function record(conversationId: string, overrides: Partial<ConnectionRecord> = {}): ConnectionRecord {
  const connectionId = overrides.connectionId ?? `${randomUUID()}=`;
  return {
    connectionId,
    userId: `user-${connectionId.slice(0, 6)}`,
    deviceId: 'device-1',
    conversationId,
    connectedAt: nowMs,
    expiresAt: Math.floor(nowMs / 1000) + 3600,
    ...overrides,
  };
}

function commandNames(): string[] {
  return sent.map((entry) => entry.command);
}

async function seed(items: Record<string, unknown>[]): Promise<void> {
  for (let start = 0; start < items.length; start += 25) {
    const batch = items.slice(start, start + 25).map((Item) => ({ PutRequest: { Item } }));
    const result = await dynamo.doc.send(new BatchWriteCommand({ RequestItems: { [TABLES.connections]: batch } }));
    expect(Object.keys(result.UnprocessedItems ?? {})).toHaveLength(0);
  }
}

describe('DynamoConnectionRegistry on dynalite', () => {
  it('registers a connection and gets it back exactly', async () => {
    const conversationId = randomUUID();
    const row = record(conversationId, { connectionId: 'Ab+/c=', userId: 'alice', deviceId: 'phone' });
    await registry.register(row);
    await expect(registry.get('Ab+/c=')).resolves.toEqual(row);
    expect(commandNames()).toEqual(['PutItemCommand', 'GetItemCommand']);
  });

  it('gets undefined for an unknown connection id', async () => {
    await expect(registry.get(`unknown-${randomUUID()}`)).resolves.toBeUndefined();
  });

  it('treats a row whose expiresAt has passed as gone, although the row is still stored', async () => {
    const conversationId = randomUUID();
    const alreadyExpired = record(conversationId, { expiresAt: Math.floor(nowMs / 1000) - 1 });
    const expiresSoon = record(conversationId, { expiresAt: Math.floor(nowMs / 1000) + 60 });
    await registry.register(alreadyExpired);
    await registry.register(expiresSoon);

    await expect(registry.get(alreadyExpired.connectionId)).resolves.toBeUndefined();
    await expect(registry.get(expiresSoon.connectionId)).resolves.toEqual(expiresSoon);
    expect((await registry.listByConversation(conversationId)).map((r) => r.connectionId)).toEqual([
      expiresSoon.connectionId,
    ]);

    nowMs += 61_000;
    await expect(registry.get(expiresSoon.connectionId)).resolves.toBeUndefined();
    await expect(registry.listByConversation(conversationId)).resolves.toEqual([]);
  });

  it("lists only that conversation's live connections", async () => {
    const conversationId = randomUUID();
    const other = randomUUID();
    const mine = [record(conversationId), record(conversationId), record(conversationId)];
    for (const row of mine) await registry.register(row);
    await registry.register(record(other));
    await registry.register(record(conversationId, { expiresAt: Math.floor(nowMs / 1000) - 10 }));

    const listed = await registry.listByConversation(conversationId);
    const byId = (a: ConnectionRecord, b: ConnectionRecord) => a.connectionId.localeCompare(b.connectionId);
    expect([...listed].sort(byId)).toEqual([...mine].sort(byId));
    await expect(registry.listByConversation(randomUUID())).resolves.toEqual([]);
  });

  it('queries the conversation index and never scans', async () => {
    const conversationId = randomUUID();
    await registry.register(record(conversationId));
    sent.length = 0;
    await registry.listByConversation(conversationId);

    expect(commandNames()).not.toContain('ScanCommand');
    expect(commandNames()).toEqual(['QueryCommand']);
    expect(sent[0]?.input).toMatchObject({ TableName: TABLES.connections, IndexName: CONVERSATION_INDEX });
  });

  it('follows LastEvaluatedKey across pages of more than 1 MB (1,200 padded rows)', async () => {
    const conversationId = randomUUID();
    const nowSeconds = Math.floor(nowMs / 1000);
    const padding = 'p'.repeat(1500);
    const live: string[] = [];
    const items: Record<string, unknown>[] = [];
    for (let i = 0; i < 1200; i += 1) {
      const connectionId = `conn-${String(i).padStart(5, '0')}=`;
      // Every 100th row is expired, on both pages: the filter must apply to each page, not only the first.
      const expired = i % 100 === 7;
      if (!expired) live.push(connectionId);
      items.push({
        ...record(conversationId, { connectionId, expiresAt: expired ? nowSeconds - 5 : nowSeconds + 600 }),
        padding,
      });
    }
    // Rows of another conversation around it must not leak in.
    items.push({ ...record(randomUUID()), padding });
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

  it('removes a connection; removing an unknown one is a no-op', async () => {
    const conversationId = randomUUID();
    const keep = record(conversationId);
    const drop = record(conversationId);
    await registry.register(keep);
    await registry.register(drop);
    // Read first, so the binding is remembered: remove must forget it too.
    await expect(registry.get(drop.connectionId)).resolves.toEqual(drop);

    await registry.remove(drop.connectionId);
    await expect(registry.get(drop.connectionId)).resolves.toBeUndefined();
    await expect(registry.listByConversation(conversationId)).resolves.toEqual([keep]);
    await expect(registry.remove(`never-${randomUUID()}`)).resolves.toBeUndefined();
  });

  it('re-registering the same connection id replaces the row', async () => {
    const conversationId = randomUUID();
    const first = record(conversationId, { connectionId: `same-${randomUUID()}` });
    await registry.register(first);
    const moved = { ...first, conversationId: randomUUID(), connectedAt: first.connectedAt + 5 };
    await registry.register(moved);

    await expect(registry.get(first.connectionId)).resolves.toEqual(moved);
    await expect(registry.listByConversation(conversationId)).resolves.toEqual([]);
    await expect(registry.listByConversation(moved.conversationId)).resolves.toEqual([moved]);
  });

  it('lets a non-transient error through unchanged (missing table)', async () => {
    const missing = new DynamoConnectionRegistry(dynamo.doc, 'no-such-table', clock);
    const error: unknown = await missing.get('x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(UnavailableError);
    expect((error as Error).name).toBe('ResourceNotFoundException');
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
      await expect(down.get('x')).rejects.toBeInstanceOf(UnavailableError);
      await expect(down.listByConversation('c')).rejects.toBeInstanceOf(UnavailableError);
      await expect(down.register(record('c'))).rejects.toBeInstanceOf(UnavailableError);
      await expect(down.remove('x')).rejects.toBeInstanceOf(UnavailableError);
    } finally {
      client.destroy();
    }
  });
});

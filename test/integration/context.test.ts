import { randomUUID } from 'node:crypto';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished, vi } from 'vitest';
import { MemoryMessageStore } from '../../lambdas/adapters/memory-message-store.js';
import { RedisMessageStore } from '../../lambdas/adapters/redis-message-store.js';
import { buildContext, type AppContext } from '../../lambdas/context.js';
import { UnavailableError } from '../../lambdas/errors.js';
import type { FanoutJob, StoredMessage } from '../../lambdas/ports.js';
import { createTables, startDynalite, type LocalDynamo } from '../support/dynalite.js';
import { closedPort } from './net.js';
import { startSqs, type LocalSqs } from '../support/sqs.js';

const TABLES = { connections: `connections-${randomUUID()}`, members: `members-${randomUUID()}` };
const MASTER_KEY = 'integration-test-master-key-0123456789-abcdefghijklmnop';

let dynamo: LocalDynamo;
let sqs: LocalSqs;
let queueUrl: string;

beforeAll(async () => {
  // The SDK clients the context builds take their credentials from the default chain: the environment first.
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
  [dynamo, sqs] = await Promise.all([startDynalite(), startSqs()]);
  await createTables(dynamo.client, TABLES);
  queueUrl = sqs.createQueue(`fanout-${randomUUID()}`);
});

afterAll(async () => {
  await Promise.all([dynamo.close(), sqs.close()]);
  vi.unstubAllEnvs();
});

function env(overrides: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    CONNECTIONS_TABLE: TABLES.connections,
    MEMBERS_TABLE: TABLES.members,
    FANOUT_QUEUE_URL: queueUrl,
    REDIS_URL: inject('redisUrl'),
    APP_SECRET_JSON: JSON.stringify({ masterKey: MASTER_KEY }),
    DYNAMODB_ENDPOINT: dynamo.endpoint,
    SQS_ENDPOINT: sqs.endpoint,
    AWS_REGION: sqs.region,
    LOG_LEVEL: 'SILENT',
    RATE_LIMIT_PER_SECOND: '50',
    RATE_LIMIT_BURST: '100',
    ...overrides,
  };
}

async function built(overrides: Record<string, string> = {}): Promise<AppContext> {
  const context = await buildContext(env(overrides));
  onTestFinished(() => context.close());
  return context;
}

describe('buildContext against dynalite, fauxqs and redis-server', () => {
  it('builds a complete context from the environment', async () => {
    const context = await built();
    expect(context.config).toMatchObject({
      CONNECTIONS_TABLE: TABLES.connections,
      MEMBERS_TABLE: TABLES.members,
      FANOUT_QUEUE_URL: queueUrl,
      DYNAMODB_ENDPOINT: dynamo.endpoint,
      SQS_ENDPOINT: sqs.endpoint,
    });
    expect(context.settings).toMatchObject({ ratePerSecond: 50, rateBurst: 100 });
    expect(context.store).toBeInstanceOf(RedisMessageStore);
    expect(context.posterFor('https://a.example/prod')).toBe(context.posterFor('https://a.example/prod'));
    expect(context.posterFor('https://a.example/prod')).not.toBe(context.posterFor('https://b.example/prod'));
    expect(context.newMessageId()).not.toBe(context.newMessageId());

    const sealed = context.sealer.seal('conv', 'msg', 'hello ✓');
    expect(sealed).not.toContain('hello');
    expect(context.sealer.open('conv', 'msg', sealed)).toBe('hello ✓');
  });

  it('its registry and membership store work on dynalite', async () => {
    const context = await built();
    const conversationId = `conv-${randomUUID()}`;
    const nowSeconds = Math.floor(context.clock.now() / 1000);
    const record = {
      connectionId: `${randomUUID()}=`,
      userId: 'alice',
      deviceId: 'phone',
      conversationId,
      connectedAt: context.clock.now(),
      expiresAt: nowSeconds + 600,
    };
    await context.registry.register(record);
    await expect(context.registry.get(record.connectionId)).resolves.toEqual(record);
    await expect(context.registry.listByConversation(conversationId)).resolves.toEqual([record]);
    await context.registry.remove(record.connectionId);
    await expect(context.registry.listByConversation(conversationId)).resolves.toEqual([]);

    await context.members.add(conversationId, 'alice');
    await expect(context.members.isMember(conversationId, 'alice')).resolves.toBe(true);
    await expect(context.members.isMember(conversationId, 'bob')).resolves.toBe(false);
  });

  it('its message store works on redis-server', async () => {
    const context = await built();
    const conversationId = `conv-${randomUUID()}`;
    const limit = { connectionId: `conn-${randomUUID()}`, perSecond: 50, burst: 100 };
    await context.store.registerDevice(conversationId, { userId: 'bob', deviceId: 'phone' });
    const messageId = context.newMessageId();
    const message: StoredMessage = {
      conversationId,
      messageId,
      seq: 0,
      senderId: 'alice',
      senderDevice: 'phone',
      clientMessageId: 'cm-1',
      sentAt: context.clock.now(),
      sealed: context.sealer.seal(conversationId, messageId, 'hi bob'),
    };
    await expect(context.store.append(message, limit)).resolves.toEqual({ status: 'stored', seq: 1 });

    const page = await context.store.pending(
      conversationId,
      { userId: 'bob', deviceId: 'phone' },
      { afterSeq: 0, limit: 10, maxBytes: 100_000 },
      limit,
    );
    expect(page).toEqual({ status: 'ok', messages: [{ ...message, seq: 1 }], hasMore: false });
    const loaded = await context.store.load(conversationId, messageId);
    expect(loaded === undefined ? undefined : context.sealer.open(conversationId, messageId, loaded.sealed)).toBe('hi bob');
  });

  it('its fan-out queue delivers to fauxqs', async () => {
    const context = await built();
    const job: FanoutJob = {
      kind: 'message',
      endpoint: 'https://x.execute-api.us-east-1.amazonaws.com/prod',
      conversationId: `conv-${randomUUID()}`,
      messageId: randomUUID(),
      connectionIds: ['a=', 'b+/'],
    };
    await context.fanout.enqueue([job]);
    const { Messages = [] } = await sqs.client.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    expect(Messages.map((m) => m.Body)).toEqual([JSON.stringify(job)]);
  });

  it('uses the in-memory store for REDIS_URL=memory:', async () => {
    const context = await built({ REDIS_URL: 'memory:' });
    expect(context.store).toBeInstanceOf(MemoryMessageStore);
    const limit = { connectionId: 'c', perSecond: 1, burst: 1 };
    await expect(context.store.admit('conv', limit)).resolves.toBe(true);
  });

  it('builds with Redis down, and the store then answers UnavailableError instead of hanging', async () => {
    const port = await closedPort();
    const context = await built({ REDIS_URL: `redis://127.0.0.1:${port}` });
    const limit = { connectionId: 'c', perSecond: 1, burst: 1 };
    await expect(context.store.admit('conv', limit)).rejects.toBeInstanceOf(UnavailableError);
    await expect(context.store.load('conv', 'm')).rejects.toBeInstanceOf(UnavailableError);
  });
});

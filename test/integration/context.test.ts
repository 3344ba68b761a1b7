import { randomUUID } from 'node:crypto';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import { DynamoMessageLog } from '../../lambdas/adapters/dynamo-message-log.js';
import { MemoryRateLimiter } from '../../lambdas/adapters/memory-rate-limiter.js';
import { RedisRateLimiter } from '../../lambdas/adapters/redis-rate-limiter.js';
import { NoSeqCache, RedisSeqCache } from '../../lambdas/adapters/redis-seq-cache.js';
import type { FanoutJob } from '../../lambdas/ports.js';
import { createTables, startDynalite, type LocalDynamo } from '../support/dynalite.js';
import { closedPort } from './net.js';
import { startSqs, type LocalSqs } from '../support/sqs.js';
import { Scope, type Route } from '../../lambdas/context/lazy.js';
import { route as connectRoute } from '../../lambdas/handlers/connect.js';
import { route as getUnackedRoute } from '../../lambdas/handlers/get-unacked.js';
import { route as sendMessageRoute } from '../../lambdas/handlers/send-message.js';

const TABLES = {
  connections: `connections-${randomUUID()}`,
  members: `members-${randomUUID()}`,
  messages: `messages-${randomUUID()}`,
  idempotency: `idempotency-${randomUUID()}`,
  positions: `positions-${randomUUID()}`,
  pushTargets: `push-targets-${randomUUID()}`,
};
const MASTER_KEY = 'integration-test-master-key-0123456789-abcdefghijklmnop';

let dynamo: LocalDynamo;
let sqs: LocalSqs;
let queueUrl: string;

beforeAll(async () => {
  [dynamo, sqs] = await Promise.all([startDynalite(), startSqs()]);
  await createTables(dynamo.client, TABLES);
  queueUrl = await sqs.createQueue(`fanout-${randomUUID()}`);
});

afterAll(async () => {
  await Promise.all([dynamo.close(), sqs.close()]);
});

function env(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    // The clients take their credentials from the route's environment, as in Lambda.
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    CONNECTIONS_TABLE: TABLES.connections,
    MEMBERS_TABLE: TABLES.members,
    MESSAGES_TABLE: TABLES.messages,
    IDEMPOTENCY_TABLE: TABLES.idempotency,
    POSITIONS_TABLE: TABLES.positions,
    PUSH_TARGETS_TABLE: TABLES.pushTargets,
    FANOUT_QUEUE_URL: queueUrl,
    REDIS_URL: inject('redisUrl'),
    APP_SECRET_JSON: JSON.stringify({ masterKey: MASTER_KEY }),
    DYNAMODB_ENDPOINT: dynamo.endpoint,
    SQS_ENDPOINT: sqs.endpoint,
    AWS_REGION: sqs.region,
    LOG_LEVEL: 'SILENT',
    RATE_LIMIT_PER_SECOND: '50',
    RATE_LIMIT_BURST: '100',
    RATE_LIMIT_USER_PER_SECOND: '60',
    RATE_LIMIT_USER_BURST: '120',
    MAX_CONNECTIONS_PER_USER: '2',
    ...overrides,
  };
}

/** A route's services built from the environment, released when the test ends. */
async function built<S, H>(route: Route<S, H>, overrides: Record<string, string> = {}): Promise<S> {
  const scope = new Scope();
  onTestFinished(() => scope.close());
  return await route.build(env(overrides), scope);
}

describe('route services against dynalite, fauxqs and redis-server', () => {
  it('builds complete services from the environment', async () => {
    const context = await built(sendMessageRoute);
    expect(context.limits).toEqual({ ratePerSecond: 50, rateBurst: 100, userRatePerSecond: 60, userRateBurst: 120 });
    expect(context.messages).toBeInstanceOf(DynamoMessageLog);
    expect(context.limiter).toBeInstanceOf(RedisRateLimiter);
    expect(context.seqCache).toBeInstanceOf(RedisSeqCache);
    expect(context.posterFor('https://a.example/prod')).toBe(context.posterFor('https://a.example/prod'));
    expect(context.posterFor('https://a.example/prod')).not.toBe(context.posterFor('https://b.example/prod'));
    expect(context.newMessageId()).not.toBe(context.newMessageId());

    const fields = { conversationId: 'conv', messageId: 'msg', seq: 1, senderId: 'a', senderDevice: 'd', clientMessageId: 'c', sentAt: 1 };
    const sealed = context.sealer.seal(fields, 'hello ✓');
    expect(sealed).not.toContain('hello');
    expect(context.sealer.open(fields, sealed)).toBe('hello ✓');
  });

  it('its registry and membership store work on dynalite', async () => {
    const context = await built(connectRoute);
    const conversationId = `conv-${randomUUID()}`;
    const nowSeconds = Math.floor(context.clock.now() / 1000);
    const record = {
      connectionId: `${randomUUID()}=`,
      userId: `alice-${randomUUID()}`,
      deviceId: 'phone',
      connectedAt: context.clock.now(),
      expiresAt: nowSeconds + 600,
    };
    expect(context.handshake.maxConnectionsPerUser).toBe(2);
    await expect(context.registry.open(record, context.handshake.maxConnectionsPerUser)).resolves.toBe(true);
    await expect(context.registry.connection(record.connectionId)).resolves.toEqual(record);
    await context.registry.subscribe(record, [conversationId], context.clock.now());
    await expect(context.registry.subscription(record.connectionId, conversationId)).resolves.toEqual({ ...record, conversationId });
    await expect(context.registry.listByConversation(conversationId)).resolves.toEqual([{ ...record, conversationId }]);
    // The user's limit, from MAX_CONNECTIONS_PER_USER.
    const second = { ...record, connectionId: `${randomUUID()}=` };
    await expect(context.registry.open(second, context.handshake.maxConnectionsPerUser)).resolves.toBe(true);
    const third = { ...record, connectionId: `${randomUUID()}=` };
    await expect(context.registry.open(third, context.handshake.maxConnectionsPerUser)).resolves.toBe(false);
    await context.registry.remove(record.connectionId);
    await expect(context.registry.connection(record.connectionId)).resolves.toBeUndefined();
    await expect(context.registry.listByConversation(conversationId)).resolves.toEqual([]);
    await expect(context.registry.open(third, context.handshake.maxConnectionsPerUser)).resolves.toBe(true);

    await context.members.add(conversationId, 'alice', 0);
    await expect(context.members.isMember(conversationId, 'alice')).resolves.toBe(true);
    await expect(context.members.isMember(conversationId, 'bob')).resolves.toBe(false);
  });

  it('its message log and device positions work on dynalite, its seq cache on redis-server', async () => {
    const [connecting, context, reading] = await Promise.all([built(connectRoute), built(sendMessageRoute), built(getUnackedRoute)]);
    const conversationId = `conv-${randomUUID()}`;
    await connecting.positions.register(conversationId, { userId: 'bob', deviceId: 'phone' }, 0, Date.now());
    const draft = { conversationId, messageId: context.newMessageId(), senderId: 'alice', senderDevice: 'phone', clientMessageId: 'cm-1', sentAt: context.clock.now() };
    const outcome = await context.messages.append(draft, (fields) => context.sealer.seal(fields, 'hi bob'));
    expect(outcome).toMatchObject({ status: 'stored', entry: { seq: 1, messageId: draft.messageId } });
    await context.seqCache.raise(conversationId, 1);
    await expect(reading.seqCache.get(conversationId)).resolves.toBe(1);

    const page = await reading.messages.page(conversationId, { afterSeq: 0, limit: 10, maxBytes: 100_000, newestFirst: false });
    expect(page.entries.map((entry) => reading.sealer.open(entry, entry.sealed))).toEqual(['hi bob']);
    await expect(reading.positions.get(conversationId, { userId: 'bob', deviceId: 'phone' })).resolves.toMatchObject({ ackedThrough: 0 });
  });

  it('runs without Redis: limits in the container, no seq cache', async () => {
    // An empty REDIS_URL is unset: the route is built with no Redis at all.
    const context = await built(sendMessageRoute, { REDIS_URL: '' });
    expect(context.limiter).toBeInstanceOf(MemoryRateLimiter);
    expect(context.seqCache).toBeInstanceOf(NoSeqCache);
  });

  it('its fan-out queue delivers to fauxqs', async () => {
    const context = await built(sendMessageRoute);
    const job: FanoutJob = {
      kind: 'message',
      conversationId: `conv-${randomUUID()}`,
      seq: 1,
      messageId: randomUUID(),
      connectionIds: ['a=', 'b+/'],
    };
    await context.fanout.enqueue([job]);
    const { Messages = [] } = await sqs.client.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    expect(Messages.map((m) => m.Body)).toEqual([JSON.stringify(job)]);
  });

  it('builds with Redis down, and its helpers then answer at once instead of hanging (the limiter in process)', async () => {
    const port = await closedPort();
    const context = await built(sendMessageRoute, { REDIS_URL: `redis://127.0.0.1:${port}` });
    const started = Date.now();
    await expect(context.limiter.admit([{ key: 'conn:c', perSecond: 1, burst: 1 }])).resolves.toBe(true);
    await expect(context.limiter.admit([{ key: 'conn:c', perSecond: 1, burst: 1 }])).resolves.toBe(false);
    await expect(context.seqCache.get('conv')).resolves.toBeUndefined();
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});

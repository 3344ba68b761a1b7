import { randomUUID } from 'node:crypto';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import { RedisMessageStore } from '../../lambdas/adapters/redis-message-store.js';
import { UnavailableError } from '../../lambdas/errors.js';
import type { FanoutJob, StoredMessage } from '../../lambdas/ports.js';
import { createTables, startDynalite, type LocalDynamo } from '../support/dynalite.js';
import { closedPort } from './net.js';
import { startSqs, type LocalSqs } from '../support/sqs.js';
import { Scope, type Route } from '../../lambdas/context/lazy.js';
import { route as connectRoute } from '../../lambdas/handlers/connect.js';
import { route as getUnackedRoute } from '../../lambdas/handlers/get-unacked.js';
import { route as sendMessageRoute } from '../../lambdas/handlers/send-message.js';

const TABLES = { connections: `connections-${randomUUID()}`, members: `members-${randomUUID()}` };
const MASTER_KEY = 'integration-test-master-key-0123456789-abcdefghijklmnop';

let dynamo: LocalDynamo;
let sqs: LocalSqs;
let queueUrl: string;

beforeAll(async () => {
  [dynamo, sqs] = await Promise.all([startDynalite(), startSqs()]);
  await createTables(dynamo.client, TABLES);
  queueUrl = sqs.createQueue(`fanout-${randomUUID()}`);
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

/** A route's services built from the environment, released when the test ends. */
async function built<S, H>(route: Route<S, H>, overrides: Record<string, string> = {}): Promise<S> {
  const scope = new Scope();
  onTestFinished(() => scope.close());
  return await route.build(env(overrides), scope);
}

describe('route services against dynalite, fauxqs and redis-server', () => {
  it('builds complete services from the environment', async () => {
    const context = await built(sendMessageRoute);
    expect(context.limits).toEqual({ ratePerSecond: 50, rateBurst: 100 });
    expect(context.store).toBeInstanceOf(RedisMessageStore);
    expect(context.posterFor('https://a.example/prod')).toBe(context.posterFor('https://a.example/prod'));
    expect(context.posterFor('https://a.example/prod')).not.toBe(context.posterFor('https://b.example/prod'));
    expect(context.newMessageId()).not.toBe(context.newMessageId());

    const sealed = context.sealer.seal('conv', 'msg', 'hello ✓');
    expect(sealed).not.toContain('hello');
    expect(context.sealer.open('conv', 'msg', sealed)).toBe('hello ✓');
  });

  it('its registry and membership store work on dynalite', async () => {
    const context = await built(connectRoute);
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
    const [connecting, context, reading] = await Promise.all([built(connectRoute), built(sendMessageRoute), built(getUnackedRoute)]);
    const conversationId = `conv-${randomUUID()}`;
    const limit = { connectionId: `conn-${randomUUID()}`, perSecond: 50, burst: 100 };
    await connecting.store.registerDevice(conversationId, { userId: 'bob', deviceId: 'phone' });
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

    const page = await reading.store.pending(
      conversationId,
      { userId: 'bob', deviceId: 'phone' },
      { afterSeq: 0, limit: 10, maxBytes: 100_000 },
      limit,
    );
    expect(page).toEqual({ status: 'ok', messages: [{ ...message, seq: 1 }], hasMore: false });
    const { messages } = await reading.store.pending(conversationId, { userId: 'bob', deviceId: 'phone' }, { afterSeq: 0, limit: 1, maxBytes: 100_000 }, limit).then((r) => (r.status === 'ok' ? r : { messages: [] }));
    expect(messages.map((m) => reading.sealer.open(conversationId, messageId, m.sealed))).toEqual(['hi bob']);
  });

  it('its fan-out queue delivers to fauxqs', async () => {
    const context = await built(sendMessageRoute);
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

  it('builds with Redis down, and the store then answers UnavailableError instead of hanging', async () => {
    const port = await closedPort();
    const context = await built(sendMessageRoute, { REDIS_URL: `redis://127.0.0.1:${port}` });
    const limit = { connectionId: 'c', perSecond: 1, burst: 1 };
    const message: StoredMessage = { conversationId: 'conv', messageId: 'm', seq: 0, senderId: 'a', senderDevice: 'd', clientMessageId: 'c', sentAt: 1, sealed: 'x' };
    await expect(context.store.append(message, limit)).rejects.toBeInstanceOf(UnavailableError);
  });
});

import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { sqsRecord } from '../support/sqs-record.js';
import { DynamoMembershipStore } from '../../lambdas/adapters/dynamo-members.js';
import { freePort } from '../../local/redis-server.js';
import { signToken } from '../../local/tokens.js';
import { createTables, startDynalite, type LocalDynamo } from '../support/dynalite.js';
import { applyEnv, completeEnv, restoreEnv, TEST_KEYS, TEST_SECRET_JSON, uniqueId } from '../support/env.js';
import { connectEvent, messageEvent } from '../support/events.js';
import { parseFrame, type Frame } from './support/answers.js';
import { controlledRedis, managementStub, throttlingDynamo, type ControlledRedis, type ManagementStub, type ThrottlingDynamo } from './support/fault-servers.js';
import { BackendProbe, CONNECTION_ENTRY, SUBSCRIPTION_PREFIX, switchEnv } from './support/probe.js';
import { lambdas } from '../support/lambdas.js';

const ack = lambdas.ack;
const connect = lambdas.connect;
const fanoutWorker = lambdas.fanoutWorker;
const getUnacked = lambdas.getUnacked;
const sendMessage = lambdas.sendMessage;
const typing = lambdas.typing;

/**
 * Faults, one test each: Redis down or timing out, DynamoDB throttling, Management API failures, and a context
 * that cannot be built. The handlers run in process against dynalite (behind a proxy that throttles on demand),
 * redis-server (the run's, or one this file pauses and kills) and a stub Management API.
 */
const TABLES = {
  connections: uniqueId('connections'),
  members: uniqueId('members'),
  messages: uniqueId('messages'),
  idempotency: uniqueId('idempotency'),
  positions: uniqueId('positions'),
  pushTargets: uniqueId('push-targets'),
};
let dynamo: LocalDynamo;
let dynamoProxy: ThrottlingDynamo;
let stub: ManagementStub;
let probe: BackendProbe;

beforeAll(async () => {
  dynamo = await startDynalite();
  await createTables(dynamo.client, TABLES);
  dynamoProxy = await throttlingDynamo(dynamo.endpoint);
  stub = await managementStub();
  probe = new BackendProbe({ dynamodbEndpoint: dynamo.endpoint, redisUrl: inject('redisUrl'), tables: TABLES });
  applyEnv(
    completeEnv(inject('redisUrl'), {
      CONNECTIONS_TABLE: TABLES.connections,
      MEMBERS_TABLE: TABLES.members,
      MESSAGES_TABLE: TABLES.messages,
      IDEMPOTENCY_TABLE: TABLES.idempotency,
      POSITIONS_TABLE: TABLES.positions,
      PUSH_TARGETS_TABLE: TABLES.pushTargets,
      DYNAMODB_ENDPOINT: dynamoProxy.endpoint,
      CALLBACK_URL: stub.endpoint,
      RATE_LIMIT_PER_SECOND: '100000',
      RATE_LIMIT_BURST: '100000',
      RATE_LIMIT_USER_PER_SECOND: '100000',
      RATE_LIMIT_USER_BURST: '100000',
      FANOUT_THRESHOLD: '1000',
      // The connections here are a moment old: prune them on 410 at once (the grace is tested in delivery.test.ts).
      PRUNE_GRACE_SECONDS: '0',
    }),
  );
});

afterAll(async () => {
  await lambdas.reset();
  restoreEnv();
  await Promise.all([probe.close(), stub.close(), dynamoProxy.close()]);
  await dynamo.close();
});

beforeEach(async () => {
  dynamoProxy.reset();
  await lambdas.reset();
});

interface Device {
  connectionId: string;
  userId: string;
  deviceId: string;
}

/** A conversation whose devices connected through the real $connect handler. */
async function conversation(...devices: Device[]): Promise<string> {
  const conversationId = uniqueId('fault');
  const members = new DynamoMembershipStore(dynamo.doc, TABLES.members);
  for (const userId of new Set(devices.map((d) => d.userId))) await members.add(conversationId, userId, 0);
  for (const device of devices) await connectDevice(conversationId, device);
  return conversationId;
}

async function connectDevice(conversationId: string, device: Device): Promise<void> {
  const token = await signToken(TEST_KEYS.jwtSecret, device.userId);
  const result = await connect(connectEvent(device.connectionId, { token, conversationId, clientId: device.deviceId }));
  expect(result.statusCode).toBe(200);
}

const device = (userId: string, deviceId = 'phone'): Device => ({ connectionId: `${uniqueId(userId)}=`, userId, deviceId });

type Route = (event: unknown) => Promise<{ statusCode: number; body?: string }>;
/**
 * One frame's answer: the route response, or — for sendMessage, whose `sent` is posted to the sender's own
 * connection before the fan-out — that posted `sent`.
 */
async function frame(route: Route, connectionId: string, body: Record<string, unknown>): Promise<Frame | undefined> {
  const before = stub.posts.length;
  const result = await route(messageEvent(connectionId, body, String(body.action)));
  expect(result.statusCode).toBe(200);
  if (result.body !== undefined) return parseFrame(result.body);
  const posted = stub.posts.slice(before).find((p) => p.connectionId === connectionId && (JSON.parse(p.data) as Frame).type === 'sent');
  return posted === undefined ? undefined : parseFrame(posted.data);
}

const postsTo = (connectionId: string) => stub.posts.filter((p) => p.connectionId === connectionId);

describe('Redis down (nothing listening)', () => {
  let alice: Device;
  let bob: Device;
  let conversationId: string;
  let restore: () => Promise<void>;

  beforeEach(async () => {
    alice = device('alice');
    bob = device('bob');
    conversationId = await conversation(alice, bob);
    restore = await switchEnv({ REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
  });
  afterEach(async () => restore());

  it('changes nothing a client can see: every frame is served, the message is in the log, pending and acked', async () => {
    expect(await frame(typing, alice.connectionId, { action: 'typing', conversationId })).toBeUndefined();
    const sent = await frame(sendMessage, alice.connectionId, { action: 'sendMessage', conversationId, clientMessageId: 'down-1', body: 'while redis is down' });
    expect(sent).toMatchObject({ type: 'sent', seq: 1, duplicate: false });
    const pending = await frame(getUnacked, bob.connectionId, { action: 'getUnacked', conversationId });
    expect((pending?.messages as { body: string }[]).map((m) => m.body)).toEqual(['while redis is down']);
    expect(await frame(ack, bob.connectionId, { action: 'ack', conversationId, upToSeq: 1 })).toMatchObject({ type: 'acked', upToSeq: 1 });
    expect(await frame(getUnacked, bob.connectionId, { action: 'getUnacked', conversationId })).toMatchObject({ messages: [] });
    expect(await frame(lambdas.getHistory, bob.connectionId, { action: 'getHistory', conversationId })).toMatchObject({
      messages: [expect.objectContaining({ seq: 1, body: 'while redis is down' })],
    });
    expect(await probe.logItems(conversationId)).toHaveLength(1);
    expect(postsTo(bob.connectionId).map((p) => (JSON.parse(p.data) as Frame).type)).toEqual(['typing', 'message']);
  });
});

describe('Redis timing out or killed (a dedicated redis-server)', () => {
  let redis: ControlledRedis;
  let alice: Device;
  let bob: Device;
  let conversationId: string;
  let restore: () => Promise<void>;

  beforeAll(async () => {
    redis = await controlledRedis();
  });
  afterAll(async () => redis.stop());
  beforeEach(async () => {
    restore = await switchEnv({ REDIS_URL: redis.url });
    alice = device('alice');
    bob = device('bob');
    conversationId = await conversation(alice, bob);
  });
  afterEach(async () => {
    redis.resume();
    await restore();
  });

  it('serves every frame while Redis does not answer (limits fall back to the container), within the deadline', async () => {
    redis.pause();
    const started = Date.now();
    const [typed, sent, acked, unacked] = await Promise.all([
      frame(typing, alice.connectionId, { action: 'typing', conversationId }),
      frame(sendMessage, alice.connectionId, { action: 'sendMessage', conversationId, clientMessageId: 'slow-1', body: 'while redis hangs' }),
      frame(ack, bob.connectionId, { action: 'ack', conversationId, messageIds: ['m-1'] }),
      frame(getUnacked, bob.connectionId, { action: 'getUnacked', conversationId }),
    ]);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(typed).toBeUndefined();
    expect(sent).toMatchObject({ type: 'sent', seq: 1 });
    expect(acked).toMatchObject({ type: 'acked' });
    expect(unacked).toMatchObject({ type: 'unacked' });
    redis.resume();
    // A resend after Redis is back is the same message.
    const resent = await frame(sendMessage, alice.connectionId, { action: 'sendMessage', conversationId, clientMessageId: 'slow-1', body: 'while redis hangs' });
    expect(resent).toMatchObject({ type: 'sent', seq: 1, duplicate: true });
    const after = await frame(getUnacked, bob.connectionId, { action: 'getUnacked', conversationId });
    expect((after?.messages as { clientMessageId: string }[]).map((m) => m.clientMessageId)).toEqual(['slow-1']);
  });

  it('keeps serving while Redis is killed and restarted empty: seq continues from the log, never repeats', async () => {
    const first = await frame(sendMessage, alice.connectionId, { action: 'sendMessage', conversationId, clientMessageId: 'k-0', body: 'before' });
    await redis.kill();
    const during = await frame(sendMessage, alice.connectionId, { action: 'sendMessage', conversationId, clientMessageId: 'k-1', body: 'while down' });
    await redis.restart();
    let after: Frame | undefined;
    for (let attempt = 0; attempt < 3; attempt += 1) {
      after = await frame(sendMessage, alice.connectionId, { action: 'sendMessage', conversationId, clientMessageId: `k-${2 + attempt}`, body: 'after' });
    }
    expect([first?.seq, during?.seq, after?.seq]).toEqual([1, 2, 5]);
    expect((await probe.logItems(conversationId)).map((item) => item.seq)).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('DynamoDB throttling', () => {
  let alice: Device;
  let conversationId: string;

  beforeEach(async () => {
    alice = device('alice');
    conversationId = await conversation(alice);
    // A fresh container: the binding is not cached yet, so the next frame reads the registry.
    await lambdas.reset();
    dynamoProxy.reset();
  });

  it('is retried by the SDK with backoff, and the frame is served once DynamoDB answers', async () => {
    dynamoProxy.throttle('GetItem', 2);
    expect(await frame(getUnacked, alice.connectionId, { action: 'getUnacked', conversationId })).toMatchObject({ type: 'unacked' });
    expect(dynamoProxy.throttled('GetItem')).toBe(2);
    // The two throttled attempts at the connection's record, then the record, the subscription, the membership
    // and the device position (the roster is a Query, not a GetItem).
    expect(dynamoProxy.calls('GetItem')).toBe(6);
    expect(dynamoProxy.calls('Query')).toBeGreaterThanOrEqual(1);
  });

  it('answers unavailable once the SDK\'s retries are spent', async () => {
    dynamoProxy.throttle('GetItem', Number.POSITIVE_INFINITY, 'ProvisionedThroughputExceededException');
    expect(await frame(getUnacked, alice.connectionId, { action: 'getUnacked', conversationId })).toMatchObject({
      type: 'error',
      code: 'unavailable',
      action: 'getUnacked',
    });
    expect(dynamoProxy.calls('GetItem')).toBeGreaterThanOrEqual(2);
    expect(dynamoProxy.throttled('GetItem')).toBe(dynamoProxy.calls('GetItem'));
  });

  it('answers 503 at $connect and writes nothing while membership reads are throttled', async () => {
    dynamoProxy.throttle('GetItem', Number.POSITIVE_INFINITY);
    const carol = device('carol');
    await new DynamoMembershipStore(dynamo.doc, TABLES.members).add(conversationId, 'carol', 0);
    const token = await signToken(TEST_KEYS.jwtSecret, 'carol');
    const result = await connect(connectEvent(carol.connectionId, { token, conversationId, clientId: 'phone' }));
    expect(result.statusCode).toBe(503);
    expect(dynamoProxy.calls('GetItem')).toBeGreaterThanOrEqual(2);
    // No record, no claim on carol's connection slots, no subscription.
    for (const write of ['PutItem', 'UpdateItem', 'BatchWriteItem', 'DeleteItem', 'TransactWriteItems']) {
      expect([write, dynamoProxy.calls(write)]).toEqual([write, 0]);
    }
    dynamoProxy.reset();
    expect(await probe.entriesOf(carol.connectionId)).toEqual([]);
    expect(await probe.openConnectionsOf('carol')).toEqual([]);
    expect((await probe.rowsOf(conversationId)).map((row) => row.connectionId)).toEqual([alice.connectionId]);
  });
});

describe('Management API failures', () => {
  it('a 410 prunes that connection; the message stays pending for its device', async () => {
    const alice = device('alice');
    const bob = device('bob');
    const conversationId = await conversation(alice, bob);
    stub.answer(bob.connectionId, [410]);
    const sent = await frame(sendMessage, alice.connectionId, { action: 'sendMessage', conversationId, clientMessageId: 'g-1', body: 'to a gone socket' });
    expect(sent).toMatchObject({ type: 'sent', duplicate: false });
    expect(stub.attempts(bob.connectionId)).toBe(1);
    // bob's connection is forgotten entirely: record, subscription, and its place among his open connections.
    expect(await probe.entriesOf(bob.connectionId)).toEqual([]);
    expect(await probe.openConnectionsOf('bob')).not.toContain(bob.connectionId);
    expect((await probe.rowsOf(conversationId)).map((row) => row.connectionId)).toEqual([alice.connectionId]);
    // alice's connection, whose post succeeded, is untouched.
    expect(await probe.entriesOf(alice.connectionId)).toEqual([CONNECTION_ENTRY, `${SUBSCRIPTION_PREFIX}${conversationId}`].sort());
    expect(await probe.openConnectionsOf('alice')).toContain(alice.connectionId);
    // bob's phone comes back on a new connection: the message is waiting.
    const back = { ...bob, connectionId: `${uniqueId('bob')}=` };
    await connectDevice(conversationId, back);
    const pending = await frame(getUnacked, back.connectionId, { action: 'getUnacked', conversationId });
    expect((pending?.messages as { messageId: string }[]).map((m) => m.messageId)).toEqual([sent?.messageId]);
  });

  it('429 and 5xx are retried, then the recipient is left pending, never lost; a transient 503 is delivered on retry', async () => {
    const alice = device('alice');
    const throttled = device('carol');
    const broken = device('dave');
    const flaky = device('erin');
    const conversationId = await conversation(alice, throttled, broken, flaky);
    stub.answer(throttled.connectionId, [429]);
    stub.answer(broken.connectionId, [500]);
    stub.answer(flaky.connectionId, [503, 200]);
    const sent = await frame(sendMessage, alice.connectionId, { action: 'sendMessage', conversationId, clientMessageId: 'r-1', body: 'through a bad gateway' });
    expect(sent).toMatchObject({ type: 'sent', duplicate: false });

    for (const failing of [throttled, broken]) {
      expect(stub.attempts(failing.connectionId)).toBeGreaterThanOrEqual(2);
      expect(stub.attempts(failing.connectionId)).toBeLessThanOrEqual(5);
      // Not gone: the record, the subscription and the slot stay.
      expect(await probe.record(failing.connectionId)).toMatchObject({ connectionId: failing.connectionId, userId: failing.userId });
      expect(await probe.subscription(failing.connectionId, conversationId)).toMatchObject({ conversationId, userId: failing.userId });
      expect(await probe.openConnectionsOf(failing.userId)).toContain(failing.connectionId);
    }
    expect(postsTo(flaky.connectionId).map((p) => p.status)).toEqual([503, 200]);
    for (const recipient of [throttled, broken, flaky]) {
      const pending = await frame(getUnacked, recipient.connectionId, { action: 'getUnacked', conversationId });
      expect((pending?.messages as { messageId: string }[]).map((m) => m.messageId)).toEqual([sent?.messageId]);
    }
  });
});

describe('the context cannot be built', () => {
  describe('because the app secret is invalid', () => {
    let alice: Device;
    let conversationId: string;
    let restore: () => Promise<void>;
    beforeEach(async () => {
      alice = device('alice');
      conversationId = await conversation(alice);
      restore = await switchEnv({ APP_SECRET_JSON: '{"masterKey":"too short"}' });
    });
    afterEach(async () => restore());

    it('answers a clear error on every invocation and recovers on the first one after the fix, with no restart', async () => {
      for (let i = 0; i < 3; i += 1) {
        // typing reads no secret, so it keeps working; every route that does answers a clear error.
        expect(await frame(typing, alice.connectionId, { action: 'typing', conversationId })).toBeUndefined();
        for (const [route, body] of [
          [sendMessage, { action: 'sendMessage', conversationId, clientMessageId: `bad-${i}`, body: 'x' }],
          [getUnacked, { action: 'getUnacked', conversationId }],
        ] as const) {
          const answer = await frame(route, alice.connectionId, body);
          expect(answer).toMatchObject({ type: 'error', code: 'internal', action: body.action });
          expect(String(answer?.message)).toMatch(/misconfigured/);
        }
      }
      const token = await signToken(TEST_KEYS.jwtSecret, 'alice');
      expect((await connect(connectEvent(`${uniqueId('c')}=`, { token, conversationId, clientId: 'tablet' }))).statusCode).toBe(503);
      const job = JSON.stringify({ kind: 'typing', conversationId, userId: 'alice', state: 'start', at: 1, connectionIds: ['X'] });
      expect((await fanoutWorker({ Records: [sqsRecord('w1', job)] })).batchItemFailures).toEqual([{ itemIdentifier: 'w1' }]);

      process.env.APP_SECRET_JSON = TEST_SECRET_JSON;
      expect(await frame(getUnacked, alice.connectionId, { action: 'getUnacked', conversationId })).toMatchObject({ type: 'unacked' });
      expect(await frame(sendMessage, alice.connectionId, { action: 'sendMessage', conversationId, clientMessageId: 'good', body: 'x' })).toMatchObject({ type: 'sent' });
    });
  });

  describe('because Secrets Manager fails', () => {
    const secrets = mockClient(SecretsManagerClient);
    let alice: Device;
    let conversationId: string;
    let restore: () => Promise<void>;
    beforeEach(async () => {
      alice = device('alice');
      conversationId = await conversation(alice);
      secrets.reset();
      secrets.on(GetSecretValueCommand).rejects(Object.assign(new Error('Secrets Manager is down'), { name: 'InternalServiceError', $metadata: { httpStatusCode: 500 } }));
      restore = await switchEnv({ APP_SECRET_ID: 'relay/app-secret', APP_SECRET_JSON: undefined });
    });
    afterEach(async () => restore());
    afterAll(() => secrets.restore());

    it('answers unavailable on every invocation and recovers on the first one after Secrets Manager answers, with no restart', async () => {
      for (let i = 0; i < 3; i += 1) {
        const answer = await frame(getUnacked, alice.connectionId, { action: 'getUnacked', conversationId });
        expect(answer).toMatchObject({ type: 'error', code: 'unavailable', action: 'getUnacked' });
        expect(String(answer?.message)).toMatch(/retry/);
      }
      expect(secrets.commandCalls(GetSecretValueCommand).length).toBeGreaterThanOrEqual(3);
      secrets.on(GetSecretValueCommand).resolves({ SecretString: TEST_SECRET_JSON });
      expect(await frame(getUnacked, alice.connectionId, { action: 'getUnacked', conversationId })).toMatchObject({ type: 'unacked' });
    });
  });
});

import { GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoDevicePositions } from '../../lambdas/adapters/dynamo-device-positions.js';
import { DynamoMembershipStore } from '../../lambdas/adapters/dynamo-members.js';
import { systemClock } from '../../lambdas/context/settings.js';
import { DynamoPushTargets } from '../../lambdas/adapters/dynamo-push-targets.js';
import { PushFailedError } from '../../lambdas/errors.js';
import { startLocalBackend, type LocalBackend } from '../../local/backend.js';
import { startLocalPushService, type LocalPushService, type PushSubscriptionJson, type ReceivedPush } from '../../local/push-service.js';
import { ChatClient, eventually, type Frame } from '../support/chat.js';
import { documentClientOf } from '../support/durability.js';
import { uniqueId } from '../support/env.js';

/**
 * Push notifications end to end: the real handlers and notifier behind the local gateway and queues, sending real
 * Web Push requests (VAPID, RFC 8291 aes128gcm) to the local push service, which decrypts them with the
 * subscription's keys. Every accepted push is counted (onPush), so a push replaced by a later one of the same
 * Topic still counts.
 */
let push: LocalPushService;
let backend: LocalBackend;
let db: DynamoDBDocumentClient;
let members: DynamoMembershipStore;
let sqs: SQSClient;
const pushes: ReceivedPush[] = [];
const open: ChatClient[] = [];

const RATES = { RATE_LIMIT_PER_SECOND: '200', RATE_LIMIT_BURST: '400', RATE_LIMIT_USER_PER_SECOND: '200', RATE_LIMIT_USER_BURST: '400' };

beforeAll(async () => {
  push = await startLocalPushService();
  push.onPush((p) => pushes.push(p));
  backend = await startLocalBackend({ redisUrl: inject('redisUrl'), env: { LOG_LEVEL: 'SILENT', ...RATES } });
  db = documentClientOf(backend);
  members = new DynamoMembershipStore(db, backend.tables.members);
  sqs = new SQSClient({ endpoint: backend.sqsEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
}, 60_000);

afterAll(async () => {
  await Promise.all(open.splice(0).map((c) => c.close().catch(() => undefined)));
  sqs?.destroy();
  db?.destroy();
  await backend?.close();
  await push?.close();
});

async function conversationWith(...userIds: string[]): Promise<string> {
  const conversationId = uniqueId('push');
  for (const userId of userIds) await members.add(conversationId, userId, 0);
  return conversationId;
}

async function ask(client: ChatClient, frame: Record<string, unknown>): Promise<Frame> {
  const requestId = randomUUID();
  await client.send({ ...frame, requestId });
  return client.waitFor((f) => f.requestId === requestId);
}

/** A device subscribed to the conversation. */
async function online(on: LocalBackend, userId: string, deviceId: string, conversationId: string): Promise<ChatClient> {
  const client = await ChatClient.connectDevice(on, userId, deviceId);
  open.push(client);
  expect(await ask(client, { action: 'subscribe', conversationIds: [conversationId] })).toMatchObject({ type: 'subscribed' });
  return client;
}

/** A device that subscribes, registers a fresh subscription of the local push service, and goes offline. */
async function registered(on: LocalBackend, userId: string, deviceId: string, conversationId: string): Promise<{ client: ChatClient; subscription: PushSubscriptionJson }> {
  const client = await online(on, userId, deviceId, conversationId);
  const subscription = await push.subscribe({ applicationServerKey: on.vapidPublicKey });
  expect(await ask(client, { action: 'registerPush', webPush: subscription })).toMatchObject({ type: 'pushRegistered', kind: 'webPush' });
  return { client, subscription };
}

async function say(client: ChatClient, conversationId: string, body: string): Promise<Frame> {
  const sent = await ask(client, { action: 'sendMessage', conversationId, clientMessageId: randomUUID(), body });
  expect(sent).toMatchObject({ type: 'sent', duplicate: false });
  return sent;
}

/** Waits until the notifier has taken every job off its queue and finished it (nothing visible, nothing in flight). */
async function notifierDrained(on: LocalBackend): Promise<void> {
  let quiet = 0;
  await eventually(async () => {
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: on.notifyQueueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
    );
    const busy = Number(Attributes?.ApproximateNumberOfMessages ?? 0) + Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
    quiet = busy === 0 ? quiet + 1 : 0;
    return quiet >= 3;
  }, 15_000);
}

const pushesTo = (subscription: PushSubscriptionJson) => pushes.filter((p) => p.endpoint === subscription.endpoint);
const payloadOf = (p: ReceivedPush | undefined): Record<string, unknown> => JSON.parse(p?.payload ?? 'null') as Record<string, unknown>;

describe('push notifications through the local push service', () => {
  it('wakes an offline device exactly once per offline period, never while online, never for its own messages', async () => {
    const conversationId = await conversationWith('alice', 'bob');
    const alice = await online(backend, 'alice', 'phone', conversationId);
    const bob = await registered(backend, 'bob', 'phone', conversationId);

    // Online: nothing is pushed.
    for (let i = 0; i < 3; i += 1) await say(alice, conversationId, `while online ${i}`);
    await notifierDrained(backend);
    expect(pushesTo(bob.subscription)).toEqual([]);

    // Offline: neither bob's own messages (from his laptop) nor the messages of its own device wake it.
    await bob.client.close();
    const laptop = await online(backend, 'bob', 'laptop', conversationId);
    await say(laptop, conversationId, 'from my laptop');
    await notifierDrained(backend);
    expect(pushesTo(bob.subscription)).toEqual([]);

    // A burst of 20: one push, with ids and a count, no body.
    const sent: Frame[] = [];
    for (let i = 0; i < 20; i += 1) sent.push(await say(alice, conversationId, `burst ${i}`));
    await notifierDrained(backend);
    expect(pushesTo(bob.subscription)).toHaveLength(1);
    const first = payloadOf(pushesTo(bob.subscription)[0]);
    expect(Object.keys(first).sort()).toEqual(['conversationId', 'count', 'senderId', 'seq']);
    expect(first).toMatchObject({ conversationId, senderId: 'alice' });
    expect(sent.map((f) => f.seq)).toContain(first.seq);
    expect(first.count).toBeGreaterThanOrEqual(4);
    expect(pushesTo(bob.subscription)[0]?.vapidSubject).toMatch(/^mailto:/);

    // Back, acks, offline again: the next message wakes it once more.
    const back = await online(backend, 'bob', 'phone', conversationId);
    const lastSeq = Math.max(...sent.map((f) => Number(f.seq)));
    expect(await ask(back, { action: 'ack', conversationId, upToSeq: lastSeq })).toMatchObject({ type: 'acked' });
    await back.close();
    await say(alice, conversationId, 'are you there?');
    await say(alice, conversationId, 'hello?');
    await notifierDrained(backend);
    expect(pushesTo(bob.subscription)).toHaveLength(2);
    expect(payloadOf(pushesTo(bob.subscription)[1])).toMatchObject({ conversationId, senderId: 'alice', count: 1 });
  }, 60_000);

  it('wakes a device in a conversation joined after it registered, and stops after it unregisters', async () => {
    const first = await conversationWith('alice', 'dan');
    const dan = await registered(backend, 'dan', 'phone', first);
    // A conversation dan joins later: its position is made by this subscribe, after the registration.
    const later = await conversationWith('alice', 'dan');
    expect(await ask(dan.client, { action: 'subscribe', conversationIds: [later] })).toMatchObject({ type: 'subscribed' });
    await dan.client.close();
    const alice = await online(backend, 'alice', 'phone', later);
    await say(alice, later, 'in the later one');
    await notifierDrained(backend);
    expect(pushesTo(dan.subscription).map((p) => payloadOf(p).conversationId)).toEqual([later]);

    // Unregistered from another connection of the device: nothing more, and the stale flag is taken away.
    const again = await ChatClient.connectDevice(backend, 'dan', 'phone');
    open.push(again);
    expect(await ask(again, { action: 'unregisterPush' })).toMatchObject({ type: 'pushUnregistered', removed: true });
    await again.close();
    expect(await ask(alice, { action: 'subscribe', conversationIds: [first] })).toMatchObject({ type: 'subscribed' });
    await say(alice, first, 'in the first one');
    await notifierDrained(backend);
    expect(pushesTo(dan.subscription)).toHaveLength(1);
    const positions = new DynamoDevicePositions(db, backend.tables.positions, systemClock);
    await eventually(async () => !(await positions.candidates(first)).some((p) => p.userId === 'dan'));
  }, 60_000);

  it('removes a target the push service says is gone (410)', async () => {
    const conversationId = await conversationWith('alice', 'carol');
    const alice = await online(backend, 'alice', 'phone', conversationId);
    const carol = await registered(backend, 'carol', 'tablet', conversationId);
    await carol.client.close();
    const targets = new DynamoPushTargets(db, backend.tables.pushTargets);
    expect(await targets.ofUser('carol')).toHaveLength(1);
    push.expire(carol.subscription.endpoint);

    await say(alice, conversationId, 'gone?');
    await eventually(async () => (await targets.ofUser('carol')).length === 0, 10_000);
    expect(pushesTo(carol.subscription)).toEqual([]);
  }, 30_000);

  it('refuses endpoints off the allow-list, and unregisters', async () => {
    const conversationId = await conversationWith('dave');
    const dave = await online(backend, 'dave', 'phone', conversationId);
    const keys = (await push.subscribe()).keys;
    for (const endpoint of ['https://evil.example/push/1', 'http://10.0.0.1/push', 'https://fcm.googleapis.com:8443/x']) {
      expect(await ask(dave, { action: 'registerPush', webPush: { endpoint, keys } })).toMatchObject({ type: 'error', code: 'bad_request' });
    }
    expect(await ask(dave, { action: 'registerPush', apns: 'ab'.repeat(32) })).toMatchObject({ type: 'error', code: 'bad_request' });
    expect(await ask(dave, { action: 'registerPush', webPush: { endpoint: 'https://fcm.googleapis.com/fcm/send/abc', keys } })).toMatchObject({ type: 'pushRegistered' });
    expect(await ask(dave, { action: 'unregisterPush' })).toMatchObject({ type: 'pushUnregistered', removed: true });
    expect(await ask(dave, { action: 'unregisterPush' })).toMatchObject({ type: 'pushUnregistered', removed: false });
  });

  it('carries a preview only with PUSH_PREVIEW, end-to-end encrypted', async () => {
    const conversationId = await conversationWith('alice', 'erin');
    const alice = await online(backend, 'alice', 'phone', conversationId);
    const erin = await registered(backend, 'erin', 'phone', conversationId);
    await erin.client.close();
    backend.env.PUSH_PREVIEW = 'true';
    await backend.restartFunctions();
    try {
      const body = `${'é'.repeat(60)}${'x'.repeat(200)}`;
      await say(alice, conversationId, body);
      await notifierDrained(backend);
      expect(pushesTo(erin.subscription)).toHaveLength(1);
      expect(payloadOf(pushesTo(erin.subscription)[0]).preview).toBe([...body].slice(0, 100).join(''));
    } finally {
      delete backend.env.PUSH_PREVIEW;
      await backend.restartFunctions();
    }
  }, 30_000);
});

describe('notifier failures', () => {
  let faulty: LocalBackend;
  let failures = 0;

  beforeAll(async () => {
    faulty = await startLocalBackend({
      redisUrl: inject('redisUrl'),
      env: { LOG_LEVEL: 'SILENT', ...RATES },
      visibilityTimeoutSeconds: 1,
      maxReceiveCount: 2,
      services: {
        pusher: {
          send: async () => {
            failures += 1;
            throw new PushFailedError('the push service is down (test)');
          },
        },
      },
    });
  }, 60_000);

  afterAll(async () => {
    await faulty?.close();
  });

  it('go to the DLQ after the retries, and never hold up `sent`', async () => {
    const conversationId = uniqueId('push-fault');
    const store = new DynamoMembershipStore(documentClientOf(faulty), faulty.tables.members);
    for (const userId of ['alice', 'bob']) await store.add(conversationId, userId, 0);
    const alice = await online(faulty, 'alice', 'phone', conversationId);
    const bob = await registered(faulty, 'bob', 'phone', conversationId);
    await bob.client.close();

    const started = Date.now();
    const sent = await say(alice, conversationId, 'will not be pushed');
    expect(Date.now() - started).toBeLessThan(3000);
    let dead: string | undefined;
    const faultySqs = new SQSClient({ endpoint: faulty.sqsEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    await eventually(async () => {
      const { Messages } = await faultySqs.send(new ReceiveMessageCommand({ QueueUrl: faulty.notifyDlqUrl, MaxNumberOfMessages: 1, WaitTimeSeconds: 1 }));
      dead = Messages?.[0]?.Body;
      return dead !== undefined;
    }, 20_000);
    faultySqs.destroy();
    // Ids only; tried once per receive, and the marker was cleared after each failure so the retry pushed again.
    expect(JSON.parse(dead ?? '{}')).toEqual({ conversationId, seq: sent.seq, messageId: sent.messageId, senderId: 'alice', senderDevice: 'phone' });
    expect(failures).toBe(2);
  }, 40_000);
});

import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDevicePositions } from '../../lambdas/adapters/dynamo-device-positions.js';
import { DynamoMembershipStore } from '../../lambdas/adapters/dynamo-members.js';
import { DynamoPushTargets } from '../../lambdas/adapters/dynamo-push-targets.js';
import type { NotifyJob } from '../../lambdas/ports.js';
import { startLocalPushService, type LocalPushService } from '../../local/push-service.js';
import { systemClock } from '../../lambdas/context/settings.js';
import { startLocalBackend, type LocalBackend } from '../../local/backend.js';
import { spawnRedis, type SpawnedRedis } from '../../local/redis-server.js';
import { startDynalite, type RunningService } from '../../local/services.js';
import { ChatClient, eventually } from '../support/chat.js';
import {
  awaitSent,
  connectionIdOf,
  documentClientOf,
  framesOf,
  liveMessageIds,
  monitorRedis,
  startCountingProxy,
  tally,
  type CountingProxy,
  type MonitoredCommand,
} from '../support/durability.js';
import { uniqueId } from '../support/env.js';
import { messageEvent } from '../support/events.js';
import { sqsRecord } from '../support/sqs-record.js';

/**
 * Pending messages are the log after each device's position, so the work of one sendMessage must not grow with
 * the devices a conversation ever had: 2,000 throwaway devices (and 50 of them online) change the DynamoDB
 * requests and Redis commands per send by less than 2× (they should not change them at all). Nor does the
 * notifier's work per message: it follows the push-registered devices (the sparse push index), not the
 * conversation's 2,000 positions.
 *
 * DynamoDB requests are counted by a proxy in front of dynalite (every request the real route sends, retries
 * included); Redis commands by MONITOR on a redis-server of this file's own, between two ECHO markers.
 */
let dynamo: RunningService;
let proxy: CountingProxy;
let redis: SpawnedRedis;
let monitor: { commands: MonitoredCommand[]; close(): void };
let marker: Redis;
let backend: LocalBackend;
let push: LocalPushService;
let db: DynamoDBDocumentClient;
const open: ChatClient[] = [];

const THROWAWAY_USERS = 200;
const DEVICES_PER_USER = 10;
const CONNECTED = 50;

beforeAll(async () => {
  dynamo = await startDynalite();
  push = await startLocalPushService();
  proxy = await startCountingProxy(dynamo.endpoint);
  redis = await spawnRedis();
  backend = await startLocalBackend({
    dynamodbEndpoint: proxy.endpoint,
    redisUrl: redis.url,
    // No notify jobs from sendMessage: the send path is measured alone, and the notifier is invoked by the test
    // (as its SQS event source would) so that its requests are counted apart.
    env: { LOG_LEVEL: 'SILENT', RATE_LIMIT_PER_SECOND: '200', RATE_LIMIT_BURST: '400', NOTIFY_QUEUE_URL: '' },
  });
  // The test's own writes go straight to dynalite: only the handlers are counted.
  db = documentClientOf({ dynamodbEndpoint: dynamo.endpoint });
  monitor = await monitorRedis(redis.url);
  marker = new Redis(redis.url);
}, 60_000);

afterAll(async () => {
  await Promise.all(open.splice(0).map((c) => c.close().catch(() => undefined)));
  monitor?.close();
  marker?.disconnect();
  db?.destroy();
  await backend?.close();
  await proxy?.close();
  await dynamo?.stop();
  await redis?.stop();
  await push?.close();
});

async function join(conversationId: string, userId: string, deviceId: string): Promise<ChatClient> {
  const client = await ChatClient.connect(backend, conversationId, userId, deviceId);
  open.push(client);
  return client;
}

/** Redis commands seen between two markers, without the markers (`lua:` marks those run inside a script). */
async function redisCommandsDuring(label: string, work: () => Promise<void>): Promise<string[]> {
  const start = `relay-mark-start-${label}`;
  const end = `relay-mark-end-${label}`;
  await marker.echo(start);
  await work();
  await marker.echo(end);
  const isMark = (args: string[], text: string) => args[0]?.toUpperCase() === 'ECHO' && args[1] === text;
  const monitored = monitor.commands;
  await eventually(() => monitored.some(({ args }) => isMark(args, end)));
  const from = monitored.findIndex(({ args }) => isMark(args, start));
  const to = monitored.findIndex(({ args }) => isMark(args, end));
  if (from === -1 || to < from) throw new Error('the MONITOR markers are missing');
  return monitored.slice(from + 1, to).map(({ args, source }) => `${source === 'lua' ? 'lua:' : ''}${(args[0] ?? '').toUpperCase()}`);
}

interface Measured {
  dynamo: Record<string, number>;
  dynamoTotal: number;
  redis: Record<string, number>;
  /** Every command, those run by scripts included. */
  redisTotal: number;
  /** Commands sent by the handler (round trips). */
  redisSent: number;
}

describe('device inflation', () => {
  it('2,000 throwaway devices in a conversation change the Redis and DynamoDB work per sendMessage by less than 2×', async () => {
    const conversationId = uniqueId('inflation');
    const members = new DynamoMembershipStore(db, backend.tables.members);
    await members.add(conversationId, 'alice', 0);
    await members.add(conversationId, 'bob', 0);
    const alice = await join(conversationId, 'alice', 'phone');
    const bob = await join(conversationId, 'bob', 'laptop');
    const aliceConnection = await connectionIdOf(db, backend, conversationId, 'alice', 'phone');

    const sendMessage = backend.functions.sendMessage;
    if (sendMessage === undefined) throw new Error('the backend has no sendMessage function');
    let sends = 0;
    /** One sendMessage through the real route (the function the gateway invokes), measured. */
    const measureOne = async (): Promise<Measured & { messageId: string; seq: number }> => {
      sends += 1;
      const clientMessageId = `m-${sends}`;
      const errorsBefore = framesOf(alice, 'error').length;
      const requestsBefore = proxy.requests.length;
      let requestsAfter = requestsBefore;
      const commands = await redisCommandsDuring(String(sends), async () => {
        await sendMessage(
          messageEvent(aliceConnection, { action: 'sendMessage', conversationId, clientMessageId, body: `message ${sends}` }, 'sendMessage'),
        );
        requestsAfter = proxy.requests.length;
      });
      const sent = await awaitSent(alice, clientMessageId, `message ${sends}`, errorsBefore);
      const requests = proxy.requests.slice(requestsBefore, requestsAfter);
      return {
        messageId: sent.messageId,
        seq: sent.seq,
        dynamo: tally(requests.map((r) => `${r.operation} ${r.table ?? '-'}`)),
        dynamoTotal: requests.length,
        redis: tally(commands),
        redisTotal: commands.length,
        redisSent: commands.filter((c) => !c.startsWith('lua:')).length,
      };
    };
    const measure = async (label: string): Promise<Measured & { sent: { seq: number; messageId: string } }> => {
      const runs = [await measureOne(), await measureOne(), await measureOne()];
      for (const run of runs) console.log(`${label}: DynamoDB ${JSON.stringify(run.dynamo)}; Redis ${JSON.stringify(run.redis)}`);
      // The largest of three sends: the per-send cost, whatever a single run happened to skip.
      const worst = runs.reduce((a, b) => (b.dynamoTotal + b.redisTotal > a.dynamoTotal + a.redisTotal ? b : a));
      const last = runs[runs.length - 1];
      if (last === undefined) throw new Error('nothing was measured');
      await eventually(() => liveMessageIds(bob).includes(last.messageId));
      return { ...worst, sent: last };
    };

    const notifier = backend.functions.notifier;
    if (notifier === undefined) throw new Error('the backend has no notifier function');
    /** The notifier for the last measured message, invoked as its SQS event source would: its DynamoDB requests. */
    const notifyOnce = async (sent: { seq: number; messageId: string }): Promise<{ dynamo: Record<string, number>; dynamoTotal: number }> => {
      const job: NotifyJob = { conversationId, seq: sent.seq, messageId: sent.messageId, senderId: 'alice', senderDevice: 'phone' };
      const before = proxy.requests.length;
      const answer = await notifier({ Records: [sqsRecord(`notify-${sent.seq}`, JSON.stringify(job))] });
      expect(answer).toEqual({ batchItemFailures: [] });
      const requests = proxy.requests.slice(before);
      return { dynamo: tally(requests.map((r) => `${r.operation} ${r.table ?? '-'}`)), dynamoTotal: requests.length };
    };

    // Warm-up: the route's first event builds its services, remembers the sender's binding, loads its scripts.
    await measureOne();
    await measureOne();
    const small = await measure('2 devices');
    await notifyOnce(small.sent); // warm-up: the notifier builds its services
    const smallNotify = await notifyOnce(small.sent);

    // 2,000 positions registered directly with the adapter (DynamoDevicePositions.register, as $connect does):
    // registering them through 2,000 sockets is too slow for a test. Even so this is ~4,200 dynalite requests,
    // most of the file's time (hence the long timeout on a busy machine). A user keeps at most 10 devices, so
    // they belong to 200 throwaway members.
    const positions = new DynamoDevicePositions(db, backend.tables.positions, systemClock);
    const users = Array.from({ length: THROWAWAY_USERS }, (_, i) => `throwaway-${i}`);
    let nextUser = 0;
    const registerWorker = async () => {
      while (nextUser < users.length) {
        const userId = users[nextUser];
        nextUser += 1;
        if (userId === undefined) return;
        await members.add(conversationId, userId, 0);
        for (let d = 0; d < DEVICES_PER_USER; d += 1) {
          await positions.register(conversationId, { userId, deviceId: `device-${d}` }, 0, Date.now());
        }
      }
    };
    const setupStart = Date.now();
    await Promise.all(Array.from({ length: 20 }, registerWorker));
    const registered = Date.now();
    // 50 of them are online, through the gateway.
    const online: ChatClient[] = [];
    for (let i = 0; i < CONNECTED; i += 10) {
      online.push(...(await Promise.all(users.slice(i, i + 10).map((userId) => join(conversationId, userId, 'device-0')))));
    }
    expect(online).toHaveLength(CONNECTED);
    console.log(`setup: ${registered - setupStart} ms to register ${THROWAWAY_USERS * DEVICES_PER_USER} positions, ${Date.now() - registered} ms to connect ${CONNECTED} devices`);

    const large = await measure(`${THROWAWAY_USERS * DEVICES_PER_USER + 2} devices, ${CONNECTED + 2} online`);
    // The 50 online devices got the measured messages live (so the fan-out did reach them).
    const lastId = liveMessageIds(bob).at(-1);
    if (lastId === undefined) throw new Error('bob got nothing live');
    await eventually(() => online.every((client) => liveMessageIds(client).includes(lastId)), 10_000);

    console.log(
      `per sendMessage: DynamoDB ${small.dynamoTotal} → ${large.dynamoTotal} requests; ` +
        `Redis ${small.redisSent} → ${large.redisSent} commands sent (${small.redisTotal} → ${large.redisTotal} with those scripts ran)`,
    );
    expect(small.dynamoTotal).toBeGreaterThan(0);
    expect(small.redisTotal).toBeGreaterThan(0);
    expect(large.dynamoTotal).toBeLessThan(2 * small.dynamoTotal);
    expect(large.redisTotal).toBeLessThan(2 * small.redisTotal);
    expect(large.redisSent).toBeLessThan(2 * small.redisSent);
    expect(errorFramesOf([alice, bob, ...online])).toEqual([]);

    // The notifier: with none of the 2,000 devices registered for push, a message costs it what it costs with 2.
    const unregisteredNotify = await notifyOnce(large.sent);
    // 20 offline throwaway devices register for push (target stored, positions flagged, as registerPush does), and
    // so does one online device (never pushed while it is subscribed).
    const targets = new DynamoPushTargets(db, backend.tables.pushTargets);
    const wakeable = users.slice(CONNECTED, CONNECTED + 20).map((userId) => ({ userId, deviceId: 'device-1' }));
    for (const device of [...wakeable, { userId: users[0] ?? 'throwaway-0', deviceId: 'device-0' }]) {
      const subscription = await push.subscribe({ applicationServerKey: backend.vapidPublicKey });
      await targets.put({ ...device, target: { kind: 'webPush', subscription }, registeredAt: Date.now() }, 10);
      await positions.setPushable(conversationId, device, true);
    }
    const pushesBefore = push.received().length;
    const firstPush = await notifyOnce(large.sent);
    expect(push.received().length - pushesBefore).toBe(wakeable.length);
    // The next message of the same offline period pushes no one again.
    const next = await measureOne();
    const secondPush = await notifyOnce(next);
    expect(push.received().length - pushesBefore).toBe(wakeable.length);
    console.log(
      `notifier per message: DynamoDB ${smallNotify.dynamoTotal} (2 devices) → ${unregisteredNotify.dynamoTotal} (2,002 devices, none registered); ` +
        `${firstPush.dynamoTotal} pushing ${wakeable.length} of 21 registered, ${secondPush.dynamoTotal} the next message ${JSON.stringify(secondPush.dynamo)}`,
    );
    expect(unregisteredNotify.dynamoTotal).toBe(smallNotify.dynamoTotal);
    // Per registered device at most: its user's targets and live connections (≤ 3 reads) and its marker.
    expect(firstPush.dynamoTotal).toBeLessThanOrEqual(smallNotify.dynamoTotal + 4 * 21);
    // Marked devices are skipped from the index alone; only the online one is looked at again.
    expect(secondPush.dynamoTotal).toBeLessThanOrEqual(smallNotify.dynamoTotal + 3);
  }, 120_000);
});

function errorFramesOf(clients: readonly ChatClient[]): unknown[] {
  return clients.flatMap((client) => framesOf(client, 'error'));
}

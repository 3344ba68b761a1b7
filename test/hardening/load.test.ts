import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { startLocalBackend, type LocalBackend } from '../../local/backend.js';
import { connectUrl, tokenFor } from '../support/chat.js';
import { LoadDevice, type StoredView } from './support/load-device.js';
import { BackendProbe, switchEnv } from './support/probe.js';

/**
 * Load without loss, through the API Gateway emulator with the real handlers, dynalite, fauxqs and redis-server:
 * many devices send concurrently while 10% of them disconnect and reconnect mid-run. In the end every device has
 * every message of its conversation from the other devices (live or through getUnacked, at least once), seq has
 * no gaps or duplicates, and once a device has acked everything nothing is left.
 *
 * `npm test`: 40 devices over 4 conversations, 10 messages each. `npm run soak` (SOAK=full): 200 devices over
 * 20 conversations, 50 messages each.
 */
const FULL = process.env.SOAK === 'full';
const SIZE = FULL
  ? { conversations: 20, users: 5, devicesPerUser: 2, messages: 50 }
  : { conversations: 4, users: 5, devicesPerUser: 2, messages: 10 };
const CHURN_EVERY = 10; // every 10th device: 10%

let backend: LocalBackend;
let probe: BackendProbe;
let sqs: SQSClient;

beforeAll(async () => {
  backend = await startLocalBackend({
    redisUrl: inject('redisUrl'),
    env: { LOG_LEVEL: 'SILENT', RATE_LIMIT_PER_SECOND: '100000', RATE_LIMIT_BURST: '100000' },
  });
  probe = new BackendProbe(backend);
  sqs = new SQSClient({ endpoint: backend.sqsEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
});

afterAll(async () => {
  sqs.destroy();
  await probe.close();
  await backend.close();
});

interface Totals {
  devices: number;
  churned: number;
  sent: number;
  liveFrames: number;
  liveUnique: number;
  fetchedByGetUnacked: number;
  recoveredOnlyByGetUnacked: number;
  /** The same message seen twice: live and again through getUnacked (not acked yet), or live twice. */
  duplicatesSeen: number;
  liveTwice: number;
  lost: number;
}

async function run(label: string): Promise<Totals> {
  const devices: LoadDevice[] = [];
  for (let c = 0; c < SIZE.conversations; c += 1) {
    const users = Array.from({ length: SIZE.users }, (_, u) => `user${u}`);
    const conversationId = await probe.conversationWith(...users);
    for (const userId of users) {
      for (let d = 0; d < SIZE.devicesPerUser; d += 1) {
        devices.push(
          new LoadDevice(
            userId,
            `device${d}`,
            conversationId,
            (token) => connectUrl(backend, { token, conversationId, clientId: `device${d}` }),
            () => tokenFor(backend, userId),
          ),
        );
      }
    }
  }
  // Everyone connects first: from then on each device is a member device of its conversation.
  await Promise.all(devices.map((device) => device.connect()));

  const sent = new Map<string, { conversationId: string; sender: string; seq: number }>();
  const churned = devices.filter((_, i) => i % CHURN_EVERY === CHURN_EVERY - 1);
  const sendAll = async (device: LoadDevice, index: number) => {
    for (let i = 0; i < SIZE.messages; i += 1) {
      if (churned.includes(device) && i === Math.floor(SIZE.messages / 2)) {
        await device.disconnect();
        // Away while the others keep sending, then back: page through what is pending and ack it.
        await new Promise((resolve) => setTimeout(resolve, 50 + (index % 5) * 40));
        await device.connect();
        const pending = await device.pending();
        await device.ackIds(pending.map((m) => m.messageId));
      }
      const clientMessageId = `${label}-${device.key}-${i}`;
      const answer = await device.request({
        action: 'sendMessage',
        conversationId: device.conversationId,
        clientMessageId,
        body: `${label} message ${i} from ${device.key} ${'·'.repeat(i % 7)}`,
      });
      if (answer.type !== 'sent' || answer.duplicate !== false) throw new Error(`${device.key}: ${JSON.stringify(answer)}`);
      sent.set(String(answer.messageId), { conversationId: device.conversationId, sender: device.key, seq: Number(answer.seq) });
      if (i % 4 === 3) await device.ackLive();
    }
  };
  await Promise.all(devices.map((device, index) => sendAll(device, index)));

  // Let the fan-out queue drain (bounded), so the worker's live deliveries count too.
  for (let attempt = 0; attempt < 600; attempt += 1) {
    const { Attributes = {} } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: backend.queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
    );
    if (Number(Attributes.ApproximateNumberOfMessages ?? 0) + Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0) === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  // seq per conversation: exactly 1..N.
  const byConversation = new Map<string, number[]>();
  for (const { conversationId, seq } of sent.values()) byConversation.set(conversationId, [...(byConversation.get(conversationId) ?? []), seq]);
  for (const seqs of byConversation.values()) {
    expect(seqs.sort((a, b) => a - b)).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
  }
  expect(sent.size).toBe(devices.length * SIZE.messages);

  const totals: Totals = {
    devices: devices.length,
    churned: churned.length,
    sent: sent.size,
    liveFrames: 0,
    liveUnique: 0,
    fetchedByGetUnacked: 0,
    recoveredOnlyByGetUnacked: 0,
    duplicatesSeen: 0,
    liveTwice: 0,
    lost: 0,
  };
  const problems: string[] = [];
  await Promise.all(
    devices.map(async (device) => {
      const pending = await device.pending();
      const seqs = pending.map((m) => m.seq);
      if (seqs.some((seq, i) => i > 0 && seq <= (seqs[i - 1] ?? 0))) problems.push(`${device.key}: getUnacked pages not in strictly ascending seq`);
      const expected = [...sent.entries()].filter(([, m]) => m.conversationId === device.conversationId && m.sender !== device.key).map(([id]) => id);
      // The device's view: live frames and everything getUnacked returned (on reconnect and now), deduplicated.
      const view = new Map<string, StoredView>([...device.live, ...device.fetched]);
      for (const message of device.fetched.values()) {
        if (device.live.has(message.messageId)) totals.duplicatesSeen += 1;
        else totals.recoveredOnlyByGetUnacked += 1;
      }
      const missing = expected.filter((id) => !view.has(id));
      const foreign = [...view.values()].filter((m) => m.conversationId !== device.conversationId || !sent.has(m.messageId));
      const own = [...view.values()].filter((m) => sent.get(m.messageId)?.sender === device.key);
      if (missing.length > 0) problems.push(`${device.key} in ${device.conversationId}: ${missing.length} messages lost`);
      if (foreign.length > 0) problems.push(`${device.key}: ${foreign.length} messages of another conversation`);
      if (own.length > 0) problems.push(`${device.key}: received ${own.length} of its own messages`);
      totals.lost += missing.length;
      totals.liveFrames += device.liveFrames;
      totals.liveUnique += device.live.size;
      totals.duplicatesSeen += device.liveDuplicates;
      totals.liveTwice += device.liveDuplicates;
      totals.fetchedByGetUnacked += device.fetched.size;
      if (device.errors.length > 0) problems.push(`${device.key}: error frames ${JSON.stringify(device.errors.slice(0, 3))}`);

      // Ack everything: nothing is left.
      await device.ackIds(pending.map((m) => m.messageId));
      await device.ackLive();
      const after = await device.pending();
      if (after.length > 0) problems.push(`${device.key}: ${after.length} still pending after acking everything`);
    }),
  );
  await Promise.all(devices.map((device) => device.disconnect()));
  console.log(
    `load (${label}${FULL ? ', full' : ''}): ${totals.devices} devices, ${totals.churned} reconnected mid-run, ${totals.sent} messages sent, ` +
      `${totals.liveFrames} live deliveries (${totals.liveUnique} distinct), ${totals.fetchedByGetUnacked} fetched via getUnacked ` +
      `(${totals.recoveredOnlyByGetUnacked} not seen live), duplicates seen ${totals.duplicatesSeen} ` +
      `(${totals.duplicatesSeen - totals.liveTwice} live and again via getUnacked, ${totals.liveTwice} live twice), lost ${totals.lost}`,
  );
  expect(problems).toEqual([]);
  expect(totals.lost).toBe(0);
  return totals;
}

const TIMEOUT = FULL ? 20 * 60_000 : 240_000;

describe('load without loss', () => {
  it('inline fan-out: every device gets every message of its conversation at least once, and nothing after acking', async () => {
    const totals = await run('inline');
    // Every device is someone's recipient for every message of the others: live deliveries did happen.
    expect(totals.liveUnique).toBeGreaterThan(0);
  }, TIMEOUT);

  describe('with every recipient list above the fan-out threshold', () => {
    let restore: () => Promise<void>;
    beforeEach(async () => {
      restore = await switchEnv({ FANOUT_THRESHOLD: '4', FANOUT_BATCH_SIZE: '3' }, backend);
    });
    afterEach(async () => restore());

    it('fan-out through SQS and the worker: the same guarantees', async () => {
      const totals = await run('queued');
      expect(totals.liveUnique).toBeGreaterThan(0);
    }, TIMEOUT);
  });
});

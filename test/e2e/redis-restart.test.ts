import type { ChildProcess } from 'node:child_process';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoMembershipStore } from '../../lambdas/adapters/dynamo-members.js';
import { startLocalBackend, type LocalBackend } from '../../local/backend.js';
import { freePort, startRedisProcess, waitForRedis } from '../../local/redis-server.js';
import { ChatClient, eventually } from '../support/chat.js';
import {
  allHistory,
  allUnacked,
  ascending,
  documentClientOf,
  entriesOf,
  errorFrames,
  liveMessageIds,
  oneTo,
  sendOne,
  type Sent,
} from '../support/durability.js';
import { uniqueId } from '../support/env.js';

/**
 * Redis is only a speed-up: a SIGKILL in the middle of a conversation, messages sent while it is gone, and a new
 * empty redis-server on the same port must lose, repeat or renumber nothing (PROTOCOL.md, "Guarantees").
 */
let port: number;
let redisUrl: string;
let redisProcess: ChildProcess | undefined;
let backend: LocalBackend;
let db: DynamoDBDocumentClient;
let probe: Redis;
const open: ChatClient[] = [];

async function startRedis(): Promise<void> {
  redisProcess = startRedisProcess(port);
  await waitForRedis(redisUrl);
}

async function killRedis(): Promise<void> {
  const child = redisProcess;
  redisProcess = undefined;
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

beforeAll(async () => {
  port = await freePort();
  redisUrl = `redis://127.0.0.1:${port}`;
  await startRedis();
  backend = await startLocalBackend({
    redisUrl,
    env: { LOG_LEVEL: 'SILENT', RATE_LIMIT_PER_SECOND: '200', RATE_LIMIT_BURST: '400' },
  });
  db = documentClientOf(backend);
  // The test's own view of Redis: it never gives up, so it finds the new server after the restart.
  probe = new Redis(redisUrl, { maxRetriesPerRequest: null, retryStrategy: () => 50 });
  probe.on('error', () => undefined);
});

afterAll(async () => {
  await Promise.all(open.splice(0).map((c) => c.close().catch(() => undefined)));
  probe?.disconnect();
  db?.destroy();
  await backend?.close();
  await killRedis();
});

async function join(conversationId: string, userId: string, deviceId: string): Promise<ChatClient> {
  const client = await ChatClient.connect(backend, conversationId, userId, deviceId);
  open.push(client);
  return client;
}

describe('a Redis restart (killed, started empty) in the middle of an end-to-end conversation', () => {
  it('loses, repeats and renumbers nothing: seqs 1..N, every device gets every message', async () => {
    const conversationId = uniqueId('redis-restart');
    const seqKey = `{c:${conversationId}}:lastSeq`;
    const members = new DynamoMembershipStore(db, backend.tables.members);
    for (const userId of ['alice', 'bob', 'carol']) await members.add(conversationId, userId, 0);

    const alice = await join(conversationId, 'alice', 'phone');
    const bob = await join(conversationId, 'bob', 'laptop');
    // Carol's tablet is registered (a position from its connect), then goes offline for the whole test.
    const carolAway = await join(conversationId, 'carol', 'tablet');
    await carolAway.close();

    const sent: Sent[] = [];
    const say = async (client: ChatClient, label: string, count: number) => {
      for (let i = 1; i <= count; i += 1) {
        const clientMessageId = `${label}-${client.userId}-${i}`;
        sent.push(await sendOne(client, conversationId, clientMessageId, `${label} ${i} from ${client.userId}`));
      }
    };

    // Before the fault: Redis is in use (the seq cache follows the log).
    await say(alice, 'before', 4);
    await say(bob, 'before', 2);
    expect(await probe.get(seqKey)).toBe(String(sent.length));

    // SIGKILL: no shutdown, the connections just die.
    await killRedis();
    await say(alice, 'down', 4);
    await say(bob, 'down', 1);
    await say(alice, 'down-again', 2);

    // A new, empty server on the same port: the cache lost everything, including the last seq.
    await startRedis();
    expect(await probe.dbsize()).toBe(0);
    await say(alice, 'after', 3);
    await say(bob, 'after', 2);
    // Once the handlers' clients have reconnected, the cache is raised again from the log's seqs (never above them).
    let round = 0;
    await eventually(async () => {
      round += 1;
      await say(alice, `settle${round}`, 1);
      await new Promise((resolve) => setTimeout(resolve, 100));
      return (await probe.get(seqKey)) === String(sent.length);
    }, 15_000);
    // Bob has the last word, so no long run of alice's own messages ends the log (see membership.test.ts).
    await say(bob, 'last', 1);

    const n = sent.length;
    expect(errorFrames([alice, bob]).filter(({ frame }) => frame.code === 'internal')).toEqual([]);
    expect(errorFrames([alice, bob])).toEqual([]);
    expect(sent.every((s) => !s.duplicate)).toBe(true);
    expect(new Set(sent.map((s) => s.seq)).size).toBe(n);
    expect(ascending(sent.map((s) => s.seq))).toEqual(oneTo(n));
    // Each sender's own messages were numbered in the order it sent them.
    for (const who of ['alice', 'bob']) {
      const own = sent.filter((s) => s.senderId === who).map((s) => s.seq);
      expect(own).toEqual(ascending(own));
    }
    const bySeq = [...sent].sort((a, b) => a.seq - b.seq);
    const expected = (except: string) =>
      bySeq.filter((s) => s.senderId !== except).map((s) => ({ messageId: s.messageId, seq: s.seq, body: s.body, senderId: s.senderId }));
    const shape = (items: { messageId: string; seq: number; body?: string; senderId?: string }[]) =>
      items.map(({ messageId, seq, body, senderId }) => ({ messageId, seq, body, senderId }));

    // Bob got every message of alice's live, or can page it; nothing was acked, so all of them are still pending.
    const bobPending = await allUnacked(bob, conversationId, 5);
    expect(shape(bobPending.items)).toEqual(expected('bob'));
    const aliceIds = new Set(expected('bob').map((m) => m.messageId));
    expect(liveMessageIds(bob).every((id) => aliceIds.has(id))).toBe(true);
    expect(shape((await allUnacked(alice, conversationId, 10)).items)).toEqual(expected('alice'));

    // Carol's tablet comes back: every message, in seq order, over several pages.
    const carol = await join(conversationId, 'carol', 'tablet');
    const carolPending = await allUnacked(carol, conversationId, 4);
    expect(carolPending.pages).toBeGreaterThan(1);
    expect(shape(carolPending.items)).toEqual(expected('nobody'));

    const history = await allHistory(carol, conversationId, 7);
    expect(shape(history.items)).toEqual(expected('nobody'));
    const newest = await carol.request({ action: 'getHistory', conversationId, limit: 3 }, 'history');
    expect(entriesOf(newest).map((m) => m.seq)).toEqual([n - 2, n - 1, n]);

    expect(errorFrames([alice, bob, carol])).toEqual([]);
  });
});

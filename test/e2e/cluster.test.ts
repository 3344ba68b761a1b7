import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoMembershipStore } from '../../lambdas/adapters/dynamo-members.js';
import { startLocalBackend, type LocalBackend } from '../../local/backend.js';
import { ChatClient, eventually } from '../support/chat.js';
import {
  allUnacked,
  ascending,
  connectionIdOf,
  documentClientOf,
  errorFrames,
  liveMessageIds,
  oneTo,
  sendBurst,
  sendOne,
  type Sent,
} from '../support/durability.js';
import { uniqueId } from '../support/env.js';
import { keySlot, startRedisCluster, type ClusterNode, type RedisClusterHarness } from '../support/redis-cluster.js';

/**
 * The whole backend on a real 3-node Redis Cluster while the slots it uses move: the conversation's seq-cache
 * key and the sender's rate-limit bucket. Redis answers MOVED, ASK and TRYAGAIN then; none of it may reach a
 * client as `internal`, and the log (DynamoDB) keeps every message, numbered 1..N.
 */
let cluster: RedisClusterHarness;
let backend: LocalBackend;
let db: DynamoDBDocumentClient;
let view: Cluster;
const open: ChatClient[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster();
  backend = await startLocalBackend({
    redisUrl: cluster.url,
    // One token a second with a large burst: a bucket stays in Redis (it expires only once refilled), so its
    // key is there to migrate, and no frame of this test is refused.
    env: { REDIS_MODE: 'cluster', LOG_LEVEL: 'SILENT', RATE_LIMIT_PER_SECOND: '1', RATE_LIMIT_BURST: '300' },
  });
  db = documentClientOf(backend);
  const first = cluster.nodes[0];
  if (first === undefined) throw new Error('the cluster has no node');
  view = new Cluster([{ host: first.host, port: first.port }]);
  view.on('error', () => undefined);
}, 90_000);

afterAll(async () => {
  await Promise.all(open.splice(0).map((c) => c.close().catch(() => undefined)));
  view?.disconnect();
  db?.destroy();
  await backend?.close();
  await cluster?.stop();
});

async function join(conversationId: string, userId: string, deviceId: string): Promise<ChatClient> {
  const client = await ChatClient.connect(backend, conversationId, userId, deviceId);
  open.push(client);
  return client;
}

/** The node the harness migrates a slot to: the first other node, as migrateSlotOf picks it. */
function targetOf(source: ClusterNode): ClusterNode {
  const target = cluster.nodes.find((node) => node.port !== source.port);
  if (target === undefined) throw new Error('no node to migrate to');
  return target;
}

/** Moves one key of a MIGRATING slot to the importing node now, so every command on it is answered ASK. */
async function moveKeyNow(key: string, source: ClusterNode): Promise<void> {
  const target = targetOf(source);
  const node = new Redis({ host: source.host, port: source.port, lazyConnect: true, maxRetriesPerRequest: 0 });
  node.on('error', () => undefined);
  try {
    await node.connect();
    await node.call('MIGRATE', target.host, String(target.port), '', '0', '5000', 'KEYS', key);
  } finally {
    node.disconnect();
  }
}

/** A key as the importing node holds it mid-migration (ASKING lets one command read an importing slot). */
async function readImporting(key: string, source: ClusterNode): Promise<{ value: string | null; tokens: string | null }> {
  const target = targetOf(source);
  const node = new Redis({ host: target.host, port: target.port, lazyConnect: true, maxRetriesPerRequest: 0 });
  node.on('error', () => undefined);
  try {
    await node.connect();
    await node.call('ASKING');
    const type = String(await node.call('TYPE', key));
    await node.call('ASKING');
    if (type === 'hash') return { value: null, tokens: await node.hget(key, 'tokens') };
    return { value: type === 'string' ? await node.get(key) : null, tokens: null };
  } finally {
    node.disconnect();
  }
}

/** The key of a connection's rate-limit bucket: every frame also takes from its user's, so both carry the user's tag. */
function connectionBucketKey(userId: string, connectionId: string): string {
  return `{u:${encodeURIComponent(userId)}}:rl:conn:${connectionId}`;
}

describe('the backend on a 3-node Redis Cluster', () => {
  it('serves a conversation while its seq-cache slot and the sender’s rate-limit slot migrate', async () => {
    const conversationId = uniqueId('cluster');
    const members = new DynamoMembershipStore(db, backend.tables.members);
    for (const userId of ['alice', 'bob']) await members.add(conversationId, userId, 0);
    const alice = await join(conversationId, 'alice', 'phone');
    const bob = await join(conversationId, 'bob', 'laptop');
    const sent: Sent[] = [];
    const say = async (client: ChatClient, label: string, count: number) => {
      for (let i = 1; i <= count; i += 1) {
        sent.push(await sendOne(client, conversationId, `${label}-${client.userId}-${i}`, `${label} ${i} from ${client.userId}`));
      }
    };

    // Two users chat; the handlers' cluster clients learn the slot map (until then they fall back, which is fine).
    await say(alice, 'hello', 3);
    await say(bob, 'hello', 2);
    const seqKey = `{c:${conversationId}}:lastSeq`;
    const aliceConnection = await connectionIdOf(db, backend, conversationId, 'alice', 'phone');
    const bucketKey = connectionBucketKey('alice', aliceConnection);
    // Until both keys are in the cluster: the seq cache follows the log, and alice's bucket is kept there.
    let round = 0;
    await eventually(async () => {
      round += 1;
      await say(alice, `warm${round}`, 1);
      await new Promise((resolve) => setTimeout(resolve, 100));
      return (await view.get(seqKey)) === String(sent.length) && (await view.exists(bucketKey)) === 1;
    }, 15_000);

    // Bob answers, so the run of alice's own messages before the move stays short (see membership.test.ts: a
    // long run of a device's own messages is a known getUnacked paging bug, not what this test is about).
    await say(bob, 'pre', 1);

    const seqSource = await cluster.ownerOf(seqKey);
    const bucketSource = await cluster.ownerOf(bucketKey);
    const burst = Array.from({ length: 25 }, (_, i) => ({ clientMessageId: `burst-${i + 1}`, body: `burst ${i + 1}` }));
    let tabletFrom = 0;
    let tablet: ChatClient | undefined;
    const ackedByBob = new Set<string>();
    const duringMove: { alicePages: number; bobPages: number } = { alicePages: 0, bobPages: 0 };

    const midMigration = async () => {
      // Both keys now sit on the importing node while their slots are still MIGRATING on the old one: every
      // command on them goes through ASK (and new keys of those slots are created through it).
      await moveKeyNow(seqKey, seqSource);
      await moveKeyNow(bucketKey, bucketSource);
      // A new device registers mid-move: its start comes from the seq cache, read through ASK.
      tabletFrom = sent.length;
      tablet = await join(conversationId, 'bob', 'tablet');
      const burstSent = sendBurst(alice, conversationId, burst);
      const bobSays = say(bob, 'during', 3);
      const [answers] = await Promise.all([burstSent, bobSays]);
      sent.push(...answers);
      // What Redis itself saw (the backend may fall back while a slot moves; that is allowed, and shown here).
      const cached = await readImporting(seqKey, seqSource);
      const bucket = await readImporting(bucketKey, bucketSource);
      console.log(
        `mid-migration: seq cache on the importing node = ${String(cached.value)} (log at ${sent.length}); ` +
          `alice's bucket there has ${String(bucket.tokens)} tokens`,
      );
      // getUnacked pages and acks while the slots are half-moved.
      const alicePending = await allUnacked(alice, conversationId, 3);
      duringMove.alicePages = alicePending.pages;
      const bobPending = await allUnacked(bob, conversationId, 7);
      duringMove.bobPages = bobPending.pages;
      const live = liveMessageIds(bob).slice(0, 10);
      await bob.request({ action: 'ack', conversationId, messageIds: live }, 'acked');
      for (const id of live) ackedByBob.add(id);
    };

    if (keySlot(seqKey) === keySlot(bucketKey)) {
      await cluster.migrateSlotOf(seqKey, { pauseBetweenSteps: midMigration });
    } else {
      await cluster.migrateSlotOf(seqKey, {
        pauseBetweenSteps: () => cluster.migrateSlotOf(bucketKey, { pauseBetweenSteps: midMigration }),
      });
    }
    expect((await cluster.ownerOf(seqKey)).port).not.toBe(seqSource.port);
    expect((await cluster.ownerOf(bucketKey)).port).not.toBe(bucketSource.port);
    expect(duringMove.alicePages).toBeGreaterThan(1);
    expect(duringMove.bobPages).toBeGreaterThan(1);

    // After the move: the clients follow MOVED to the new owners.
    await say(alice, 'after', 4);
    await say(bob, 'after', 2);
    let settle = 0;
    await eventually(async () => {
      settle += 1;
      await say(alice, `settle${settle}`, 1);
      await new Promise((resolve) => setTimeout(resolve, 100));
      return (await view.get(seqKey)) === String(sent.length);
    }, 15_000);
    await say(bob, 'last', 1);

    const everyone = tablet === undefined ? [alice, bob] : [alice, bob, tablet];
    expect(errorFrames(everyone).filter(({ frame }) => frame.code === 'internal')).toEqual([]);
    expect(errorFrames(everyone)).toEqual([]);
    const n = sent.length;
    expect(sent.every((s) => !s.duplicate)).toBe(true);
    expect(ascending(sent.map((s) => s.seq))).toEqual(oneTo(n));

    const bySeq = [...sent].sort((a, b) => a.seq - b.seq);
    const aliceMessages = bySeq.filter((s) => s.senderId === 'alice');
    const bobMessages = bySeq.filter((s) => s.senderId === 'bob');
    // Bob's laptop: every message of alice's is either acked (it came live) or still pending, never both.
    const bobPending = (await allUnacked(bob, conversationId, 9)).items;
    expect(bobPending.filter((m) => ackedByBob.has(m.messageId))).toEqual([]);
    expect(ascending([...bobPending.map((m) => m.seq), ...aliceMessages.filter((m) => ackedByBob.has(m.messageId)).map((m) => m.seq)])).toEqual(
      aliceMessages.map((m) => m.seq),
    );
    expect(bobPending.map((m) => m.messageId)).toEqual(aliceMessages.filter((m) => !ackedByBob.has(m.messageId)).map((m) => m.messageId));
    expect(ackedByBob.size).toBeGreaterThan(0);
    // Alice acked nothing: every message of bob's is pending on her phone, in order.
    expect((await allUnacked(alice, conversationId, 9)).items.map((m) => m.messageId)).toEqual(bobMessages.map((m) => m.messageId));
    // The tablet registered mid-move: everything alice sent after that is pending for it.
    if (tablet === undefined) throw new Error('the tablet never connected');
    const tabletPending = (await allUnacked(tablet, conversationId, 9)).items;
    const seqs = tabletPending.map((m) => m.seq);
    expect(seqs).toEqual(ascending(seqs));
    expect(new Set(seqs).size).toBe(seqs.length);
    const shouldHave = aliceMessages.filter((m) => m.seq > tabletFrom).map((m) => m.messageId);
    const has = new Set(tabletPending.map((m) => m.messageId));
    expect(shouldHave.filter((id) => !has.has(id))).toEqual([]);
  });
});

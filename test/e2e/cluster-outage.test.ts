import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoMembershipStore } from '../../lambdas/adapters/dynamo-members.js';
import { startLocalBackend, type LocalBackend } from '../../local/backend.js';
import { ChatClient, eventually, type Frame } from '../support/chat.js';
import { documentClientOf, errorFrames } from '../support/durability.js';
import { uniqueId } from '../support/env.js';
import { startRedisCluster, type RedisClusterHarness } from '../support/redis-cluster.js';

/**
 * The real handlers on a 3-node Redis Cluster while one master hangs (SIGSTOP: its sockets stay open, nothing
 * answers, then the others declare CLUSTERDOWN). Every frame answers within 3 s, either as usual (the limits, the
 * seq cache and the typing gate fall back; DynamoDB is the record) or `unavailable` (presence has no fallback);
 * once the node runs again, Redis serves them again.
 */
let cluster: RedisClusterHarness;
let backend: LocalBackend;
let db: DynamoDBDocumentClient;
let view: Cluster;
const open: ChatClient[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster();
  backend = await startLocalBackend({ redisUrl: cluster.url, env: { REDIS_MODE: 'cluster', LOG_LEVEL: 'SILENT' } });
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

interface Timed {
  action: string;
  answer: Frame;
  ms: number;
}

describe('the backend on a Redis Cluster with a master that stops answering', () => {
  it('answers every frame within 3 s (as usual or `unavailable`) and uses Redis again once the node is back', async () => {
    const conversationId = uniqueId('outage');
    const members = new DynamoMembershipStore(db, backend.tables.members);
    for (const userId of ['alice', 'bob']) await members.add(conversationId, userId, 0);
    const alice = await ChatClient.connect(backend, conversationId, 'alice', 'phone');
    const bob = await ChatClient.connect(backend, conversationId, 'bob', 'laptop');
    open.push(alice, bob);
    let counter = 0;
    const ask = async (frame: Record<string, unknown>): Promise<Timed> => {
      counter += 1;
      const requestId = `r${counter}`;
      const started = performance.now();
      await alice.send({ ...frame, requestId });
      const answer = await alice.waitFor((f) => f.requestId === requestId, 15_000);
      return { action: String(frame.action), answer, ms: performance.now() - started };
    };
    const everyFrame = async (): Promise<Timed[]> => {
      const sent = await ask({ action: 'sendMessage', conversationId, clientMessageId: `m${counter}`, body: `hello ${counter}` });
      const seq = typeof sent.answer.seq === 'number' ? sent.answer.seq : 1;
      const rest: Timed[] = [];
      for (const frame of [
        { action: 'ping' },
        { action: 'getPresence', conversationId },
        { action: 'getHistory', conversationId },
        { action: 'getUnacked', conversationId },
        { action: 'ack', conversationId, upToSeq: seq },
        { action: 'markRead', conversationId, seq },
        { action: 'getConversations' },
        { action: 'subscribe', conversationIds: [conversationId] },
      ]) {
        rest.push(await ask(frame));
      }
      // Typing has no answer: it must only not fail.
      await alice.send({ action: 'typing', conversationId });
      return [sent, ...rest];
    };
    const expected: Record<string, string> = {
      sendMessage: 'sent',
      ping: 'pong',
      getPresence: 'presence',
      getHistory: 'history',
      getUnacked: 'unacked',
      ack: 'acked',
      markRead: 'read',
      getConversations: 'conversations',
      subscribe: 'subscribed',
    };
    const served = (round: Timed[]) => round.every(({ action, answer }) => answer.type === expected[action]);

    // Healthy: every frame answered as usual, presence from Redis.
    await eventually(async () => served(await everyFrame()), 15_000);

    const seqKey = `{c:${conversationId}}:lastSeq`;
    const node = await cluster.ownerOf(seqKey);
    cluster.pauseNode(node.port);
    const down: Timed[] = [];
    // At once (commands to the frozen node time out), then once the others have declared CLUSTERDOWN.
    down.push(...(await everyFrame()));
    await new Promise((resolve) => setTimeout(resolve, 2500));
    down.push(...(await everyFrame()));
    const slowest = Math.max(...down.map((t) => t.ms));
    console.log(
      `node stopped: slowest frame answered in ${slowest.toFixed(0)} ms; ` +
        down.map((t) => `${t.action} ${t.answer.type === 'error' ? String(t.answer.code) : String(t.answer.type)} ${t.ms.toFixed(0)} ms`).join(', '),
    );

    expect(slowest).toBeLessThan(3000);
    for (const { action, answer } of down) {
      if (answer.type === 'error') expect({ action, code: answer.code }).toEqual({ action, code: 'unavailable' });
      else expect(answer.type).toBe(expected[action]);
    }
    // Messages need no Redis: stored, answered `sent`, and delivered live.
    const sentWhileDown = down.filter((t) => t.action === 'sendMessage').map((t) => t.answer);
    expect(sentWhileDown.map((f) => f.type)).toEqual(['sent', 'sent']);
    for (const sent of sentWhileDown) await bob.waitFor((f) => f.type === 'message' && f.messageId === sent.messageId);

    await cluster.resumeNode(node.port);
    // Back: presence (which has no fallback) answers from Redis again, and the seq cache follows the log again.
    let last: Timed[] = [];
    await eventually(async () => {
      last = await everyFrame();
      const sent = last[0]?.answer;
      return served(last) && typeof sent?.seq === 'number' && (await view.get(seqKey)) === String(sent.seq);
    }, 20_000);
    const presence = last.find((t) => t.action === 'getPresence')?.answer;
    expect(presence?.online).toEqual(expect.arrayContaining(['alice', 'bob']));
    expect(errorFrames([alice, bob]).filter(({ frame }) => frame.code !== 'unavailable')).toEqual([]);
  }, 120_000);
});

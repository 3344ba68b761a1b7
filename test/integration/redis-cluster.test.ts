import { randomUUID } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { connectRedis, RECONNECT_ATTEMPTS, redisReady, type RedisConnection } from '../../lambdas/adapters/redis-connection.js';
import { RedisFanoutBudget } from '../../lambdas/adapters/redis-fanout-budget.js';
import { RedisRateLimiter } from '../../lambdas/adapters/redis-rate-limiter.js';
import { RedisSeqCache } from '../../lambdas/adapters/redis-seq-cache.js';
import { fanoutBudgetContract } from '../support/contract/fanout-budget.js';
import { countingFallback, rateLimiterContract } from '../support/contract/rate-limiter.js';
import { keySlot, startRedisCluster, type RedisClusterHarness } from '../support/redis-cluster.js';
import { closedPort } from './net.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const quietLog = () => ({ debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() });

let cluster: RedisClusterHarness;
let redis: RedisConnection;

beforeAll(async () => {
  cluster = await startRedisCluster();
  redis = connectRedis(cluster.url, 'cluster', quietLog());
  expect(await redisReady(redis, 5000)).toBe(true);
});

afterAll(async () => {
  redis?.disconnect();
  await cluster?.stop();
});


const userTag = (userId: string) => `{u:${encodeURIComponent(userId)}}`;

/** A conversation whose seq key lands in the same slot as the user's rate-limit keys. */
function conversationBeside(userId: string): string {
  const slot = keySlot(userTag(userId));
  for (let i = 0; ; i += 1) {
    const conversationId = `conv-${i}`;
    if (keySlot(`{c:${conversationId}}:lastSeq`) === slot) return conversationId;
  }
}

/** Runs `call`, keeping what it threw instead of throwing. */
async function settle<T>(call: () => Promise<T>, errors: unknown[]): Promise<T | undefined> {
  try {
    return await call();
  } catch (error) {
    errors.push(error);
    return undefined;
  }
}

rateLimiterContract('RedisRateLimiter on a 3-node cluster', async () => ({
  limiter: new RedisRateLimiter(redis, {
    log: quietLog(),
    fallback: {
      admit: async () => {
        throw new Error('the fallback was used: the cluster did not answer');
      },
    },
  }),
  advance: sleep,
  close: async () => undefined,
}));

// The conversation's and the sender's budgets sit in two slots (often on two nodes): two scripts per call.
fanoutBudgetContract('RedisFanoutBudget on a 3-node cluster', async (settings) => ({
  budget: new RedisFanoutBudget(redis, settings, {
    log: quietLog(),
    fallback: {
      waitMs: async () => {
        throw new Error('the fallback was used: the cluster did not answer');
      },
      spend: async () => {
        throw new Error('the fallback was used: the cluster did not answer');
      },
    },
  }),
  advance: sleep,
  close: async () => undefined,
}));

describe('connectRedis', () => {
  it('builds a lazy standalone client that gives up fast', async () => {
    const client = connectRedis('redis://127.0.0.1:6390', 'standalone', quietLog());
    try {
      expect(client).toBeInstanceOf(Redis);
      expect(client.status).toBe('wait');
      expect(client.options).toMatchObject({
        lazyConnect: true,
        maxRetriesPerRequest: 1,
        connectTimeout: 2000,
        commandTimeout: 2000,
      });
    } finally {
      client.disconnect();
    }
  });

  it('builds a cluster client that queues nothing, with TLS and the credentials of a rediss: URL', async () => {
    const port = await closedPort();
    const log = quietLog();
    const client = connectRedis(`rediss://relay:p%40ss@127.0.0.1:${port}`, 'cluster', log);
    try {
      expect(client).toBeInstanceOf(Cluster);
      if (!(client instanceof Cluster)) return;
      expect(client.options).toMatchObject({
        enableOfflineQueue: false,
        slotsRefreshTimeout: 2000,
        maxRedirections: 5,
        retryDelayOnTryAgain: 100,
        retryDelayOnClusterDown: 100,
        retryDelayOnFailover: 100,
      });
      expect(client.options.redisOptions).toMatchObject({
        tls: {},
        username: 'relay',
        password: 'p@ss',
        maxRetriesPerRequest: 1,
        connectTimeout: 2000,
        commandTimeout: 2000,
      });
      expect(client.options.clusterRetryStrategy?.(1)).toBe(200);
      expect(client.options.clusterRetryStrategy?.(RECONNECT_ATTEMPTS)).toBe(2000);
      const resolved = await new Promise((resolve) => client.options.dnsLookup?.('cache.example', (_e, a) => resolve(a)));
      expect(resolved).toBe('cache.example');
      await sleep(300);
      // Nothing listens: connection errors, reported once.
      expect(log.warn).toHaveBeenCalledTimes(1);
      expect(log.warn).toHaveBeenCalledWith('redis connection error', { error: expect.any(String) });
    } finally {
      client.disconnect();
    }
  });
});

describe('the harness', () => {
  it('computes slots as the cluster does', async () => {
    const keys = ['plain', '{u:alice}:rl:user', '{c:conv-1}:seq', '{}empty-tag', 'a{b}c{d}', 'é{ü}'];
    for (const key of keys) expect(keySlot(key), key).toBe(Number(await redis.call('CLUSTER', 'KEYSLOT', key)));
  });
});

describe('RedisSeqCache on a 3-node cluster', () => {
  it('raises and never lowers, on conversations spread over every node', async () => {
    const cache = new RedisSeqCache(redis, { log: quietLog() });
    const conversations = Array.from({ length: 30 }, () => randomUUID());

    await Promise.all(conversations.map((c) => cache.raise(c, 7)));
    await Promise.all(conversations.map((c) => cache.raise(c, 3)));

    expect(await Promise.all(conversations.map((c) => cache.get(c)))).toEqual(conversations.map(() => 7));
    const owners = await Promise.all(conversations.map((c) => cluster.ownerOf(`{c:${c}}:lastSeq`)));
    expect(new Set(owners.map((node) => node.port)).size).toBe(3);
  });
});

describe('while a slot migrates', () => {
  it('admits, raises and gets without errors, during the ASK window and after the move', async () => {
    const userId = `migrant-${randomUUID()}`;
    const conversationId = conversationBeside(userId);
    const log = quietLog();
    // Scripts on one key are served in the ASK window; scripts on several keys get TRYAGAIN while their keys
    // sit on both nodes, and fall back. Two limiters keep the two kinds apart.
    const singleFallback = countingFallback();
    const single = new RedisRateLimiter(redis, { log, fallback: singleFallback });
    const pairFallback = countingFallback();
    const pair = new RedisRateLimiter(redis, { log, fallback: pairFallback, coolOffMs: 200 });
    const cache = new RedisSeqCache(redis, { log });
    const owner = { key: `user:${userId}`, perSecond: 1000, burst: 10_000 };
    const phone = { key: `conn:${randomUUID()}`, perSecond: 1000, burst: 10_000 };
    // Keys in the slot before it moves, so half of them move before the pause.
    expect(await pair.admit([phone, owner])).toBe(true);
    await cache.raise(conversationId, 1);
    const before = await cluster.ownerOf(`${userTag(userId)}:rl:user`);

    const errors: unknown[] = [];
    const seen: (number | undefined)[] = [];
    const raised: number[] = [];
    const admitted: (boolean | undefined)[] = [];
    let seq = 1;
    const traffic = async () => {
      const admits = async () => {
        for (let i = 0; i < 200; i += 1) {
          // The user alone, the same two keys, and a new connection (a key created during the move).
          const call = [
            () => single.admit([owner]),
            () => pair.admit([phone, owner]),
            () => pair.admit([{ ...phone, key: `conn:${randomUUID()}` }, owner]),
          ][i % 3];
          if (call !== undefined) admitted.push(await settle(call, errors));
        }
      };
      const seqs = async () => {
        for (let i = 0; i < 100; i += 1) {
          seq += 1;
          await settle(() => cache.raise(conversationId, seq), errors);
          raised.push(seq);
          seen.push(await settle(() => cache.get(conversationId), errors));
        }
      };
      await Promise.all([admits(), seqs()]);
    };

    await cluster.migrateSlotOf(`${userTag(userId)}:rl:user`, { pauseBetweenSteps: traffic });
    const pairFallbacksDuringMove = pairFallback.calls;
    await sleep(250);
    await traffic();

    expect(errors).toEqual([]);
    expect(admitted).toEqual(Array.from({ length: 400 }, () => true));
    expect(singleFallback.calls).toBe(0);
    expect(pairFallback.calls - pairFallbacksDuringMove).toBe(0);
    expect(log.error).not.toHaveBeenCalled();
    expect(JSON.stringify(log.warn.mock.calls)).not.toMatch(/CROSSSLOT|non local/i);
    // Every raise landed and every get found it, wherever the key was: never lower, never missing.
    expect(seen).toHaveLength(200);
    expect(seen).toEqual(raised);
    expect(await cache.get(conversationId)).toBe(seq);
    expect((await cluster.ownerOf(`${userTag(userId)}:rl:user`)).port).not.toBe(before.port);
  });
});

describe('with a node stopped', () => {
  it('answers within 3 s from the fallback, and uses the node again once it is back', async () => {
    const userId = `stranded-${randomUUID()}`;
    const conversationId = conversationBeside(userId);
    const node = await cluster.ownerOf(`${userTag(userId)}:rl:user`);
    const fallback = countingFallback();
    const limiter = new RedisRateLimiter(redis, { log: quietLog(), fallback, coolOffMs: 200 });
    const cache = new RedisSeqCache(redis, { coolOffMs: 200 });
    const buckets = [
      { key: `conn:${randomUUID()}`, perSecond: 1, burst: 3 },
      { key: `user:${userId}`, perSecond: 1, burst: 100 },
    ];
    expect(await limiter.admit(buckets)).toBe(true);
    await cache.raise(conversationId, 5);
    expect(fallback.calls).toBe(0);

    await cluster.stopNode(node.port);
    let slowestMs = 0;
    const timed = async <T>(call: () => Promise<T>): Promise<T> => {
      const started = performance.now();
      try {
        return await call();
      } finally {
        slowestMs = Math.max(slowestMs, performance.now() - started);
      }
    };
    const answers: boolean[] = [];
    const seen: (number | undefined)[] = [];
    // Right after the stop (connection refused), then once the others have marked it failed (CLUSTERDOWN).
    for (const wait of [0, 2500]) {
      await sleep(wait);
      const [answer, value] = await Promise.all([
        timed(() => limiter.admit(buckets)),
        timed(() => cache.get(conversationId)),
        timed(() => cache.raise(conversationId, 6)),
      ]);
      answers.push(answer);
      seen.push(value);
    }

    expect(slowestMs).toBeLessThan(3000);
    expect(answers).toEqual([true, true]);
    expect(seen).toEqual([undefined, undefined]);
    expect(fallback.calls).toBe(2);

    await cluster.startNode(node.port);
    const deadline = Date.now() + 10_000;
    let served = false;
    while (!served && Date.now() < deadline) {
      const calls = fallback.calls;
      await limiter.admit(buckets);
      await cache.raise(conversationId, 8);
      served = fallback.calls === calls && (await cache.get(conversationId)) === 8;
      if (!served) await sleep(200);
    }
    expect(served).toBe(true);
  });
});

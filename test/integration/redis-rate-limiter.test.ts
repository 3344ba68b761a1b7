import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe, expect, inject, it, onTestFinished, vi } from 'vitest';
import { MemoryRateLimiter } from '../../lambdas/adapters/memory-rate-limiter.js';
import { connectRedis, redisReady } from '../../lambdas/adapters/redis-connection.js';
import { RedisRateLimiter } from '../../lambdas/adapters/redis-rate-limiter.js';
import type { RateBucket, RateLimiter } from '../../lambdas/ports.js';
import { spawnRedis, startRedisProcess, waitForRedis } from '../../local/redis-server.js';
import { countingFallback, rateLimiterContract } from '../support/contract/rate-limiter.js';
import { closedPort } from './net.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const quietLog = () => ({ debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() });

/** A fallback that fails the test if it is ever asked: proves Redis itself answered. */
const unused: RateLimiter = {
  admit: async () => {
    throw new Error('the fallback was used: Redis did not answer');
  },
};


/** Each admit's answer and how long it took. */
async function timedAdmits(limiter: RateLimiter, buckets: readonly RateBucket[], count: number) {
  const answers: boolean[] = [];
  let slowestMs = 0;
  for (let i = 0; i < count; i += 1) {
    const started = performance.now();
    answers.push(await limiter.admit(buckets));
    slowestMs = Math.max(slowestMs, performance.now() - started);
  }
  return { answers, slowestMs };
}

function client(url: string): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  onTestFinished(() => redis.disconnect());
  return redis;
}

rateLimiterContract('RedisRateLimiter on redis-server', async () => {
  const redis = connectRedis(inject('redisUrl'), 'standalone', quietLog());
  return {
    limiter: new RedisRateLimiter(redis, { log: quietLog(), fallback: unused }),
    // Buckets run on Redis TIME: only real time passes for them.
    advance: sleep,
    close: async () => {
      redis.disconnect();
    },
  };
});

rateLimiterContract('MemoryRateLimiter', async () => {
  let now = Date.UTC(2030, 0, 1);
  return {
    limiter: new MemoryRateLimiter({ clock: { now: () => now } }),
    advance: async (ms) => {
      now += ms;
    },
    close: async () => undefined,
  };
});

describe('RedisRateLimiter on redis-server', () => {
  it("keeps a call's buckets under its user's hash tag, expiring when full again", async () => {
    const redis = client(inject('redisUrl'));
    const limiter = new RedisRateLimiter(redis, { log: quietLog(), fallback: unused });
    const userId = `al{ice}/${randomUUID()}`;
    const tag = `{u:${encodeURIComponent(userId)}}`;
    const connectionId = randomUUID();

    await limiter.admit([
      { key: `conn:${connectionId}`, perSecond: 10, burst: 5 },
      { key: `user:${userId}`, perSecond: 4, burst: 8 },
    ]);

    const connKey = `${tag}:rl:conn:${connectionId}`;
    const userKey = `${tag}:rl:user`;
    expect(await redis.hget(connKey, 'tokens')).toBe('4');
    expect(await redis.hget(userKey, 'tokens')).toBe('7');
    // One token short: full again after 1/perSecond.
    const [connTtl, userTtl] = await Promise.all([redis.pttl(connKey), redis.pttl(userKey)]);
    expect(connTtl).toBeGreaterThan(0);
    expect(connTtl).toBeLessThanOrEqual(100);
    expect(userTtl).toBeGreaterThan(100);
    expect(userTtl).toBeLessThanOrEqual(250);
    await sleep(300);
    expect(await redis.exists(connKey, userKey)).toBe(0);
  });

  it('is one round trip per admit', async () => {
    const spawned = await spawnRedis();
    onTestFinished(() => spawned.stop());
    const redis = client(spawned.url);
    const limiter = new RedisRateLimiter(redis, { log: quietLog(), fallback: unused });
    const buckets = [
      { key: `conn:${randomUUID()}`, perSecond: 100, burst: 100 },
      { key: `user:${randomUUID()}`, perSecond: 100, burst: 100 },
    ];
    await limiter.admit(buckets);
    const monitor = await client(spawned.url).monitor();
    onTestFinished(() => monitor.disconnect());
    const sent: string[] = [];
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (!source.includes('lua')) sent.push(String(args[0]).toLowerCase());
    });

    for (let i = 0; i < 10; i += 1) await limiter.admit(buckets);
    await redis.ping();
    await sleep(50);

    expect(sent).toEqual([...Array.from({ length: 10 }, () => 'evalsha'), 'ping']);
  });

  it('rethrows a reply error that is a bug, without falling back', async () => {
    const redis = client(inject('redisUrl'));
    const fallback = countingFallback();
    const limiter = new RedisRateLimiter(redis, { log: quietLog(), fallback });
    const userId = randomUUID();
    await redis.set(`{u:${userId}}:rl:user`, 'not a hash');

    await expect(limiter.admit([{ key: `user:${userId}`, perSecond: 1, burst: 1 }])).rejects.toThrow(/WRONGTYPE/);
    expect(fallback.calls).toBe(0);
  });

  it('falls back on a transient reply (BUSY: a long script holds the server)', async () => {
    const spawned = await spawnRedis();
    onTestFinished(() => spawned.stop());
    const admin = client(spawned.url);
    await admin.config('SET', 'busy-reply-threshold', '10');
    const blocker = client(spawned.url);
    const blocked = blocker.eval('while true do end', 0).catch((error: unknown) => error);
    await sleep(100);
    const fallback = countingFallback();
    const log = quietLog();
    const limiter = new RedisRateLimiter(client(spawned.url), { log, fallback, coolOffMs: 0 });
    const bucket = { key: `conn:${randomUUID()}`, perSecond: 1, burst: 2 };

    const answers = [await limiter.admit([bucket]), await limiter.admit([bucket]), await limiter.admit([bucket])];
    await admin.script('KILL');
    await blocked;

    expect(answers).toEqual([true, true, false]);
    expect(fallback.calls).toBe(3);
    expect(log.warn).toHaveBeenCalledTimes(1);
    expect(log.warn).toHaveBeenCalledWith(expect.stringContaining('in this process'), {
      error: 'ReplyError',
      reply: 'BUSY',
    });
    // The script is gone: Redis answers again (once the client has reconnected, if the BUSY cut it off).
    const deadline = Date.now() + 3000;
    let served = false;
    while (!served && Date.now() < deadline) {
      const calls = fallback.calls;
      await limiter.admit([{ key: `conn:${randomUUID()}`, perSecond: 1, burst: 1 }]);
      served = fallback.calls === calls;
      if (!served) await sleep(50);
    }
    expect(served).toBe(true);
  });
});

describe('MemoryRateLimiter', () => {
  it('holds at most maxKeys buckets, forgetting the least recently used', async () => {
    let now = 0;
    const limiter = new MemoryRateLimiter({ clock: { now: () => now }, maxKeys: 3 });
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((name) => ({ key: `conn:${name}`, perSecond: 1, burst: 1 }));
    if (a === undefined || b === undefined || c === undefined || d === undefined) throw new Error('four buckets');

    for (const bucket of [a, b, c]) await limiter.admit([bucket]);
    now += 1;
    // A refusal takes nothing, so it does not make a bucket recent.
    expect(await limiter.admit([a])).toBe(false);
    await limiter.admit([d]);

    expect(limiter.size).toBe(3);
    // b and c are remembered empty; a, the least recently taken from, was forgotten: full again.
    expect([await limiter.admit([b]), await limiter.admit([c]), await limiter.admit([a])]).toEqual([false, false, true]);
  });

  it('holds 10,000 buckets by default', async () => {
    const limiter = new MemoryRateLimiter();

    for (let i = 0; i < 10_050; i += 1) await limiter.admit([{ key: `conn:${i}`, perSecond: 1, burst: 5 }]);

    expect(limiter.size).toBe(10_000);
  });
});

describe('RedisRateLimiter with Redis down', () => {
  it('limits in process within 3 s when nothing listens, and warns once without keys', async () => {
    const port = await closedPort();
    const connectionLog = quietLog();
    const redis = connectRedis(`redis://127.0.0.1:${port}`, 'standalone', connectionLog);
    onTestFinished(() => redis.disconnect());
    const log = quietLog();
    const limiter = new RedisRateLimiter(redis, { log });
    const userId = `secret-user-${randomUUID()}`;
    const buckets = [
      { key: `conn:${randomUUID()}`, perSecond: 1, burst: 3 },
      { key: `user:${userId}`, perSecond: 1, burst: 10 },
    ];

    const { answers, slowestMs } = await timedAdmits(limiter, buckets, 5);

    expect(answers).toEqual([true, true, true, false, false]);
    expect(slowestMs).toBeLessThan(3000);
    expect(log.warn).toHaveBeenCalledTimes(1);
    expect(JSON.stringify(log.warn.mock.calls)).not.toContain(userId);
    expect(connectionLog.warn.mock.calls.length).toBeLessThanOrEqual(1);
    for (const [message, fields] of connectionLog.warn.mock.calls) {
      expect(message).toBe('redis connection error');
      expect(fields).toEqual({ error: expect.any(String) });
    }
  });

  it('warns at most once per 30 s while Redis stays down', async () => {
    const port = await closedPort();
    const redis = connectRedis(`redis://127.0.0.1:${port}`, 'standalone', quietLog());
    onTestFinished(() => redis.disconnect());
    const log = quietLog();
    let now = Date.UTC(2030, 0, 1);
    // The cool-off runs on the same clock: each step below is past it, so every admit asks Redis again.
    const limiter = new RedisRateLimiter(redis, { log, now: () => now, coolOffMs: 1000 });
    const bucket = { key: `conn:${randomUUID()}`, perSecond: 1, burst: 100 };
    const warnsAt: number[] = [];

    for (const step of [0, 10_000, 19_000, 2_000, 29_000]) {
      now += step;
      await limiter.admit([bucket]);
      warnsAt.push(log.warn.mock.calls.length);
    }

    // Warned at 0 s, quiet at 10 s and 29 s, warned again at 31 s, quiet at 60 s.
    expect(warnsAt).toEqual([1, 1, 1, 2, 2]);
  });

  it('keeps limiting when the server dies mid-test, and uses Redis again once it is back', async () => {
    const spawned = await spawnRedis();
    const restarted: ReturnType<typeof startRedisProcess>[] = [];
    onTestFinished(async () => {
      await spawned.stop();
      for (const child of restarted) child.kill('SIGKILL');
    });
    const redis = connectRedis(spawned.url, 'standalone', quietLog());
    onTestFinished(() => redis.disconnect());
    await redisReady(redis, 2000);
    const fallback = countingFallback();
    const limiter = new RedisRateLimiter(redis, { log: quietLog(), fallback, coolOffMs: 200 });
    const userId = randomUUID();
    const bucket = { key: `user:${userId}`, perSecond: 1, burst: 3 };
    const key = `{u:${userId}}:rl:user`;

    expect(await limiter.admit([bucket])).toBe(true);
    expect(await client(spawned.url).exists(key)).toBe(1);

    await spawned.stop();
    const down = await timedAdmits(limiter, [bucket], 5);

    // The in-process bucket starts full: three more, then refused.
    expect(down.answers).toEqual([true, true, true, false, false]);
    expect(down.slowestMs).toBeLessThan(3000);
    expect(fallback.calls).toBe(5);

    restarted.push(startRedisProcess(Number(new URL(spawned.url).port)));
    await waitForRedis(spawned.url);
    const fresh = client(spawned.url);
    const deadline = Date.now() + 8000;
    while ((await fresh.exists(key)) === 0 && Date.now() < deadline) {
      await limiter.admit([bucket]);
      await sleep(100);
    }
    expect(await fresh.exists(key)).toBe(1);
    const callsBefore = fallback.calls;
    expect(await limiter.admit([bucket])).toBe(true);
    expect(fallback.calls).toBe(callsBefore);
  });
});

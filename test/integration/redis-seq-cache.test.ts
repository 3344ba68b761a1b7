import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe, expect, inject, it, onTestFinished, vi } from 'vitest';
import { connectRedis, redisReady } from '../../lambdas/adapters/redis-connection.js';
import { NoSeqCache, RedisSeqCache } from '../../lambdas/adapters/redis-seq-cache.js';
import { spawnRedis, startRedisProcess, waitForRedis } from '../../local/redis-server.js';
import { closedPort } from './net.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const quietLog = () => ({ debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() });

function client(url: string): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  onTestFinished(() => redis.disconnect());
  return redis;
}

/** How long `call` took to settle, in ms (it must resolve: a rejection fails the test). */
async function timed<T>(call: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await call();
  return { value, ms: performance.now() - started };
}

describe('RedisSeqCache on redis-server', () => {
  it('answers undefined for a conversation it has never seen', async () => {
    const cache = new RedisSeqCache(client(inject('redisUrl')));

    expect(await cache.get(randomUUID())).toBeUndefined();
  });

  it('raises, and never lowers', async () => {
    const cache = new RedisSeqCache(client(inject('redisUrl')));
    const conversationId = randomUUID();

    await cache.raise(conversationId, 5);
    const afterFive = await cache.get(conversationId);
    await cache.raise(conversationId, 3);
    const afterThree = await cache.get(conversationId);
    await cache.raise(conversationId, 9);

    expect([afterFive, afterThree, await cache.get(conversationId)]).toEqual([5, 5, 9]);
  });

  it('settles on the highest of many concurrent raises, whatever their order', async () => {
    const cache = new RedisSeqCache(client(inject('redisUrl')));
    const conversationId = randomUUID();
    const seqs = Array.from({ length: 100 }, (_, i) => i + 1).sort(() => Math.random() - 0.5);

    await Promise.all(seqs.map((seq) => cache.raise(conversationId, seq)));

    expect(await cache.get(conversationId)).toBe(100);
  });

  it('keeps every safe integer exact', async () => {
    const cache = new RedisSeqCache(client(inject('redisUrl')));
    const conversationId = randomUUID();

    await cache.raise(conversationId, 123_456_789_012_345);
    const large = await cache.get(conversationId);
    await cache.raise(conversationId, Number.MAX_SAFE_INTEGER);

    expect([large, await cache.get(conversationId)]).toEqual([123_456_789_012_345, Number.MAX_SAFE_INTEGER]);
  });

  it('stores under {c:<id>}:seq with the expiry it was given (one day by default)', async () => {
    const redis = client(inject('redisUrl'));
    const [short, long] = [randomUUID(), randomUUID()];

    await new RedisSeqCache(redis, { ttlSeconds: 60 }).raise(short, 1);
    await new RedisSeqCache(redis).raise(long, 1);

    expect(await redis.get(`{c:${short}}:lastSeq`)).toBe('1');
    expect(await redis.ttl(`{c:${short}}:lastSeq`)).toBeGreaterThan(55);
    expect(await redis.ttl(`{c:${short}}:lastSeq`)).toBeLessThanOrEqual(60);
    expect(await redis.ttl(`{c:${long}}:lastSeq`)).toBeGreaterThan(86_400 - 5);
  });

  it('ignores a seq that is not a non-negative safe integer, and a stored value that is not a seq', async () => {
    const redis = client(inject('redisUrl'));
    const cache = new RedisSeqCache(redis);
    const [conversationId, garbled] = [randomUUID(), randomUUID()];
    await redis.set(`{c:${garbled}}:lastSeq`, '12abc');

    for (const seq of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60]) await cache.raise(conversationId, seq);

    expect(await redis.exists(`{c:${conversationId}}:lastSeq`)).toBe(0);
    expect(await cache.get(garbled)).toBeUndefined();
  });

  it('answers undefined after FLUSHALL', async () => {
    // A server of its own: FLUSHALL on the shared one would wipe other files' keys.
    const spawned = await spawnRedis();
    onTestFinished(() => spawned.stop());
    const redis = client(spawned.url);
    const cache = new RedisSeqCache(redis);
    const conversationId = randomUUID();
    await cache.raise(conversationId, 42);
    const before = await cache.get(conversationId);

    await redis.flushall();

    expect([before, await cache.get(conversationId)]).toEqual([42, undefined]);
    await cache.raise(conversationId, 7);
    expect(await cache.get(conversationId)).toBe(7);
  });

  it('never throws on a reply error that is a bug, and reports it once', async () => {
    const redis = client(inject('redisUrl'));
    const log = quietLog();
    const cache = new RedisSeqCache(redis, { log });
    const conversationId = randomUUID();
    await redis.hset(`{c:${conversationId}}:lastSeq`, 'not', 'a string');

    const got = await cache.get(conversationId);
    await cache.raise(conversationId, 3);
    await cache.raise(conversationId, 4);

    expect(got).toBeUndefined();
    expect(log.error).toHaveBeenCalledTimes(1);
    expect(log.error).toHaveBeenCalledWith('seq cache call failed', { error: 'ReplyError', reply: 'WRONGTYPE' });
    expect(log.warn).not.toHaveBeenCalled();
  });
});

describe('RedisSeqCache with Redis down', () => {
  it('answers undefined and ignores raises within 3 s when nothing listens', async () => {
    const port = await closedPort();
    const redis = connectRedis(`redis://127.0.0.1:${port}`, 'standalone', quietLog());
    onTestFinished(() => redis.disconnect());
    const log = quietLog();
    const cache = new RedisSeqCache(redis, { log });
    const conversationId = randomUUID();

    const calls = [
      await timed(() => cache.get(conversationId)),
      await timed(() => cache.raise(conversationId, 5)),
      await timed(() => cache.get(conversationId)),
    ];

    expect(calls.map((call) => call.value)).toEqual([undefined, undefined, undefined]);
    expect(Math.max(...calls.map((call) => call.ms))).toBeLessThan(3000);
    expect(log.warn).toHaveBeenCalledTimes(1);
    expect(JSON.stringify(log.warn.mock.calls)).not.toContain(conversationId);
  });

  it('answers undefined while the server is dead, and serves again once it is back', async () => {
    const spawned = await spawnRedis();
    const restarted: ReturnType<typeof startRedisProcess>[] = [];
    onTestFinished(async () => {
      await spawned.stop();
      for (const child of restarted) child.kill('SIGKILL');
    });
    const redis = connectRedis(spawned.url, 'standalone', quietLog());
    onTestFinished(() => redis.disconnect());
    await redisReady(redis, 2000);
    const cache = new RedisSeqCache(redis, { coolOffMs: 200 });
    const conversationId = randomUUID();
    await cache.raise(conversationId, 10);
    expect(await cache.get(conversationId)).toBe(10);

    await spawned.stop();
    const down = [await timed(() => cache.get(conversationId)), await timed(() => cache.raise(conversationId, 11))];

    expect(down.map((call) => call.value)).toEqual([undefined, undefined]);
    expect(Math.max(...down.map((call) => call.ms))).toBeLessThan(3000);

    restarted.push(startRedisProcess(Number(new URL(spawned.url).port)));
    await waitForRedis(spawned.url);
    const deadline = Date.now() + 8000;
    let seen: number | undefined;
    while (seen === undefined && Date.now() < deadline) {
      await cache.raise(conversationId, 12);
      seen = await cache.get(conversationId);
      if (seen === undefined) await sleep(100);
    }
    expect(seen).toBe(12);
  });
});

describe('NoSeqCache', () => {
  it('remembers nothing', async () => {
    const cache = new NoSeqCache();

    await cache.raise('c', 5);

    expect(await cache.get('c')).toBeUndefined();
  });
});

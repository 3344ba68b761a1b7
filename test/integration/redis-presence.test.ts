import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe, expect, inject, it, onTestFinished, vi } from 'vitest';
import { connectRedis } from '../../lambdas/adapters/redis-connection.js';
import { RedisPresence } from '../../lambdas/adapters/redis-presence.js';
import { UnavailableError } from '../../lambdas/errors.js';
import { spawnRedis } from '../../local/redis-server.js';
import { presenceContract, TIMINGS } from '../support/contract/presence.js';
import { closedPort } from './net.js';

const quietLog = () => ({ debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() });
const T0 = Date.UTC(2030, 0, 1);

presenceContract('RedisPresence on redis-server', async () => {
  const redis = connectRedis(inject('redisUrl'), 'standalone', quietLog());
  return {
    presence: new RedisPresence(redis, { ...TIMINGS, prefix: `p-${randomUUID()}` }),
    close: async () => {
      redis.disconnect();
    },
  };
});

function client(url: string): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  onTestFinished(() => redis.disconnect());
  return redis;
}

describe('RedisPresence on redis-server', () => {
  it("keeps a conversation's keys in one slot, with a TTL, and the conversation in the due index", async () => {
    const redis = client(inject('redisUrl'));
    const prefix = `p-${randomUUID()}`;
    const presence = new RedisPresence(redis, { ...TIMINGS, prefix });
    const conversationId = `c-${randomUUID()}`;

    await presence.touch(conversationId, 'ann', 'phone', T0);

    expect(await redis.zrange(`${prefix}:{${conversationId}}:live`, '0', '-1', 'WITHSCORES')).toEqual(['ann|phone', String(T0 + TIMINGS.ttlMs)]);
    expect(await redis.hgetall(`${prefix}:{${conversationId}}:users`)).toEqual({ ann: '1' });
    expect(await redis.zscore(`${prefix}:due`, conversationId)).toBe(String(T0 + TIMINGS.ttlMs + TIMINGS.graceMs));
    expect(await redis.pttl(`${prefix}:{${conversationId}}:live`)).toBeGreaterThan(TIMINGS.ttlMs);
  });

  it('re-adds the due of a conversation whose entry was written while a sweep removed it', async () => {
    const redis = client(inject('redisUrl'));
    const prefix = `p-${randomUUID()}`;
    const presence = new RedisPresence(redis, { ...TIMINGS, prefix });
    const conversationId = `c-${randomUUID()}`;
    await presence.touch(conversationId, 'ann', 'phone', T0);
    // A touch whose process died between its script and its ZADD: an entry, and no due.
    await redis.zrem(`${prefix}:due`, conversationId);
    await redis.del(`${prefix}:{${conversationId}}:hint`);

    await presence.touch(conversationId, 'ann', 'phone', T0 + 1000);

    expect(await redis.zscore(`${prefix}:due`, conversationId)).toBe(String(T0 + 1000 + TIMINGS.ttlMs + TIMINGS.graceMs));
  });

  it('is one round trip per refresh of an online user (the due hint is held)', async () => {
    const spawned = await spawnRedis();
    onTestFinished(() => spawned.stop());
    const redis = client(spawned.url);
    const presence = new RedisPresence(redis, { ...TIMINGS, prefix: 'p' });
    await presence.touch('c1', 'ann', 'phone', T0);
    const monitor = await client(spawned.url).monitor();
    onTestFinished(() => monitor.disconnect());
    const sent: string[] = [];
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (!source.includes('lua')) sent.push(String(args[0]).toLowerCase());
    });

    for (let i = 0; i < 5; i += 1) await presence.refresh('c1', 'ann', 'phone', T0 + i);
    await presence.touch('c1', 'ann', 'laptop', T0 + 10);
    await redis.ping();
    await new Promise((resolve) => setTimeout(resolve, 50));

    expect(sent).toEqual([...Array.from({ length: 6 }, () => 'evalsha'), 'ping']);
  });
});

describe('RedisPresence with Redis down', () => {
  it('fails every call with UnavailableError within the deadline, never answering from this process', async () => {
    const port = await closedPort();
    const redis = connectRedis(`redis://127.0.0.1:${port}`, 'standalone', quietLog());
    onTestFinished(() => redis.disconnect());
    const presence = new RedisPresence(redis, { ...TIMINGS, deadlineMs: 500 });

    const outcomes = await Promise.allSettled([
      presence.touch('c', 'ann', 'phone', T0),
      presence.online('c'),
      presence.sweep(T0, 10),
    ]);

    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      if (outcome.status === 'rejected') expect(outcome.reason).toBeInstanceOf(UnavailableError);
    }
  });
});

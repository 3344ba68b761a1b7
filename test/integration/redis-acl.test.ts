import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, type RedisConnection } from '../../lambdas/adapters/redis-connection.js';
import { RedisPresence } from '../../lambdas/adapters/redis-presence.js';
import { RedisRateLimiter } from '../../lambdas/adapters/redis-rate-limiter.js';
import { RedisSeqCache } from '../../lambdas/adapters/redis-seq-cache.js';
import { RedisTypingGate } from '../../lambdas/adapters/redis-typing-gate.js';
import type { Log } from '../../lambdas/ports.js';
import { REDIS_APP_ACCESS, REDIS_APP_USER, REDIS_DEFAULT_ACCESS } from '../../lib/redis.js';
import { spawnRedis, type SpawnedRedis } from '../../local/redis-server.js';

/**
 * The ElastiCache users of the stack (lib/redis.ts), on a redis-server of this test's own: the app user's access
 * string must let every Redis adapter work (a command it refused would only show as a silent fallback), and must
 * refuse what the app never needs; the `default` user, switched off, must let nothing in.
 */
const PASSWORD = 'acl-test-password-0123456789abcdef';

let server: SpawnedRedis;
let app: RedisConnection;
const warnings: string[] = [];
const log: Log = {
  debug: () => undefined,
  info: () => undefined,
  warn: (message) => warnings.push(message),
  error: (message) => warnings.push(message),
};

beforeAll(async () => {
  server = await spawnRedis();
  const admin = new Redis(server.url);
  await admin.call('ACL', 'SETUSER', REDIS_APP_USER, 'reset', `>${PASSWORD}`, ...REDIS_APP_ACCESS.split(' '));
  await admin.call('ACL', 'SETUSER', 'default', 'reset', ...REDIS_DEFAULT_ACCESS.split(' '));
  admin.disconnect();
  const { hostname, port } = new URL(server.url);
  app = connectRedis(`redis://${REDIS_APP_USER}:${PASSWORD}@${hostname}:${port}`, 'standalone', log);
});

afterAll(async () => {
  app.disconnect();
  await server.stop();
});

describe('the app user (its access string from the stack)', () => {
  it('runs every Redis adapter: rate limits, seq cache, typing gate, presence', async () => {
    const limiter = new RedisRateLimiter(app, { log });
    const seqCache = new RedisSeqCache(app, { log });
    const typing = new RedisTypingGate(app, { windowMs: 60_000, log });
    const presence = new RedisPresence(app, { ttlMs: 60_000, graceMs: 1_000, occupancyIntervalMs: 5_000 });
    const now = Date.now();

    expect(await limiter.admit([{ key: 'conn:c1', perSecond: 10, burst: 10 }])).toBe(true);
    await seqCache.raise('conv-1', 7);
    expect(await seqCache.get('conv-1')).toBe(7);
    expect(await typing.shouldSend('conv-1', 'alice', 'start', now)).toBe(true);
    // The repeat is coalesced by the state kept in Redis.
    expect(await typing.shouldSend('conv-1', 'alice', 'start', now + 1)).toBe(false);
    expect(await presence.touch('conv-1', 'alice', 'c1', now)).toBe(true);
    expect(await presence.online('conv-1')).toEqual(['alice']);
    await presence.leave('conv-1', 'alice', 'c1', now);
    expect((await presence.sweep(now + 10_000, 100)).map((change) => change.userId)).toEqual(['alice']);

    expect(warnings).toEqual([]);
    expect(await app.dbsize()).toBeGreaterThan(0);
  });

  it('is refused the admin and dangerous commands', async () => {
    await expect(app.flushall()).rejects.toThrow(/NOPERM/);
    await expect(app.keys('*')).rejects.toThrow(/NOPERM/);
    await expect(app.call('CONFIG', 'GET', 'maxmemory')).rejects.toThrow(/NOPERM/);
  });
});

describe('the default user', () => {
  it('is switched off: a connection without AUTH can run nothing', async () => {
    const anonymous = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableReadyCheck: false });
    anonymous.on('error', () => undefined);
    try {
      await expect(anonymous.get('conv-1')).rejects.toThrow(/NOAUTH|WRONGPASS|disabled/i);
    } finally {
      anonymous.disconnect();
    }
  });
});

import { Cluster, Redis } from 'ioredis';
import { RedisMessageStore, type RedisConnection } from '../adapters/redis-message-store.js';
import type { Log, MessageStore } from '../ports.js';
import type { Env, Scope } from './lazy.js';
import { readRedisUrl } from './secrets.js';

interface RedisConfig {
  AWS_REGION: string;
  SECRETS_ENDPOINT?: string | undefined;
  REDIS_URL?: string | undefined;
  REDIS_URL_SECRET_ID?: string | undefined;
  REDIS_MODE: 'standalone' | 'cluster';
  RETENTION_SECONDS: number;
  MAX_PENDING_PER_DEVICE: number;
}

function connectRedis(url: string, mode: RedisConfig['REDIS_MODE']): RedisConnection {
  // Fail fast when Redis is down: a frame answers `unavailable` instead of hanging until the Lambda times out.
  const options = {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: 2000,
    enableAutoPipelining: true,
  };
  if (mode === 'cluster') {
    const parsed = new URL(url);
    return new Cluster([{ host: parsed.hostname, port: Number(parsed.port || 6379) }], {
      dnsLookup: (address, callback) => callback(null, address),
      slotsRefreshTimeout: 2000,
      redisOptions: {
        ...options,
        ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
        ...(parsed.password === '' ? {} : { password: decodeURIComponent(parsed.password) }),
        ...(parsed.username === '' ? {} : { username: decodeURIComponent(parsed.username) }),
      },
    });
  }
  return new Redis(url, options);
}

/** The message store on the configured Redis (its URL read from a secret when so configured). */
export async function messageStore(config: RedisConfig, scope: Scope, env: Env, log: Log): Promise<MessageStore> {
  const url = await readRedisUrl(config, env);
  const redis = scope.adopt(connectRedis(url, config.REDIS_MODE), (r) => r.disconnect());
  // ioredis reports connection trouble as events; the commands themselves reject and answer `unavailable`.
  redis.on('error', (error: Error) => log.warn('redis connection error', { error: error.message }));
  return new RedisMessageStore(redis, { retentionSeconds: config.RETENTION_SECONDS, maxPendingPerDevice: config.MAX_PENDING_PER_DEVICE });
}

import { connectRedis } from '../adapters/redis-connection.js';
import { MemoryRateLimiter } from '../adapters/memory-rate-limiter.js';
import { RedisRateLimiter } from '../adapters/redis-rate-limiter.js';
import { NoSeqCache, RedisSeqCache } from '../adapters/redis-seq-cache.js';
import type { RedisConnection } from '../adapters/redis-connection.js';
import type { Log, RateLimiter, SeqCache } from '../ports.js';
import type { Env, Scope } from './lazy.js';
import { readRedisUrl } from './secrets.js';

interface RedisConfig {
  AWS_REGION: string;
  SECRETS_ENDPOINT?: string | undefined;
  REDIS_URL?: string | undefined;
  REDIS_URL_SECRET_ID?: string | undefined;
  REDIS_MODE: 'standalone' | 'cluster';
}

export interface RedisHelpers {
  limiter: RateLimiter;
  seqCache: SeqCache;
  /** The container's one Redis client, for other Redis adapters (presence); undefined without a Redis. */
  connection: RedisConnection | undefined;
}

/**
 * What Redis speeds up — the shared rate limits and the seq cache — on one connection per container. Without a
 * Redis (none configured, as `npm start` may run), limits are kept in this container and there is no cache:
 * slower and less precise, never less correct.
 */
export async function redisHelpers(config: RedisConfig, scope: Scope, env: Env, log: Log): Promise<RedisHelpers> {
  if (config.REDIS_URL === undefined && config.REDIS_URL_SECRET_ID === undefined) {
    return { limiter: new MemoryRateLimiter(), seqCache: new NoSeqCache(), connection: undefined };
  }
  const url = await readRedisUrl(config, env);
  const redis = scope.adopt(connectRedis(url, config.REDIS_MODE, log), (r) => r.disconnect());
  return { limiter: new RedisRateLimiter(redis, { log }), seqCache: new RedisSeqCache(redis, { log }), connection: redis };
}

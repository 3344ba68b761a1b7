import { connectRedis, redisReady } from '../adapters/redis-connection.js';
import { rereadCredentialsOnRefusal } from '../adapters/redis-credentials.js';
import { MemoryFanoutBudget } from '../adapters/memory-fanout-budget.js';
import { MemoryRateLimiter } from '../adapters/memory-rate-limiter.js';
import { RedisFanoutBudget } from '../adapters/redis-fanout-budget.js';
import { RedisRateLimiter } from '../adapters/redis-rate-limiter.js';
import { NoSeqCache, RedisSeqCache } from '../adapters/redis-seq-cache.js';
import { MemoryTypingGate } from '../adapters/memory-typing-gate.js';
import type { RedisConnection } from '../adapters/redis-connection.js';
import { RedisTypingGate } from '../adapters/redis-typing-gate.js';
import type { FanoutBudget, FanoutBudgetSettings, Log, RateLimiter, SeqCache, TypingGate, TypingSettings } from '../ports.js';
import type { Env, Scope } from './lazy.js';
import { readRedisUrl } from './secrets.js';

/** How long building a route's services waits for a cluster client's slot map. */
const CLUSTER_READY_WAIT_MS = 500;

interface RedisConfig {
  AWS_REGION: string;
  SECRETS_ENDPOINT?: string | undefined;
  REDIS_URL?: string | undefined;
  REDIS_URL_SECRET_ID?: string | undefined;
  REDIS_AUTH_SECRET_ID?: string | undefined;
  REDIS_MODE: 'standalone' | 'cluster';
}

export interface RedisHelpers {
  limiter: RateLimiter;
  seqCache: SeqCache;
  /** The typing gate with these settings' window (on the same connection). */
  typingGate(settings: TypingSettings): TypingGate;
  /** The fan-out budgets with these rates (on the same connection). */
  fanoutBudget(settings: FanoutBudgetSettings): FanoutBudget;
  /** The container's one Redis client, for other Redis adapters (presence); undefined without a Redis. */
  connection: RedisConnection | undefined;
}

/**
 * What Redis speeds up — the shared rate limits, the seq cache, the typing gate, the fan-out budgets — on one
 * connection per container. Without a Redis (none configured, as `npm start` may run), limits, budgets and the typing gate are kept in
 * this container and there is no cache: slower and less precise, never less correct.
 */
export async function redisHelpers(config: RedisConfig, scope: Scope, env: Env, log: Log): Promise<RedisHelpers> {
  if (config.REDIS_URL === undefined && config.REDIS_URL_SECRET_ID === undefined) {
    return {
      limiter: new MemoryRateLimiter(),
      seqCache: new NoSeqCache(),
      typingGate: (settings) => new MemoryTypingGate({ windowMs: settings.coalesceMs }),
      fanoutBudget: (settings) => new MemoryFanoutBudget(settings),
      connection: undefined,
    };
  }
  const url = await readRedisUrl(config, env);
  const redis = scope.adopt(connectRedis(url, config.REDIS_MODE, log), (r) => r.disconnect());
  // Credentials from Secrets Manager are rotated: a refused AUTH re-reads them (a plain REDIS_URL has nothing to re-read).
  if (config.REDIS_AUTH_SECRET_ID !== undefined || config.REDIS_URL_SECRET_ID !== undefined) {
    rereadCredentialsOnRefusal(redis, () => readRedisUrl(config, env), log);
  }
  // A cluster client queues nothing: without its slot map the container's first frames would all fall back (and
  // presence answer `unavailable`). It usually has it within milliseconds; a cluster that is down costs this once.
  if (config.REDIS_MODE === 'cluster') await redisReady(redis, CLUSTER_READY_WAIT_MS);
  return {
    limiter: new RedisRateLimiter(redis, { log }),
    seqCache: new RedisSeqCache(redis, { log }),
    typingGate: (settings) => new RedisTypingGate(redis, { windowMs: settings.coalesceMs, log }),
    fanoutBudget: (settings) => new RedisFanoutBudget(redis, settings, { log }),
    connection: redis,
  };
}

import type { Result } from 'ioredis';
import type { Log, RateBucket, RateLimiter } from '../ports.js';
import { MemoryRateLimiter, placeBuckets } from './memory-rate-limiter.js';
import {
  isTransientRedisError,
  RedisCoolOff,
  redisErrorFields,
  runBounded,
  throttledLog,
  type RedisConnection,
} from './redis-connection.js';

/**
 * Takes one token from every bucket, all or nothing. KEYS: the buckets' hashes (fields tokens, ts).
 * ARGV: perSecond, burst for each key, in order. Time is Redis `TIME`, shared by every container. A refusal
 * writes nothing: refilling is a function of the time since `ts`, so leaving the state alone is exact. A key
 * expires when its bucket would be full again, which is what a missing key means.
 */
const ADMIT_ALL = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local left = {}
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1]) or burst
  local ts = tonumber(state[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
  if tokens < 1 then return 0 end
  left[i] = tokens - 1
end
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  redis.call('HSET', key, 'tokens', string.format('%.17g', left[i]), 'ts', string.format('%d', now))
  redis.call('PEXPIRE', key, math.max(1, math.ceil((burst - left[i]) * 1000 / rate)))
end
return 1`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** Arguments: the number of keys, the keys, then perSecond and burst per key. */
    relayRateAdmit(numberOfKeys: number, ...keysAndArgs: string[]): Result<number, Context>;
  }
}

export interface RedisRateLimiterOptions {
  /** Told (at most once per 30 s) when Redis is unavailable and limits are kept in this process. */
  readonly log: Log;
  /** Where limits are kept while Redis is unavailable. @default a MemoryRateLimiter with the same buckets */
  readonly fallback?: RateLimiter;
  /** The longest an admit waits for Redis before it uses the fallback. @default 1000 */
  readonly deadlineMs?: number;
  /** After Redis failed, admits use the fallback for this long before trying Redis again. @default 1000 */
  readonly coolOffMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

/**
 * Token buckets in Redis, shared by every container; this container's own buckets while Redis is unavailable.
 *
 * One admit is one script, one round trip, atomic. On a cluster the script's keys must share a slot, so each
 * call's keys carry the hash tag of the call's owner: its `user:<id>` bucket when it has one (a connection
 * belongs to one user, and a user's buckets then sit together), else its first bucket:
 *
 *   {u:<encoded user>}:rl:user        the user's bucket
 *   {u:<encoded user>}:rl:<key>       every other bucket of a call that has the user's bucket (e.g. conn:<id>)
 *   {k:<encoded first key>}:rl:<key>  the buckets of a call without a user bucket
 *
 * So a bucket is counted per owner: `conn:c1` with `user:alice` and `conn:c1` alone are two counters (a frame
 * always names its connection and its user). A call naming two users has no one slot for its keys and is refused
 * with a RangeError (a bug in the caller). `perSecond <= 0` means "no limit" (the bucket is not touched); a key
 * named twice counts once. MemoryRateLimiter names its buckets the same way (placeBuckets), so the two agree.
 */
export class RedisRateLimiter implements RateLimiter {
  private readonly fallback: RateLimiter;
  private readonly deadlineMs: number;
  private readonly coolOff: RedisCoolOff;
  private readonly warn: (message: string, fields?: Record<string, unknown>) => void;

  constructor(
    private readonly redis: RedisConnection,
    options: RedisRateLimiterOptions,
  ) {
    const now = options.now ?? Date.now;
    this.fallback = options.fallback ?? new MemoryRateLimiter({ clock: { now } });
    this.deadlineMs = options.deadlineMs ?? 1000;
    this.coolOff = new RedisCoolOff(options.coolOffMs ?? 1000, now);
    this.warn = throttledLog((message, fields) => options.log.warn(message, fields), now);
    redis.defineCommand('relayRateAdmit', { lua: ADMIT_ALL });
  }

  async admit(buckets: readonly RateBucket[]): Promise<boolean> {
    const limited = placeBuckets(buckets).filter(({ bucket }) => bucket.perSecond > 0);
    if (limited.length === 0) return true;
    if (this.coolOff.active) return await this.fallback.admit(buckets);
    try {
      const reply = await runBounded(
        this.redis,
        () =>
          this.redis.relayRateAdmit(
            limited.length,
            ...limited.map(({ key }) => key),
            ...limited.flatMap(({ bucket }) => [String(bucket.perSecond), String(bucket.burst)]),
          ),
        this.deadlineMs,
      );
      return reply === 1;
    } catch (error) {
      if (!isTransientRedisError(error)) throw error;
      this.coolOff.start();
      this.warn('redis unavailable: rate limits are kept in this process', redisErrorFields(error));
      return await this.fallback.admit(buckets);
    }
  }
}

import type { Clock, RateBucket, RateLimiter } from '../ports.js';

export interface MemoryRateLimiterOptions {
  /** @default Date.now */
  readonly clock?: Clock;
  /**
   * Buckets kept at most; taking from one more forgets the least recently used (which then counts as full).
   * @default 10_000
   */
  readonly maxKeys?: number;
}

interface BucketState {
  tokens: number;
  at: number;
}

/**
 * Token buckets in this process: the fallback of RedisRateLimiter while Redis is down, and the limiter of
 * `npm start` without Redis. Same rules as the Redis script, and buckets named as in Redis (placeBuckets): a
 * bucket starts full, refills `perSecond` tokens a second up to `burst`, and one admit takes a token from every
 * bucket or from none. `perSecond <= 0` means "no limit"; a key named twice in one call counts once.
 */
export class MemoryRateLimiter implements RateLimiter {
  private readonly clock: Clock;
  private readonly maxKeys: number;
  /** Map order is recency order: the first entry is the least recently used. */
  private readonly states = new Map<string, BucketState>();

  constructor(options: MemoryRateLimiterOptions = {}) {
    this.clock = options.clock ?? { now: () => Date.now() };
    this.maxKeys = Math.max(1, options.maxKeys ?? 10_000);
  }

  async admit(buckets: readonly RateBucket[]): Promise<boolean> {
    const now = this.clock.now();
    const taken: [string, number][] = [];
    for (const { bucket, key } of placeBuckets(buckets)) {
      if (bucket.perSecond <= 0) continue;
      const tokens = refilled(this.states.get(key), bucket, now);
      if (tokens < 1) return false;
      taken.push([key, tokens - 1]);
    }
    for (const [key, tokens] of taken) {
      this.states.delete(key);
      this.states.set(key, { tokens, at: now });
    }
    for (const key of this.states.keys()) {
      if (this.states.size <= this.maxKeys) break;
      this.states.delete(key);
    }
    return true;
  }

  /** How many buckets are held (for tests of the bound). */
  get size(): number {
    return this.states.size;
  }
}

export interface PlacedBucket {
  bucket: RateBucket;
  /** Where the bucket is kept: its Redis key, and its name in memory. */
  key: string;
}

const USER = 'user:';

/**
 * The buckets of one call, each key once (the first occurrence wins, so no bucket pays twice for one frame),
 * each named under the hash tag of the call's owner: its `user:` bucket, else its first bucket. On a Redis
 * Cluster one script may only touch keys of one slot; the tag puts them there (layout: RedisRateLimiter).
 * Throws a RangeError for a call naming two users: their buckets have no one slot.
 */
export function placeBuckets(buckets: readonly RateBucket[]): PlacedBucket[] {
  const distinct = new Map<string, RateBucket>();
  for (const bucket of buckets) if (!distinct.has(bucket.key)) distinct.set(bucket.key, bucket);
  const users = [...distinct.keys()].filter((key) => key.startsWith(USER));
  if (users.length > 1) {
    throw new RangeError('one admit may take from at most one user bucket: its keys must share a cluster slot');
  }
  const [owner] = users;
  const [first = ''] = distinct.keys();
  const tag =
    owner === undefined ? `{k:${encodeURIComponent(first)}}` : `{u:${encodeURIComponent(owner.slice(USER.length))}}`;
  return [...distinct.values()].map((bucket) => ({
    bucket,
    key: bucket.key === owner ? `${tag}:rl:user` : `${tag}:rl:${bucket.key}`,
  }));
}

function refilled(state: BucketState | undefined, bucket: RateBucket, now: number): number {
  if (state === undefined) return bucket.burst;
  const elapsed = Math.max(0, now - state.at);
  return Math.min(bucket.burst, state.tokens + (elapsed * bucket.perSecond) / 1000);
}

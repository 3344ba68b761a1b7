import type { Result } from 'ioredis';
import type { Log, SeqCache } from '../ports.js';
import {
  isTransientRedisError,
  RedisCoolOff,
  redisErrorFields,
  runBounded,
  throttledLog,
  type RedisConnection,
} from './redis-connection.js';

/**
 * Sets KEYS[1] to ARGV[1] (with ARGV[2] seconds to live) unless it already holds as much. The value is written
 * as given: Lua's own number formatting would turn a 15-digit seq into "1e+14".
 */
const RAISE = `
local current = tonumber(redis.call('GET', KEYS[1]))
if current ~= nil and current >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** Arguments: key, seq, ttlSeconds. */
    relaySeqRaise(key: string, seq: string, ttlSeconds: string): Result<number, Context>;
  }
}

export interface RedisSeqCacheOptions {
  /** How long a conversation's entry lives after its last raise. @default 86_400 (one day) */
  readonly ttlSeconds?: number;
  /** Told, at most once per 30 s, that the cache is unavailable (warn) or that a call failed otherwise (error). */
  readonly log?: Log;
  /** The longest a call waits for Redis. @default 1000 */
  readonly deadlineMs?: number;
  /** After Redis failed, calls skip it for this long (get answers undefined). @default 1000 */
  readonly coolOffMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

/**
 * The last seq of each conversation in Redis, key `{c:<conversationId>}:lastSeq` (one key per call, so any slot
 * will do; not the old message store's `:seq` counter, which may still hold a higher value on an upgraded cache).
 * It is a hint for the message log, never the truth: no method throws, and on any Redis error `get` answers
 * undefined and `raise` does nothing.
 */
export class RedisSeqCache implements SeqCache {
  private readonly ttlSeconds: string;
  private readonly deadlineMs: number;
  private readonly coolOff: RedisCoolOff;
  private readonly warn: (message: string, fields?: Record<string, unknown>) => void;
  private readonly error: (message: string, fields?: Record<string, unknown>) => void;

  constructor(
    private readonly redis: RedisConnection,
    options: RedisSeqCacheOptions = {},
  ) {
    const now = options.now ?? Date.now;
    this.ttlSeconds = String(Math.max(1, Math.ceil(options.ttlSeconds ?? 86_400)));
    this.deadlineMs = options.deadlineMs ?? 1000;
    this.coolOff = new RedisCoolOff(options.coolOffMs ?? 1000, now);
    const log = options.log;
    this.warn = throttledLog((message, fields) => log?.warn(message, fields), now);
    this.error = throttledLog((message, fields) => log?.error(message, fields), now);
    redis.defineCommand('relaySeqRaise', { numberOfKeys: 1, lua: RAISE });
  }

  async get(conversationId: string): Promise<number | undefined> {
    if (this.coolOff.active) return undefined;
    try {
      const value = await runBounded(this.redis, () => this.redis.get(seqKey(conversationId)), this.deadlineMs);
      if (value === null || !/^\d{1,16}$/.test(value)) return undefined;
      const seq = Number(value);
      return Number.isSafeInteger(seq) ? seq : undefined;
    } catch (error) {
      this.failed(error);
      return undefined;
    }
  }

  async raise(conversationId: string, seq: number): Promise<void> {
    if (!Number.isSafeInteger(seq) || seq < 0 || this.coolOff.active) return;
    try {
      await runBounded(
        this.redis,
        () => this.redis.relaySeqRaise(seqKey(conversationId), String(seq), this.ttlSeconds),
        this.deadlineMs,
      );
    } catch (error) {
      this.failed(error);
    }
  }

  private failed(error: unknown): void {
    if (isTransientRedisError(error)) {
      this.coolOff.start();
      this.warn('redis unavailable: no seq hints', redisErrorFields(error));
    } else {
      this.error('seq cache call failed', redisErrorFields(error));
    }
  }
}

/** For a deployment without Redis: every append starts from the log's own last seq. */
export class NoSeqCache implements SeqCache {
  async get(_conversationId: string): Promise<number | undefined> {
    return undefined;
  }

  async raise(_conversationId: string, _seq: number): Promise<void> {
    return undefined;
  }
}

function seqKey(conversationId: string): string {
  return `{c:${conversationId}}:lastSeq`;
}

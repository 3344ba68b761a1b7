import type { Result } from 'ioredis';
import type { Log, TypingGate, TypingState } from '../ports.js';
import { MemoryTypingGate } from './memory-typing-gate.js';
import {
  isTransientRedisError,
  RedisCoolOff,
  redisErrorFields,
  runBounded,
  throttledLog,
  type RedisConnection,
} from './redis-connection.js';

/**
 * The gate's rule (typingGoesOut) on one key. KEYS[1]: the pair's key, value `<state>:<at>` of the last frame
 * that went out. ARGV: state, now (epoch ms, the caller's clock), the window (ms). A frame that goes out is
 * recorded, its key expiring after the window: a missing key means "nothing recent", so the next frame goes
 * out, and a caller whose clock is behind can hold frames back for at most one window of real time.
 */
const SHOULD_SEND = `
local last = redis.call('GET', KEYS[1])
local now = tonumber(ARGV[2])
if last then
  local sep = string.find(last, ':', 1, true)
  local at = sep and tonumber(string.sub(last, sep + 1))
  if at and string.sub(last, 1, sep - 1) == ARGV[1] and now - at < tonumber(ARGV[3]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2], 'PX', ARGV[3])
return 1`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** Arguments: 1, the pair's key, state, now, window ms. */
    relayTypingGate(numberOfKeys: number, ...keysAndArgs: string[]): Result<number, Context>;
  }
}

export interface RedisTypingGateOptions {
  /** A repeated state goes out at most once per this many ms; 0 lets every frame out (and asks Redis nothing). */
  readonly windowMs: number;
  /** Told (at most once per 30 s) when Redis is unavailable and the gate is kept in this process. */
  readonly log: Log;
  /** Where the gate is kept while Redis is unavailable. @default a MemoryTypingGate with the same window */
  readonly fallback?: TypingGate;
  /** The longest a call waits for Redis before it uses the fallback. @default 1000 */
  readonly deadlineMs?: number;
  /** After Redis failed, calls use the fallback for this long before trying Redis again. @default 1000 */
  readonly coolOffMs?: number;
  /** The clock of the cool-off and the log throttle (the gate itself runs on the callers' `now`). @default Date.now */
  readonly now?: () => number;
}

/** The key of one user's typing in one conversation, under the conversation's hash tag. */
export function typingKey(conversationId: string, userId: string): string {
  return `{c:${encodeURIComponent(conversationId)}}:typing:${encodeURIComponent(userId)}`;
}

/**
 * The typing gate in Redis, shared by every container and so by every device of a user: one script, one key,
 * one round trip per frame, atomic (two containers racing with the same frame: one of them sends it). While
 * Redis is unavailable, this container's own MemoryTypingGate (fail open: it only ever sends more).
 */
export class RedisTypingGate implements TypingGate {
  private readonly windowMs: number;
  private readonly fallback: TypingGate;
  private readonly deadlineMs: number;
  private readonly coolOff: RedisCoolOff;
  private readonly warn: (message: string, fields?: Record<string, unknown>) => void;

  constructor(
    private readonly redis: RedisConnection,
    options: RedisTypingGateOptions,
  ) {
    const now = options.now ?? Date.now;
    this.windowMs = options.windowMs;
    this.fallback = options.fallback ?? new MemoryTypingGate({ windowMs: options.windowMs });
    this.deadlineMs = options.deadlineMs ?? 1000;
    this.coolOff = new RedisCoolOff(options.coolOffMs ?? 1000, now);
    this.warn = throttledLog((message, fields) => options.log.warn(message, fields), now);
    redis.defineCommand('relayTypingGate', { lua: SHOULD_SEND });
  }

  async shouldSend(conversationId: string, userId: string, state: TypingState, now: number): Promise<boolean> {
    if (this.windowMs <= 0) return true;
    if (this.coolOff.active) return await this.fallback.shouldSend(conversationId, userId, state, now);
    try {
      const reply = await runBounded(
        this.redis,
        () => this.redis.relayTypingGate(1, typingKey(conversationId, userId), state, String(Math.floor(now)), String(this.windowMs)),
        this.deadlineMs,
      );
      return reply === 1;
    } catch (error) {
      if (!isTransientRedisError(error)) throw error;
      this.coolOff.start();
      this.warn('redis unavailable: typing is coalesced in this process', redisErrorFields(error));
      return await this.fallback.shouldSend(conversationId, userId, state, now);
    }
  }
}

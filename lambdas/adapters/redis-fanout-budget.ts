import type { Result } from 'ioredis';
import type { FanoutBudget, FanoutBudgetSettings, Log } from '../ports.js';
import { MemoryFanoutBudget, placeBudgets, type PlacedBudget } from './memory-fanout-budget.js';
import { isTransientRedisError, RedisCoolOff, redisErrorFields, runBounded, throttledLog, type RedisConnection } from './redis-connection.js';

/**
 * Spends ARGV[2] posts (0: only looks) from one budget and answers the ms until it has a post's worth again.
 * KEYS[1]: the budget's hash (fields tokens, ts). ARGV[1]: posts per second, which is also its capacity. Time is
 * Redis `TIME`, shared by every container. The tokens may go below zero (debt); the key expires once the budget
 * is full again, which is what a missing key means.
 */
const SPEND = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1])
local posts = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or rate
local ts = tonumber(state[2]) or now
tokens = math.min(rate, tokens + math.max(0, now - ts) * rate / 1000)
if posts > 0 then
  tokens = tokens - posts
  redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%d', now))
  redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((rate - tokens) * 1000 / rate)))
end
if tokens >= 1 then return 0 end
return math.ceil((1 - tokens) * 1000 / rate)`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** Arguments: the budget's key, its posts per second, the posts to spend. */
    relayFanoutSpend(key: string, perSecond: string, posts: string): Result<number, Context>;
  }
}

export interface RedisFanoutBudgetOptions {
  /** Told (at most once per 30 s) when Redis is unavailable and budgets are kept in this process. */
  readonly log: Log;
  /** Where budgets are kept while Redis is unavailable. @default a MemoryFanoutBudget with the same settings */
  readonly fallback?: FanoutBudget;
  /** The longest a call waits for Redis before it uses the fallback. @default 1000 */
  readonly deadlineMs?: number;
  /** After Redis failed, calls use the fallback for this long before trying Redis again. @default 1000 */
  readonly coolOffMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

/**
 * Fan-out budgets in Redis, shared by every container; this container's own while Redis is unavailable (it fails
 * open: a send is never refused because Redis is down, only limited by what this container has seen).
 *
 *   {c:<conversationId>}:fb     the conversation's budget (in the slot of its seq cache)
 *   {u:<encoded user>}:fb       the sender's budget (in the slot of their rate limits)
 *
 * The two sit in different slots, so each call is two scripts, sent together.
 */
export class RedisFanoutBudget implements FanoutBudget {
  private readonly fallback: FanoutBudget;
  private readonly deadlineMs: number;
  private readonly coolOff: RedisCoolOff;
  private readonly warn: (message: string, fields?: Record<string, unknown>) => void;

  constructor(
    private readonly redis: RedisConnection,
    private readonly settings: FanoutBudgetSettings,
    options: RedisFanoutBudgetOptions,
  ) {
    const now = options.now ?? Date.now;
    this.fallback = options.fallback ?? new MemoryFanoutBudget(settings, { clock: { now } });
    this.deadlineMs = options.deadlineMs ?? 1000;
    this.coolOff = new RedisCoolOff(options.coolOffMs ?? 1000, now);
    this.warn = throttledLog((message, fields) => options.log.warn(message, fields), now);
    redis.defineCommand('relayFanoutSpend', { numberOfKeys: 1, lua: SPEND });
  }

  async waitMs(conversationId: string, senderId: string): Promise<number> {
    const waits = await this.viaRedis(conversationId, senderId, 0);
    return waits === undefined ? await this.fallback.waitMs(conversationId, senderId) : Math.max(0, ...waits);
  }

  async spend(conversationId: string, senderId: string, posts: number): Promise<void> {
    if (posts <= 0) return;
    if ((await this.viaRedis(conversationId, senderId, posts)) === undefined) await this.fallback.spend(conversationId, senderId, posts);
  }

  /** Both budgets' answers, or undefined when Redis cannot answer now (the caller uses the fallback). */
  private async viaRedis(conversationId: string, senderId: string, posts: number): Promise<number[] | undefined> {
    if (this.coolOff.active) return undefined;
    try {
      const budgets = placeBudgets(this.settings, conversationId, senderId);
      return await runBounded(this.redis, () => Promise.all(budgets.map((budget) => this.script(budget, posts))), this.deadlineMs);
    } catch (error) {
      if (!isTransientRedisError(error)) throw error;
      this.coolOff.start();
      this.warn('redis unavailable: fan-out budgets are kept in this process', redisErrorFields(error));
      return undefined;
    }
  }

  private script({ key, perSecond }: PlacedBudget, posts: number): Promise<number> {
    return this.redis.relayFanoutSpend(key, String(perSecond), String(posts));
  }
}

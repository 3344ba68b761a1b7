import type { Result } from 'ioredis';
import { UnavailableError } from '../errors.js';
import type { Presence, PresenceChange } from '../ports.js';
import { connectionKey, type PresenceTimings } from './memory-presence.js';
import { isTransientRedisError, RedisCoolOff, redisErrorFields, runBounded, type RedisConnection } from './redis-connection.js';

/**
 * Marks a connection live. KEYS: live (sorted set: connection key → expiry ms), users (hash: user → number of
 * entries; a user in it is online), hint (set while the due index is known to hold this conversation).
 * ARGV: connection key, encoded user, expiry, may come online (1/0), key TTL ms, hint TTL ms.
 * Returns bit 1 when the user came online, bit 2 when the caller must add the conversation to the due index: the
 * conversation had no entry (a sweeper may be removing its due) or the hint lapsed (a crash between a touch and
 * its ZADD left it out), so a live entry is never without a sweep for longer than the hint's TTL.
 */
const TOUCH = `
local known = redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1
if ARGV[4] ~= '1' and not known then return 0 end
local empty = redis.call('EXISTS', KEYS[1]) == 0
if redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1]) == 1 then redis.call('HINCRBY', KEYS[2], ARGV[2], 1) end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
local result = 0
if not known then result = 1 end
local lapsed = redis.call('SET', KEYS[3], '1', 'PX', ARGV[6], 'NX')
if empty or lapsed then result = result + 2 end
return result`;

/** Lowers a connection's expiry to ARGV[2]. KEYS: live. Returns 1 when the connection had an entry. */
const LEAVE = `
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', 'LT', ARGV[2], ARGV[1])
return 1`;

/**
 * Claims the entries that lapsed before ARGV[1] (now - grace), at most 1000 a call. KEYS: live, users. Returns the
 * earliest remaining expiry ('' when none), then (encoded user, expiry) of each user whose last entry went.
 * Atomic: two sweepers never claim the same user.
 */
const SWEEP = `
local gone = {}
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, 1000)
for i = 1, #lapsed, 2 do
  local member = lapsed[i]
  redis.call('ZREM', KEYS[1], member)
  local user = string.match(member, '^([^|]*)|')
  if redis.call('HINCRBY', KEYS[2], user, -1) <= 0 then
    redis.call('HDEL', KEYS[2], user)
    gone[#gone + 1] = user
    gone[#gone + 1] = lapsed[i + 1]
  end
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local result = { first[2] or '' }
for _, value in ipairs(gone) do result[#result + 1] = value end
return result`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    relayPresenceTouch(live: string, users: string, hint: string, ...args: string[]): Result<number, Context>;
    relayPresenceLeave(live: string, member: string, now: string): Result<number, Context>;
    relayPresenceSweep(live: string, users: string, cutoff: string): Result<string[], Context>;
  }
}

export interface RedisPresenceOptions extends PresenceTimings {
  /** Key prefix (tests use their own). @default 'presence' */
  readonly prefix?: string;
  /** The longest a call waits for Redis. @default 1000 */
  readonly deadlineMs?: number;
  /** After Redis failed, calls fail at once for this long. @default 1000 */
  readonly coolOffMs?: number;
  /** @default Date.now (only for the cool-off) */
  readonly clock?: () => number;
}

/**
 * Presence in Redis, shared by every container. Per conversation, in one slot (hash tag):
 *
 *   <prefix>:{<conversationId>}:live       sorted set, encoded user + '|' + connectionId → expiry ms
 *   <prefix>:{<conversationId>}:users      hash, encoded user → entries (the users online)
 *   <prefix>:{<conversationId>}:hint       set while the conversation is known to be in the due index
 *   <prefix>:{<conversationId>}:occupancy  set while an occupancy frame went out less than an interval ago
 *   <prefix>:due                           sorted set, conversationId → when it next needs a sweep
 *
 * The due index is another slot, so it is written with its own commands, ordered so that a conversation with an
 * entry always ends up with a due (see `sweep`). Keys expire a minute after the last entry could have lapsed.
 * Every method throws UnavailableError while Redis cannot answer: callers decide (routes ignore it; `getPresence`
 * answers `unavailable`). Presence never falls back to this process when Redis is configured: that would lie.
 */
export class RedisPresence implements Presence {
  private readonly prefix: string;
  private readonly deadlineMs: number;
  private readonly coolOff: RedisCoolOff;
  private readonly keyTtlMs: string;

  constructor(
    private readonly redis: RedisConnection,
    private readonly options: RedisPresenceOptions,
  ) {
    this.prefix = options.prefix ?? 'presence';
    this.deadlineMs = options.deadlineMs ?? 1000;
    this.coolOff = new RedisCoolOff(options.coolOffMs ?? 1000, options.clock ?? Date.now);
    this.keyTtlMs = String(Math.ceil(options.ttlMs + options.graceMs + 60_000));
    redis.defineCommand('relayPresenceTouch', { numberOfKeys: 3, lua: TOUCH });
    redis.defineCommand('relayPresenceLeave', { numberOfKeys: 1, lua: LEAVE });
    redis.defineCommand('relayPresenceSweep', { numberOfKeys: 2, lua: SWEEP });
  }

  async touch(conversationId: string, userId: string, connectionId: string, now: number): Promise<boolean> {
    return await this.mark(conversationId, userId, connectionId, now, true);
  }

  async refresh(conversationId: string, userId: string, connectionId: string, now: number): Promise<void> {
    await this.mark(conversationId, userId, connectionId, now, false);
  }

  async leave(conversationId: string, userId: string, connectionId: string, now: number): Promise<void> {
    const had = await this.call(() => this.redis.relayPresenceLeave(this.key(conversationId, 'live'), connectionKey(userId, connectionId), String(now)));
    // Lower only: a later due would announce late; an earlier one is the sweeper's to raise.
    if (had === 1) await this.call(() => this.redis.zadd(this.dueKey(), 'LT', String(now + this.options.graceMs), conversationId));
  }

  /**
   * Each conversation due by `now`: its script claims the lapsed users; then its due is set to its earliest expiry
   * + grace, or removed when it has none; then it is read again and the due lowered (or re-added) if an entry
   * appeared or moved earlier meanwhile. A touch writes its entry before its own ZADD NX, so whichever of the two
   * the removal meets, the conversation keeps a due. A crash between the script and the announcement loses that
   * announcement (presence is at most once; `getPresence` stays right); one before the due is re-set leaves it
   * due now, and the next sweep finds nothing to claim and re-sets it.
   */
  async sweep(now: number, limit: number): Promise<PresenceChange[]> {
    const due = await this.call(() => this.redis.zrangebyscore(this.dueKey(), '-inf', String(now), 'LIMIT', 0, Math.max(1, limit)));
    const changes = await Promise.all(due.map((conversationId) => this.sweepOne(conversationId, now)));
    return changes.flat();
  }

  async online(conversationId: string): Promise<string[]> {
    const users = await this.call(() => this.redis.hkeys(this.key(conversationId, 'users')));
    return users.map((user) => decodeURIComponent(user));
  }

  async count(conversationId: string): Promise<number> {
    return await this.call(() => this.redis.hlen(this.key(conversationId, 'users')));
  }

  async claimOccupancy(conversationId: string, _now: number): Promise<boolean> {
    const set = await this.call(() =>
      this.redis.set(this.key(conversationId, 'occupancy'), '1', 'PX', Math.max(1, Math.ceil(this.options.occupancyIntervalMs)), 'NX'),
    );
    return set === 'OK';
  }

  private async mark(conversationId: string, userId: string, connectionId: string, now: number, mayComeOnline: boolean): Promise<boolean> {
    const expiry = now + this.options.ttlMs;
    const result = await this.call(() =>
      this.redis.relayPresenceTouch(
        this.key(conversationId, 'live'),
        this.key(conversationId, 'users'),
        this.key(conversationId, 'hint'),
        connectionKey(userId, connectionId),
        encodeURIComponent(userId),
        String(expiry),
        mayComeOnline ? '1' : '0',
        this.keyTtlMs,
        String(Math.max(1, Math.ceil(this.options.ttlMs))),
      ),
    );
    // Second, and NX: an existing due is earlier or equal (the sweeper keeps it at the earliest expiry + grace).
    if ((result & 2) !== 0) await this.call(() => this.redis.zadd(this.dueKey(), 'NX', String(expiry + this.options.graceMs), conversationId));
    return (result & 1) !== 0;
  }

  private async sweepOne(conversationId: string, now: number): Promise<PresenceChange[]> {
    const live = this.key(conversationId, 'live');
    const [earliest = '', ...gone] = await this.call(() =>
      this.redis.relayPresenceSweep(live, this.key(conversationId, 'users'), String(now - this.options.graceMs)),
    );
    if (earliest === '') await this.call(() => this.redis.zrem(this.dueKey(), conversationId));
    else await this.call(() => this.redis.zadd(this.dueKey(), String(Number(earliest) + this.options.graceMs), conversationId));
    const [, again] = await this.call(() => this.redis.zrange(live, '0', '0', 'WITHSCORES'));
    if (again !== undefined) await this.call(() => this.redis.zadd(this.dueKey(), 'LT', String(Number(again) + this.options.graceMs), conversationId));
    const changes: PresenceChange[] = [];
    for (let i = 0; i + 1 < gone.length; i += 2) {
      changes.push({ conversationId, userId: decodeURIComponent(gone[i] ?? ''), at: Number(gone[i + 1]) });
    }
    return changes;
  }

  private key(conversationId: string, part: 'live' | 'users' | 'hint' | 'occupancy'): string {
    return `${this.prefix}:{${conversationId}}:${part}`;
  }

  private dueKey(): string {
    return `${this.prefix}:due`;
  }

  /** One bounded call; a Redis that cannot answer is UnavailableError (and later calls fail fast for a while). */
  private async call<T>(command: () => Promise<T>): Promise<T> {
    if (this.coolOff.active) throw new UnavailableError('presence is unavailable (redis is down)');
    try {
      return await runBounded(this.redis, command, this.deadlineMs);
    } catch (error) {
      if (!isTransientRedisError(error)) throw error;
      this.coolOff.start();
      throw new UnavailableError('presence is unavailable (redis is down)', { cause: redisErrorFields(error) });
    }
  }
}

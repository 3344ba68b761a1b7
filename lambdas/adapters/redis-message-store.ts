import type { Cluster, Redis, Result } from 'ioredis';
import { UnavailableError } from '../errors.js';
import type {
  AppendResult,
  Device,
  MessageStore,
  PendingResult,
  RateLimit,
  StoredMessage,
} from '../ports.js';
import { decodeStoredMessage, deviceKey, encodeStoredMessage, userPrefix } from './stored-message.js';

/**
 * The message store in Redis. Every key of a conversation carries the hash tag `{c:<id>}`, so they share one
 * cluster slot and each operation is one Lua script: one round trip, atomic, cluster-safe.
 *
 *   {c:X}:seq          INCR counter: the conversation's seq
 *   {c:X}:m:<msgId>    "<seq>\n<json>" with EX retention: the sealed message
 *   {c:X}:i:<u>:<cm>   "<msgId>\n<seq>\n<sentAt>" with EX retention: idempotency of clientMessageId per sender
 *   {c:X}:devices      set of "<user>/<device>": the conversation's member devices
 *   {c:X}:p:<device>   sorted set msgId → seq: what that device has not acked yet
 *   {c:X}:rl:<connId>  hash tokens/ts: the connection's token bucket (time from Redis, shared by all Lambdas)
 */
const ADMIT = `
local function admit(key, rate, burst)
  if rate <= 0 then return true end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1]) or burst
  local ts = tonumber(state[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
  local allowed = tokens >= 1
  if allowed then tokens = tokens - 1 end
  redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('PEXPIRE', key, math.ceil(burst * 1000 / rate) + 1000)
  return allowed
end
`;

const scripts = {
  relayAdmit: {
    numberOfKeys: 1,
    lua: `${ADMIT}
if not admit(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])) then return 0 end
return 1`,
  },
  // KEYS: seq, idem, message, devices, rate. ARGV: rate, burst, msgId, senderDevice, payload, sentAt,
  // retention, maxPending, pendingPrefix.
  relayAppend: {
    numberOfKeys: 5,
    lua: `${ADMIT}
if not admit(KEYS[5], tonumber(ARGV[1]), tonumber(ARGV[2])) then return {'rate_limited'} end
local existing = redis.call('GET', KEYS[2])
if existing then return {'duplicate', existing} end
local retention = tonumber(ARGV[7])
local maxPending = tonumber(ARGV[8])
local seq = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[3], seq .. '\\n' .. ARGV[5], 'EX', retention)
redis.call('SET', KEYS[2], ARGV[3] .. '\\n' .. seq .. '\\n' .. ARGV[6], 'EX', retention)
for _, device in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  if device ~= ARGV[4] then
    local pending = ARGV[9] .. device
    redis.call('ZADD', pending, seq, ARGV[3])
    if redis.call('ZCARD', pending) > maxPending then
      redis.call('ZREMRANGEBYRANK', pending, 0, -maxPending - 1)
    end
    redis.call('EXPIRE', pending, retention)
  end
end
return {'stored', seq}`,
  },
  // KEYS: pending, rate. ARGV: rate, burst, ids...
  relayAck: {
    numberOfKeys: 2,
    lua: `${ADMIT}
if not admit(KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2])) then return -1 end
if #ARGV < 3 then return 0 end
return redis.call('ZREM', KEYS[1], unpack(ARGV, 3))`,
  },
  // KEYS: pending, rate. ARGV: rate, burst, afterSeq, limit, maxBytes, messagePrefix.
  // Walks the pending set in seq order, drops ids whose message expired, stops at limit or byte budget.
  relayPending: {
    numberOfKeys: 2,
    lua: `${ADMIT}
if not admit(KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2])) then return {-1} end
local limit = tonumber(ARGV[4])
local maxBytes = tonumber(ARGV[5])
local out = {0}
local bytes = 0
local cursor = '(' .. ARGV[3]
while true do
  local page = redis.call('ZRANGEBYSCORE', KEYS[1], cursor, '+inf', 'WITHSCORES', 'LIMIT', 0, limit + 1)
  if #page == 0 then return out end
  for i = 1, #page, 2 do
    cursor = '(' .. page[i + 1]
    local value = redis.call('GET', ARGV[6] .. page[i])
    if not value then
      redis.call('ZREM', KEYS[1], page[i])
    elseif #out - 1 >= limit or (#out > 1 and bytes + #value > maxBytes) then
      out[1] = 1
      return out
    else
      out[#out + 1] = value
      bytes = bytes + #value
    end
  end
end`,
  },
  // KEYS: devices. ARGV: userPrefix, pendingPrefix.
  relayForgetUser: {
    numberOfKeys: 1,
    lua: `
local removed = 0
for _, device in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if string.sub(device, 1, #ARGV[1]) == ARGV[1] then
    redis.call('SREM', KEYS[1], device)
    redis.call('DEL', ARGV[2] .. device)
    removed = removed + 1
  end
end
return removed`,
  },
} as const;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    relayAdmit(rate: string, ...args: string[]): Result<number, Context>;
    relayAppend(...args: string[]): Result<[string, string | number], Context>;
    relayAck(...args: string[]): Result<number, Context>;
    relayPending(...args: string[]): Result<(number | string)[], Context>;
    relayForgetUser(...args: string[]): Result<number, Context>;
  }
}

export type RedisConnection = Redis | Cluster;

export interface RedisStoreSettings {
  retentionSeconds: number;
  maxPendingPerDevice: number;
}

export class RedisMessageStore implements MessageStore {
  constructor(
    private readonly redis: RedisConnection,
    private readonly settings: RedisStoreSettings,
  ) {
    for (const [name, script] of Object.entries(scripts)) {
      redis.defineCommand(name, { numberOfKeys: script.numberOfKeys, lua: script.lua });
    }
  }

  async admit(conversationId: string, limit: RateLimit): Promise<boolean> {
    const k = keys(conversationId);
    const allowed = await this.run(() => this.redis.relayAdmit(k.rate(limit.connectionId), ...rateArgs(limit)));
    return allowed === 1;
  }

  async registerDevice(conversationId: string, device: Device): Promise<void> {
    await this.run(() => this.redis.sadd(keys(conversationId).devices, deviceKey(device)));
  }

  async forgetUser(conversationId: string, userId: string): Promise<void> {
    const k = keys(conversationId);
    await this.run(() => this.redis.relayForgetUser(k.devices, userPrefix(userId), k.pendingPrefix));
  }

  async append(message: StoredMessage, limit: RateLimit): Promise<AppendResult> {
    const k = keys(message.conversationId);
    const reply = await this.run(() =>
      this.redis.relayAppend(
        k.seq,
        k.idempotency(message.senderId, message.clientMessageId),
        k.message(message.messageId),
        k.devices,
        k.rate(limit.connectionId),
        ...rateArgs(limit),
        message.messageId,
        deviceKey({ userId: message.senderId, deviceId: message.senderDevice }),
        encodeStoredMessage(message),
        String(message.sentAt),
        String(this.settings.retentionSeconds),
        String(this.settings.maxPendingPerDevice),
        k.pendingPrefix,
      ),
    );
    const [status, value] = reply;
    if (status === 'rate_limited') return { status: 'rate_limited' };
    if (status === 'stored') return { status: 'stored', seq: Number(value) };
    const [messageId = '', seq = '0', sentAt = '0'] = String(value).split('\n');
    return { status: 'duplicate', messageId, seq: Number(seq), sentAt: Number(sentAt) };
  }

  async ack(conversationId: string, device: Device, messageIds: readonly string[], limit: RateLimit) {
    const k = keys(conversationId);
    const removed = await this.run(() =>
      this.redis.relayAck(k.pending(device), k.rate(limit.connectionId), ...rateArgs(limit), ...messageIds),
    );
    return removed < 0 ? ('rate_limited' as const) : ('ok' as const);
  }

  async pending(
    conversationId: string,
    device: Device,
    page: { afterSeq: number; limit: number; maxBytes: number },
    limit: RateLimit,
  ): Promise<PendingResult> {
    const k = keys(conversationId);
    const reply = await this.run(() =>
      this.redis.relayPending(
        k.pending(device),
        k.rate(limit.connectionId),
        ...rateArgs(limit),
        String(page.afterSeq),
        String(page.limit),
        String(page.maxBytes),
        k.messagePrefix,
      ),
    );
    const [flag, ...values] = reply;
    if (flag === -1) return { status: 'rate_limited' };
    const messages = values.map((value) => decodeStoredMessage(conversationId, String(value)));
    return { status: 'ok', messages, hasMore: flag === 1 };
  }

  async load(conversationId: string, messageId: string): Promise<StoredMessage | undefined> {
    const value = await this.run(() => this.redis.get(keys(conversationId).message(messageId)));
    return value === null ? undefined : decodeStoredMessage(conversationId, value);
  }

  /**
   * Connection trouble (refused, timed out, retries exhausted) and the server's own "busy" replies mean
   * `unavailable`; any other reply error is a bug in a script or its arguments and stays an internal error.
   */
  private async run<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (error) {
      if (error instanceof Error && error.name === 'ReplyError' && !TRANSIENT_REPLY.test(error.message)) throw error;
      throw new UnavailableError('the message store is unavailable', { cause: error });
    }
  }
}

const TRANSIENT_REPLY = /^(LOADING|BUSY|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|READONLY|OOM|NOREPLICAS)\b/;

function rateArgs(limit: RateLimit): [string, string] {
  return [String(limit.perSecond), String(limit.burst)];
}

function keys(conversationId: string) {
  const tag = `{c:${conversationId}}`;
  return {
    seq: `${tag}:seq`,
    devices: `${tag}:devices`,
    messagePrefix: `${tag}:m:`,
    pendingPrefix: `${tag}:p:`,
    message: (messageId: string) => `${tag}:m:${messageId}`,
    pending: (device: Device) => `${tag}:p:${deviceKey(device)}`,
    idempotency: (userId: string, clientMessageId: string) =>
      `${tag}:i:${encodeURIComponent(userId)}:${clientMessageId}`,
    rate: (connectionId: string) => `${tag}:rl:${connectionId}`,
  };
}

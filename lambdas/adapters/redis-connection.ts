import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Log } from '../ports.js';
import { RedisUnavailableError } from '../errors.js';

/**
 * How the adapters talk to Redis: a client that fails fast in both modes, a bound on every call, the one rule for
 * which errors mean "Redis is unavailable", and a log that repeats itself at most every 30 s.
 *
 * Redis is only a speed-up (DynamoDB is the record), so every caller has a fallback: a command must give up in
 * about two seconds rather than hold a Lambda until its own timeout.
 */

export type RedisConnection = Redis | Cluster;
export type RedisMode = 'standalone' | 'cluster';

const CONNECT_TIMEOUT_MS = 2000;
const COMMAND_TIMEOUT_MS = 2000;
/** Reconnection attempts after a loss, 200 ms apart and more up to 2 s (about 11 s in all), before giving up. */
export const RECONNECT_ATTEMPTS = 10;
/** A client that gave up is started again by the next call, at most this often. */
export const RECONNECT_ON_DEMAND_MS = 5000;
/** After a call outlived its deadline, every call on the same client goes straight to its fallback this long. */
export const MISSED_DEADLINE_PAUSE_MS = 1000;
/**
 * Redirections and retries a cluster command may take (MOVED, ASK, and TRYAGAIN / CLUSTERDOWN / a lost node
 * 100 ms apart): at most about 400 ms of retrying, well inside a caller's deadline, instead of 16 × 100 ms.
 */
const CLUSTER_MAX_REDIRECTIONS = 5;
const CLUSTER_RETRY_DELAY_MS = 100;

/** What runBounded knows of a client of connectRedis: whether it gave up reconnecting, and when it last missed a deadline. */
interface Health {
  gaveUp: boolean;
  lastDemandedAt: number;
  pausedUntil: number;
}
const healthOf = new WeakMap<RedisConnection, Health>();

/**
 * The reconnection delay after `times` failed attempts, or null to give up: a client that keeps retrying an
 * unreachable Redis spends a Lambda's idle time on it and logs every attempt. Once it gave up, the next call
 * starts it again (runBounded), so it comes back when Redis does, if anything still asks for it.
 */
function boundedReconnect(health: Health, attempts: number): (times: number) => number | null {
  return (times) => {
    if (times > attempts) {
      health.gaveUp = true;
      return null;
    }
    return Math.min(times * 200, 2000);
  };
}

/**
 * A client for `url` (`redis://` or `rediss://`, credentials in the URL) that fails fast.
 *
 * Standalone: lazy, so building a context opens nothing until the first command. The offline queue stays on so
 * that first command can wait for the connection, but no longer than `commandTimeout`, and a command is retried
 * on at most one reconnection (`maxRetriesPerRequest`).
 *
 * Cluster: connects at once and queues nothing (`enableOfflineQueue: false`): a command sent before the slots are
 * known, or while the cluster is reconnecting, fails at once and the caller falls back. Redirections and the
 * retries of TRYAGAIN / CLUSTERDOWN are bounded (CLUSTER_MAX_REDIRECTIONS). Auto-pipelining is off: during a slot
 * migration a pipeline mixing an ASK reply with other replies is not retried by ioredis, and the ASK would reach
 * the caller as an error.
 *
 * Both: reconnection gives up after RECONNECT_ATTEMPTS; connection errors are logged at most once per 30 s.
 */
export interface ConnectOptions {
  /** @default RECONNECT_ATTEMPTS */
  readonly reconnectAttempts?: number;
}

export function connectRedis(url: string, mode: RedisMode, log: Log, options: ConnectOptions = {}): RedisConnection {
  const attempts = options.reconnectAttempts ?? RECONNECT_ATTEMPTS;
  const perNode = {
    maxRetriesPerRequest: 1,
    connectTimeout: CONNECT_TIMEOUT_MS,
    commandTimeout: COMMAND_TIMEOUT_MS,
  } satisfies RedisOptions;
  const report = throttledLog((message, fields) => log.warn(message, fields));
  const onError = (error: Error) => report('redis connection error', { error: error.message });
  const health: Health = { gaveUp: false, lastDemandedAt: Number.NEGATIVE_INFINITY, pausedUntil: Number.NEGATIVE_INFINITY };
  const adopt = (client: RedisConnection) => {
    healthOf.set(client, health);
    client.on('ready', () => {
      health.gaveUp = false;
    });
    return client;
  };

  if (mode === 'cluster') {
    const parsed = new URL(url);
    const cluster = new Cluster([{ host: parsed.hostname, port: Number(parsed.port || 6379) }], {
      enableOfflineQueue: false,
      clusterRetryStrategy: boundedReconnect(health, attempts),
      slotsRefreshTimeout: CONNECT_TIMEOUT_MS,
      maxRedirections: CLUSTER_MAX_REDIRECTIONS,
      retryDelayOnTryAgain: CLUSTER_RETRY_DELAY_MS,
      retryDelayOnClusterDown: CLUSTER_RETRY_DELAY_MS,
      retryDelayOnFailover: CLUSTER_RETRY_DELAY_MS,
      // ElastiCache presents TLS certificates for its host names: connect to the names, not resolved addresses.
      dnsLookup: (address, callback) => callback(null, address),
      redisOptions: {
        ...perNode,
        ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
        ...(parsed.username === '' ? {} : { username: decodeURIComponent(parsed.username) }),
        ...(parsed.password === '' ? {} : { password: decodeURIComponent(parsed.password) }),
      },
    });
    cluster.on('error', onError);
    cluster.on('node error', onError);
    return adopt(cluster);
  }

  const redis = new Redis(url, {
    ...perNode,
    lazyConnect: true,
    enableAutoPipelining: true,
    retryStrategy: boundedReconnect(health, attempts),
  });
  redis.on('error', onError);
  return adopt(redis);
}

/**
 * Resolves true once the client is ready, false after `timeoutMs` (never rejects). Lets a caller that just built
 * a cluster client wait for its slot map instead of sending its first commands into `enableOfflineQueue: false`.
 */
export async function redisReady(redis: RedisConnection, timeoutMs: number): Promise<boolean> {
  if (redis.status === 'ready') return true;
  if (redis.status === 'wait' && redis instanceof Redis) redis.connect().catch(() => undefined);
  return await new Promise<boolean>((resolve) => {
    const done = (ready: boolean) => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      resolve(ready);
    };
    const onReady = () => done(true);
    const timer = setTimeout(() => done(false), timeoutMs);
    redis.on('ready', onReady);
  });
}

/**
 * Reply errors the server sends while it cannot serve (loading, busy script, cluster down or reconfiguring,
 * read-only replica, out of memory): Redis is unavailable, not wrong.
 */
const TRANSIENT_REPLY = /^(LOADING|BUSY|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|READONLY|OOM|NOREPLICAS)\b/;

/**
 * True when `error` means Redis cannot answer now (connection refused or closed, timeout, retries exhausted, a
 * transient reply). Any other reply error is a bug in a script or its arguments.
 */
export function isTransientRedisError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name !== 'ReplyError') return true;
  return TRANSIENT_REPLY.test(error.message);
}

/** Client states in which a command could only wait in the offline queue for a reconnection that may not come. */
const DOWN = new Set(['reconnecting', 'close', 'end']);

/**
 * Sends `command` unless the client is known to be down, and waits at most `ms` for it: whatever the client's
 * options, a caller learns within `ms` that Redis is unavailable (RedisUnavailableError) and can fall back.
 *
 * A call that outlives its deadline pauses every call on the same client for MISSED_DEADLINE_PAUSE_MS: a node
 * that stopped answering (frozen, or its network gone) is learnt of only by waiting, and a frame that makes
 * several Redis calls (rate limit, presence, seq cache) must wait once, not once per adapter. A client of
 * connectRedis that gave up reconnecting is started again here (at most every RECONNECT_ON_DEMAND_MS).
 */
export async function runBounded<T>(redis: RedisConnection, command: () => Promise<T>, ms: number): Promise<T> {
  const health = healthOf.get(redis);
  const now = Date.now();
  if (health !== undefined && redis.status === 'end' && health.gaveUp && now - health.lastDemandedAt >= RECONNECT_ON_DEMAND_MS) {
    health.lastDemandedAt = now;
    redis.connect().catch(() => undefined);
    throw new RedisUnavailableError('the redis client had given up reconnecting: reconnecting now');
  }
  if (DOWN.has(redis.status)) throw new RedisUnavailableError(`the redis client is ${redis.status}`);
  if (health !== undefined && now < health.pausedUntil) throw new RedisUnavailableError('redis missed a deadline just now');
  const call = command();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      if (health !== undefined) health.pausedUntil = Date.now() + MISSED_DEADLINE_PAUSE_MS;
      reject(new RedisUnavailableError(`redis did not answer within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([call, deadline]);
  } finally {
    clearTimeout(timer);
    // The call may still settle after the deadline: nobody is listening any more.
    call.catch(() => undefined);
  }
}

export const WARN_INTERVAL_MS = 30_000;

type LogWrite = (message: string, fields?: Record<string, unknown>) => void;

/**
 * `write`, at most once per `intervalMs`: while Redis is down every call fails, and a log line per call would
 * cost more than the outage.
 */
export function throttledLog(write: LogWrite, now: () => number = Date.now, intervalMs = WARN_INTERVAL_MS): LogWrite {
  let last = Number.NEGATIVE_INFINITY;
  return (message, fields) => {
    const at = now();
    if (at - last < intervalMs) return;
    last = at;
    write(message, fields);
  };
}

/**
 * After Redis failed, callers go straight to their fallback for `ms`: during an outage each command would
 * otherwise wait for its timeout. The first call after the pause tries Redis again, so recovery is automatic.
 */
export class RedisCoolOff {
  private until = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly ms: number,
    private readonly now: () => number = Date.now,
  ) {}

  get active(): boolean {
    return this.now() < this.until;
  }

  start(): void {
    this.until = this.now() + this.ms;
  }
}

/**
 * What may be logged about a Redis error: its class, errno code and the first word of a reply (WRONGTYPE, ERR),
 * never its message (which can quote keys and arguments).
 */
export function redisErrorFields(error: unknown): Record<string, string> {
  if (!(error instanceof Error)) return { error: typeof error };
  const fields: Record<string, string> = { error: error.name };
  const code = 'code' in error ? error.code : undefined;
  if (typeof code === 'string') fields.code = code;
  if (error.name === 'ReplyError') fields.reply = error.message.split(' ', 1)[0] ?? '';
  return fields;
}

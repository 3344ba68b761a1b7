import { Cluster, type Redis } from 'ioredis';
import type { Log } from '../ports.js';
import type { RedisConnection } from './redis-connection.js';

/**
 * A container reads the Redis credentials once, when its services are built. After a password rotation the old
 * password keeps working until the next one (handlers/redis-password-rotation.ts), but a container that lives
 * longer, or a password dropped by hand, would be refused on every reconnection: the first refusal re-reads the
 * secret and the client's next connections use what it says.
 */

/** Replies meaning the server refused the client's credentials (wrong or dropped password, disabled user). */
const REFUSED = /^(WRONGPASS|NOAUTH)\b/;

/** True for a refusal of the credentials, also when a cluster client reports it as the last error of its nodes. */
export function isCredentialsRefusal(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (REFUSED.test(error.message)) return true;
  const last: unknown = 'lastNodeError' in error ? error.lastNodeError : undefined;
  return last instanceof Error && REFUSED.test(last.message);
}

/** At most one re-read per container this often: a password that is wrong in the secret too must not flood it. */
export const CREDENTIALS_REREAD_INTERVAL_MS = 10_000;

export interface RereadOptions {
  now?: () => number;
  intervalMs?: number;
}

/**
 * On a refusal of `redis`'s credentials, reads the URL again (`readUrl`: the secret, never a cached value) and
 * gives its username and password to the client's next connections: the standalone client's own options, and for
 * a cluster every node client, present (`nodes`) and future (`+node`, emitted before the node connects). Resolves
 * nothing; failures to re-read are logged (without any of the value) and tried again after the interval.
 */
export function rereadCredentialsOnRefusal(redis: RedisConnection, readUrl: () => Promise<string>, log: Log, options: RereadOptions = {}): void {
  const now = options.now ?? Date.now;
  const intervalMs = options.intervalMs ?? CREDENTIALS_REREAD_INTERVAL_MS;
  let credentials: { username: string | undefined; password: string | undefined } | undefined;
  let lastReadAt = Number.NEGATIVE_INFINITY;
  let reading = false;

  const apply = (client: Redis) => {
    if (credentials === undefined) return;
    client.options.username = credentials.username;
    client.options.password = credentials.password;
  };
  /** What the client connects with now: the last re-read, else what connectRedis was given. */
  const known = () => credentials?.password ?? (redis instanceof Cluster ? redis.options.redisOptions?.password : redis.options.password);
  if (redis instanceof Cluster) redis.on('+node', apply);

  const onError = (error: unknown) => {
    if (!isCredentialsRefusal(error) || reading || now() - lastReadAt < intervalMs) return;
    reading = true;
    lastReadAt = now();
    readUrl()
      .then((url) => {
        const parsed = new URL(url);
        const next = {
          username: parsed.username === '' ? undefined : decodeURIComponent(parsed.username),
          password: parsed.password === '' ? undefined : decodeURIComponent(parsed.password),
        };
        const before = known();
        credentials = next;
        if (redis instanceof Cluster) {
          for (const node of redis.nodes('all')) apply(node);
        } else {
          apply(redis);
        }
        // Whether it changed, never what it is: an unchanged one means the secret itself is not what the user has.
        log.info('redis credentials re-read after a refusal', { changed: before !== next.password });
      })
      .catch((failure: unknown) => {
        log.warn('redis credentials could not be re-read', { error: failure instanceof Error ? failure.name : typeof failure });
      })
      .finally(() => {
        reading = false;
      });
  };
  redis.on('error', onError);
  if (redis instanceof Cluster) redis.on('node error', onError);
}

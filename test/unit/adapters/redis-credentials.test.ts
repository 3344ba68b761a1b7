import { Cluster, Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { isCredentialsRefusal, rereadCredentialsOnRefusal } from '../../../lambdas/adapters/redis-credentials.js';
import type { Log } from '../../../lambdas/ports.js';

/** Clients that never connect (lazy): the refusals are emitted by the test as ioredis would emit them. */
const lines: string[] = [];
const log: Log = {
  debug: () => undefined,
  info: (message, fields) => lines.push(JSON.stringify({ message, ...fields })),
  warn: (message, fields) => lines.push(JSON.stringify({ message, ...fields })),
  error: (message, fields) => lines.push(JSON.stringify({ message, ...fields })),
};
const opened: (Redis | Cluster)[] = [];
const refusal = () => Object.assign(new Error('WRONGPASS invalid username-password pair or user is disabled.'), { name: 'ReplyError' });
const settle = () => new Promise((resolve) => setTimeout(resolve, 10));

function standalone(password: string): Redis {
  const client = new Redis({ host: '127.0.0.1', port: 1, username: 'relay-app', password, lazyConnect: true });
  opened.push(client);
  return client;
}

afterEach(() => {
  for (const client of opened.splice(0)) client.disconnect();
  lines.length = 0;
});

describe('isCredentialsRefusal', () => {
  it('knows WRONGPASS and NOAUTH, also as the last node error of a cluster, and nothing else', () => {
    expect(isCredentialsRefusal(refusal())).toBe(true);
    expect(isCredentialsRefusal(new Error('NOAUTH Authentication required.'))).toBe(true);
    expect(isCredentialsRefusal(Object.assign(new Error('Failed to refresh slots cache.'), { lastNodeError: refusal() }))).toBe(true);
    expect(isCredentialsRefusal(new Error('connect ECONNREFUSED 127.0.0.1:6379'))).toBe(false);
    expect(isCredentialsRefusal(new Error('NOPERM this user has no permissions'))).toBe(false);
    expect(isCredentialsRefusal('WRONGPASS')).toBe(false);
  });
});

describe('rereadCredentialsOnRefusal', () => {
  it('gives a standalone client the re-read password for its next connections, and logs none of it', async () => {
    const client = standalone('old-password-aaaaaaaaaaaaaaaa');
    let reads = 0;
    rereadCredentialsOnRefusal(client, () => Promise.resolve(`rediss://relay-app:${encodeURIComponent('new/pass:word-bbbbbbbbbbbb')}@cache:6379`).finally(() => (reads += 1)), log);
    client.emit('error', new Error('connect ECONNREFUSED'));
    await settle();
    expect(reads).toBe(0);
    client.emit('error', refusal());
    await settle();
    expect(reads).toBe(1);
    expect(client.options.password).toBe('new/pass:word-bbbbbbbbbbbb');
    expect(client.options.username).toBe('relay-app');
    expect(lines).toEqual([JSON.stringify({ message: 'redis credentials re-read after a refusal', changed: true })]);
    expect(lines.join('')).not.toMatch(/pass|aaaa|bbbb/);
  });

  it('re-reads at most once per interval, and once at a time', async () => {
    let now = 0;
    let reads = 0;
    const client = standalone('old-password-aaaaaaaaaaaaaaaa');
    rereadCredentialsOnRefusal(client, async () => {
      reads += 1;
      await settle();
      return 'redis://relay-app:same-password-cccccccccccc@cache:6379';
    }, log, { now: () => now, intervalMs: 10_000 });
    client.emit('error', refusal());
    client.emit('error', refusal());
    await settle();
    await settle();
    now = 9_999;
    client.emit('error', refusal());
    await settle();
    expect(reads).toBe(1);
    now = 10_000;
    client.emit('error', refusal());
    await settle();
    await settle();
    expect(reads).toBe(2);
    // The second read found what the client already had.
    expect(lines.at(-1)).toBe(JSON.stringify({ message: 'redis credentials re-read after a refusal', changed: false }));
  });

  it('logs a failed re-read by its error name only and tries again after the interval', async () => {
    let now = 0;
    const client = standalone('old-password-aaaaaaaaaaaaaaaa');
    let fail = true;
    rereadCredentialsOnRefusal(client, () => (fail ? Promise.reject(Object.assign(new Error('secret leaky-value'), { name: 'SecretError' })) : Promise.resolve('redis://relay-app:fresh-password-dddddddddd@cache:6379')), log, {
      now: () => now,
      intervalMs: 1_000,
    });
    client.emit('error', refusal());
    await settle();
    expect(lines).toEqual([JSON.stringify({ message: 'redis credentials could not be re-read', error: 'SecretError' })]);
    expect(client.options.password).toBe('old-password-aaaaaaaaaaaaaaaa');
    fail = false;
    now = 1_000;
    client.emit('error', refusal());
    await settle();
    expect(client.options.password).toBe('fresh-password-dddddddddd');
  });

  it('gives the node clients a cluster creates after a refusal the re-read password (they connect only after +node)', async () => {
    const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true, redisOptions: { username: 'relay-app', password: 'old-password-aaaaaaaaaaaaaaaa' } });
    opened.push(cluster);
    rereadCredentialsOnRefusal(cluster, () => Promise.resolve('rediss://relay-app:new-password-eeeeeeeeeeee@cache:6379'), log);
    const before = standalone('old-password-aaaaaaaaaaaaaaaa');
    cluster.emit('+node', before);
    // Nothing re-read yet: a new node keeps what connectRedis gave it.
    expect(before.options.password).toBe('old-password-aaaaaaaaaaaaaaaa');
    cluster.emit('node error', refusal(), '127.0.0.1:7000');
    await settle();
    expect(lines).toEqual([JSON.stringify({ message: 'redis credentials re-read after a refusal', changed: true })]);
    const later = standalone('old-password-aaaaaaaaaaaaaaaa');
    cluster.emit('+node', later);
    expect(later.options.password).toBe('new-password-eeeeeeeeeeee');
  });
});

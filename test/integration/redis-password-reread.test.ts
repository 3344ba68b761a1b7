import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { Redis } from 'ioredis';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, redisReady, type RedisConnection } from '../../lambdas/adapters/redis-connection.js';
import { rereadCredentialsOnRefusal } from '../../lambdas/adapters/redis-credentials.js';
import { Scope } from '../../lambdas/context/lazy.js';
import { redisHelpers } from '../../lambdas/context/redis.js';
import { probeAuth } from '../../lambdas/handlers/redis-password-rotation.js';
import type { Log } from '../../lambdas/ports.js';
import { REDIS_APP_ACCESS, REDIS_APP_USER } from '../../lib/redis.js';
import { spawnRedis, type SpawnedRedis } from '../../local/redis-server.js';
import { startRedisCluster, type RedisClusterHarness } from '../support/redis-cluster.js';

/**
 * After a rotation dropped the password a warm container still holds (ACL SETUSER resetpass on a real
 * redis-server, and its connections killed, as a restart or a failover would), the container's client is refused,
 * re-reads the secret (aws-sdk-client-mock) and works again, without a new container.
 */
const OLD = 'old-password-0123456789abcdefghijklmnop';
const NEW = 'new-password-qrstuvwxyz9876543210ABCDEF';
const SECRET_ID = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:RedisAuthSecret-AbCdEf';
const secrets = mockClient(SecretsManagerClient);
const env = { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' };
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const lines: string[] = [];
const log: Log = {
  debug: () => undefined,
  info: (message, fields) => lines.push(JSON.stringify({ message, ...fields })),
  warn: (message, fields) => lines.push(JSON.stringify({ message, ...fields })),
  error: (message, fields) => lines.push(JSON.stringify({ message, ...fields })),
};
let secretPassword = OLD;

/** Sets the app user's only password on `url`'s server and closes the user's connections. */
async function setPassword(url: string, password: string, options: { kill: boolean }): Promise<void> {
  const admin = new Redis(url);
  try {
    await admin.call('ACL', 'SETUSER', REDIS_APP_USER, 'reset', `>${password}`, ...REDIS_APP_ACCESS.split(' '));
    if (options.kill) await admin.call('CLIENT', 'KILL', 'USER', REDIS_APP_USER);
  } finally {
    admin.disconnect();
  }
}

/** Tries `call` every 100 ms until it works; the time it took, or a failure after `ms`. */
async function worksWithin(ms: number, call: () => Promise<unknown>): Promise<number> {
  const started = Date.now();
  for (;;) {
    try {
      await call();
      return Date.now() - started;
    } catch (error) {
      if (Date.now() - started > ms) throw error;
      await sleep(100);
    }
  }
}

beforeAll(() => {
  secrets.on(GetSecretValueCommand, { SecretId: SECRET_ID }).callsFake(() => ({ SecretString: JSON.stringify({ username: REDIS_APP_USER, password: secretPassword }) }));
});

afterAll(() => secrets.reset());

describe('a standalone Redis (the context of a route, credentials from REDIS_AUTH_SECRET_ID)', () => {
  let server: SpawnedRedis;
  const scope = new Scope();

  beforeAll(async () => {
    server = await spawnRedis();
    await setPassword(server.url, OLD, { kill: false });
  });

  afterAll(async () => {
    await scope.close();
    await server.stop();
  });

  it('re-reads the secret after WRONGPASS and reconnects with the new password', async () => {
    secretPassword = OLD;
    const helpers = await redisHelpers(
      { AWS_REGION: 'us-east-1', REDIS_URL: server.url, REDIS_AUTH_SECRET_ID: SECRET_ID, REDIS_MODE: 'standalone' },
      scope,
      env,
      log,
    );
    const redis = helpers.connection;
    if (redis === undefined) throw new Error('no connection');
    await redis.set('k', 'before');
    const reads = secrets.commandCalls(GetSecretValueCommand).length;

    // The rotation's next setSecret dropped OLD; the secret says NEW.
    secretPassword = NEW;
    await setPassword(server.url, NEW, { kill: true });
    const took = await worksWithin(10_000, () => redis.get('k'));
    expect(await redis.get('k')).toBe('before');
    expect(secrets.commandCalls(GetSecretValueCommand).length).toBe(reads + 1);
    expect(took).toBeLessThan(10_000);
    expect(lines).toContain(JSON.stringify({ message: 'redis credentials re-read after a refusal', changed: true }));
    expect(lines.join('')).not.toContain('password-');
  });

  it('probeAuth (testSecret) connects with a password the user has and is refused one it does not', async () => {
    await setPassword(server.url, NEW, { kill: false });
    await expect(probeAuth(server.url, { username: REDIS_APP_USER, password: NEW })).resolves.toBeUndefined();
    await expect(probeAuth(server.url, { username: REDIS_APP_USER, password: OLD })).rejects.toThrow(/WRONGPASS/);
  });
});

describe('a Redis Cluster (connectRedis in cluster mode, as on ElastiCache Serverless)', () => {
  let cluster: RedisClusterHarness;
  let redis: RedisConnection;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    for (const node of cluster.nodes) await setPassword(`redis://${node.host}:${node.port}`, OLD, { kill: false });
  });

  afterAll(async () => {
    redis?.disconnect();
    await cluster?.stop();
  });

  it('re-reads the secret after WRONGPASS and its new node connections use the new password', async () => {
    secretPassword = OLD;
    lines.length = 0;
    let reads = 0;
    const { hostname, port } = new URL(cluster.url);
    redis = connectRedis(`redis://${REDIS_APP_USER}:${OLD}@${hostname}:${port}`, 'cluster', log);
    rereadCredentialsOnRefusal(redis, () => {
      reads += 1;
      return Promise.resolve(`redis://${REDIS_APP_USER}:${secretPassword}@${hostname}:${port}`);
    }, log);
    expect(await redisReady(redis, 5_000)).toBe(true);
    await redis.set('{k}1', 'before');

    secretPassword = NEW;
    for (const node of cluster.nodes) await setPassword(`redis://${node.host}:${node.port}`, NEW, { kill: true });
    await worksWithin(15_000, () => redis.get('{k}1'));
    expect(await redis.get('{k}1')).toBe('before');
    expect(reads).toBe(1);
    expect(lines).toContain(JSON.stringify({ message: 'redis credentials re-read after a refusal', changed: true }));
  });
});

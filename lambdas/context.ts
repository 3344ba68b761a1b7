import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { Cluster, Redis } from 'ioredis';
import { DynamoMembershipStore } from './adapters/dynamo-members.js';
import { DynamoConnectionRegistry } from './adapters/dynamo-registry.js';
import { createLog } from './adapters/log.js';
import { fromEnv } from '@aws-sdk/credential-provider-env';
import { ManagementApiPoster } from './adapters/management-poster.js';
import { MemoryMessageStore } from './adapters/memory-message-store.js';
import { RedisMessageStore, type RedisConnection } from './adapters/redis-message-store.js';
import { SqsFanoutQueue } from './adapters/sqs-fanout-queue.js';
import { TokenVerifier } from './auth.js';
import { loadConfig, type Config } from './config.js';
import type { Services } from './domain/services.js';
import { MessageCipher } from './encryption.js';
import { SecretError, appKeysFrom, type AppKeys } from './secret.js';

export { SecretError };
import type { Clock, ConnectionPoster } from './ports.js';

/**
 * The shared context: config, keys, the auth client and every service client, built lazily, once per
 * container, and complete — its type has no optional member for anything a handler needs.
 */
export interface AppContext extends Services {
  config: Config;
  /** Releases connections (tests, the dev server's shutdown). Lambda containers never call it. */
  close(): Promise<void>;
}

async function readSecret(config: Config): Promise<AppKeys> {
  if (config.APP_SECRET_ID === undefined) return appKeysFrom(config.APP_SECRET_JSON ?? '');
  const value = await secretsProvider(config).get(config.APP_SECRET_ID);
  return appKeysFrom(value);
}

async function readRedisUrl(config: Config): Promise<string> {
  if (config.REDIS_URL !== undefined) return config.REDIS_URL;
  const id = config.REDIS_URL_SECRET_ID ?? '';
  const value = await secretsProvider(config).get(id);
  if (typeof value !== 'string' || value === '') throw new SecretError('the Redis URL secret is empty');
  return value;
}

function secretsProvider(config: Config): SecretsProvider {
  return new SecretsProvider({
    clientConfig: {
      region: config.AWS_REGION,
      ...(config.SECRETS_ENDPOINT === undefined ? {} : { endpoint: config.SECRETS_ENDPOINT }),
    },
  });
}

function connectRedis(url: string, mode: Config['REDIS_MODE']): RedisConnection {
  // Fail fast when Redis is down: a frame answers `unavailable` instead of hanging until the Lambda times out.
  const options = {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: 2000,
    enableAutoPipelining: true,
  };
  if (mode === 'cluster') {
    const parsed = new URL(url);
    return new Cluster([{ host: parsed.hostname, port: Number(parsed.port || 6379) }], {
      dnsLookup: (address, callback) => callback(null, address),
      slotsRefreshTimeout: 2000,
      redisOptions: {
        ...options,
        ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
        ...(parsed.password === '' ? {} : { password: decodeURIComponent(parsed.password) }),
        ...(parsed.username === '' ? {} : { username: decodeURIComponent(parsed.username) }),
      },
    });
  }
  return new Redis(url, options);
}

export async function buildContext(env: NodeJS.ProcessEnv = process.env): Promise<AppContext> {
  const config = loadConfig(env);
  const log = createLog(config.LOG_LEVEL);
  const clock: Clock = { now: () => Date.now() };
  const [secret, redisUrl] = await Promise.all([readSecret(config), readRedisUrl(config)]);

  const dynamo = DynamoDBDocumentClient.from(
    new DynamoDBClient({
      region: config.AWS_REGION,
      maxAttempts: 4,
      ...(config.DYNAMODB_ENDPOINT === undefined ? {} : { endpoint: config.DYNAMODB_ENDPOINT }),
    }),
    { marshallOptions: { removeUndefinedValues: true } },
  );
  const sqs = new SQSClient({
    region: config.AWS_REGION,
    ...(config.SQS_ENDPOINT === undefined ? {} : { endpoint: config.SQS_ENDPOINT }),
  });
  const storeSettings = { retentionSeconds: config.RETENTION_SECONDS, maxPendingPerDevice: config.MAX_PENDING_PER_DEVICE };
  let redis: RedisConnection | undefined;
  let store: Services['store'];
  if (redisUrl.startsWith('memory:')) {
    store = new MemoryMessageStore(storeSettings, clock);
  } else {
    redis = connectRedis(redisUrl, config.REDIS_MODE);
    // ioredis reports connection trouble as events; the commands themselves reject and answer `unavailable`.
    redis.on('error', (error: Error) => log.warn('redis connection error', { error: error.message }));
    store = new RedisMessageStore(redis, storeSettings);
  }

  const posters = new Map<string, ManagementApiPoster>();
  const posterFor = (endpoint: string): ConnectionPoster => {
    let poster = posters.get(endpoint);
    if (poster === undefined) {
      poster = new ManagementApiPoster({
        endpoint,
        region: config.AWS_REGION,
        // Lambda puts the function role's credentials in the environment (the local backend puts dummies there).
        credentials: fromEnv(),
        maxSockets: Math.max(config.POST_CONCURRENCY, 16),
        onFailure: (failure) => log.warn('post to connection failed', { ...failure }),
      });
      posters.set(endpoint, poster);
    }
    return poster;
  };

  const auth = new TokenVerifier({
    hmacSecret: secret.jwtSecret,
    jwksUrl: config.JWT_JWKS_URL,
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
  });

  return {
    config,
    settings: {
      ratePerSecond: config.RATE_LIMIT_PER_SECOND,
      rateBurst: config.RATE_LIMIT_BURST,
      fanoutThreshold: config.FANOUT_THRESHOLD,
      fanoutBatchSize: config.FANOUT_BATCH_SIZE,
      postConcurrency: config.POST_CONCURRENCY,
      connectionTtlSeconds: config.CONNECTION_TTL_SECONDS,
      originAllowList: config.ORIGIN_ALLOW_LIST,
    },
    registry: new DynamoConnectionRegistry(dynamo, config.CONNECTIONS_TABLE, clock),
    members: new DynamoMembershipStore(dynamo, config.MEMBERS_TABLE),
    store,
    fanout: new SqsFanoutQueue(sqs, config.FANOUT_QUEUE_URL),
    sealer: new MessageCipher(secret.masterKey),
    clock,
    log,
    auth,
    posterFor,
    newMessageId: () => randomUUID(),
    close: async () => {
      redis?.disconnect();
      dynamo.destroy();
      sqs.destroy();
      for (const poster of posters.values()) poster.destroy();
      posters.clear();
    },
  };
}

let building: Promise<AppContext> | undefined;

/**
 * The container's context. Concurrent first calls share one build; a failed build is not kept, so the next
 * invocation tries again (a secret fixed after a cold start needs no restart).
 */
export function getContext(): Promise<AppContext> {
  if (building === undefined) {
    const attempt = buildContext().catch((error: unknown) => {
      if (building === attempt) building = undefined;
      throw error;
    });
    building = attempt;
  }
  return building;
}

/** Drops (and closes) the cached context, so the next getContext() builds anew from the environment. */
export async function resetContext(): Promise<void> {
  const current = building;
  building = undefined;
  if (current === undefined) return;
  try {
    await (await current).close();
  } catch {
    // A context that never built has nothing to close.
  }
}

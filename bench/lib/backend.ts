import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoConnectionRegistry } from '../../lambdas/adapters/dynamo-registry.js';
import type { ConnectionRecord } from '../../lambdas/ports.js';
import { appKeysFrom } from '../../lambdas/secret.js';
import { startLocalBackend, type LocalBackend, type LocalBackendOptions } from '../../local/backend.js';
import { signToken } from '../../local/tokens.js';
import { sleep } from './limit.js';
import { createLog } from '../../lambdas/adapters/log.js';
import { NoMetrics } from '../../lambdas/adapters/metrics.js';
import { loadConfig } from '../../lambdas/config.js';
import { documentClient } from '../../lambdas/context/dynamo.js';
import { Scope } from '../../lambdas/context/lazy.js';
import { postersFor } from '../../lambdas/context/posters.js';
import { redisHelpers } from '../../lambdas/context/redis.js';
import { systemClock } from '../../lambdas/context/settings.js';
import { devicePositions, messageLog } from '../../lambdas/context/store.js';
import { benchSeams, type Seamed } from './whatif.js';

/**
 * The real adapters behind the bench's seams, built from the backend's own environment with the same builders
 * the routes use (lambdas/context/*): the registry, the message log and the positions on one document client,
 * the rate limiter and the seq cache on one Redis connection (or in process without Redis), the posters.
 */
async function realServices(env: Readonly<Record<string, string>>, scope: Scope): Promise<Seamed> {
  // `ack` reads every table and Redis variable these need; `sendMessage` adds the posting settings.
  const config = loadConfig('ack', env);
  const posting = loadConfig('sendMessage', env);
  const log = createLog(config.LOG_LEVEL);
  const db = documentClient(config, scope, env);
  const { limiter, seqCache } = await redisHelpers(config, scope, env, log);
  return {
    registry: new DynamoConnectionRegistry(db, config.CONNECTIONS_TABLE, systemClock),
    messages: messageLog(config, db),
    positions: devicePositions(config, db),
    limiter,
    seqCache,
    posterFor: postersFor(posting, scope, env, log, new NoMetrics()),
  };
}

/** The handlers' environment for benchmarks: quiet logs, and a rate limit no benchmark frame should meet. */
export const BENCH_ENV: Readonly<Record<string, string>> = {
  LOG_LEVEL: 'SILENT',
  RATE_LIMIT_PER_SECOND: '1000000',
  RATE_LIMIT_BURST: '1000000',
  // The per-user bucket (across a user's connections) too: one bench user sends far more than 40 frames a second.
  RATE_LIMIT_USER_PER_SECOND: '1000000',
  RATE_LIMIT_USER_BURST: '1000000',
  // Fan-out budgets no benchmark should meet either: a fan-out scenario posts to thousands of connections.
  FANOUT_BUDGET_CONVERSATION_PER_SECOND: '100000000',
  FANOUT_BUDGET_SENDER_PER_SECOND: '100000000',
};

export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

/** The local backend (real handlers behind the gateway emulator) plus what the benchmarks need around it. */
export class BenchBackend {
  readonly db: DynamoDBDocumentClient;
  /** What the bench's own adapters opened. */
  private readonly scope = new Scope();
  readonly registry: DynamoConnectionRegistry;
  private readonly jwtSecret: Uint8Array;

  private constructor(readonly backend: LocalBackend) {
    this.db = DynamoDBDocumentClient.from(
      new DynamoDBClient({ endpoint: backend.dynamodbEndpoint, region: 'us-east-1', credentials: LOCAL_CREDENTIALS }),
    );
    this.registry = new DynamoConnectionRegistry(this.db, backend.tables.connections, { now: () => Date.now() });
    this.jwtSecret = appKeysFrom(backend.env.APP_SECRET_JSON ?? '').jwtSecret;
  }

  /**
   * Starts the local backend with the bench's seams given to every route (registry, message log, positions,
   * limiter, seq cache and posters are delegates: see lib/whatif.ts), then installs behind them the real
   * adapters, built as the routes build them.
   */
  static async start(options: LocalBackendOptions = {}): Promise<BenchBackend> {
    const backend = await startLocalBackend({
      ...options,
      env: { ...BENCH_ENV, ...options.env },
      services: { ...benchSeams.services, ...options.services },
    });
    const bench = new BenchBackend(backend);
    try {
      benchSeams.install(await realServices(backend.env, bench.scope));
    } catch (error) {
      await bench.close();
      throw error;
    }
    return bench;
  }

  /** Adds members with BatchWriteItem (25 a request); unprocessed items are retried a bounded number of times. */
  async addMembers(conversationId: string, userIds: readonly string[]): Promise<void> {
    for (let start = 0; start < userIds.length; start += 25) {
      let requests: { PutRequest: { Item: Record<string, unknown> } }[] = userIds
        .slice(start, start + 25)
        .map((userId) => ({ PutRequest: { Item: { conversationId, userId, sinceSeq: 0, addedAt: Date.now() } } }));
      for (let attempt = 0; attempt < 10 && requests.length > 0; attempt += 1) {
        const result = await this.db.send(
          new BatchWriteCommand({ RequestItems: { [this.backend.tables.members]: requests } }),
        );
        requests = (result.UnprocessedItems?.[this.backend.tables.members] ?? []).flatMap((r) =>
          r.PutRequest?.Item === undefined ? [] : [{ PutRequest: { Item: r.PutRequest.Item } }],
        );
        if (requests.length > 0) await sleep(20 * (attempt + 1));
      }
      if (requests.length > 0) throw new Error('dynalite left members unprocessed');
    }
  }

  async token(userId: string): Promise<string> {
    return signToken(this.jwtSecret, userId, { ttlSeconds: 3600 });
  }

  async connectUrl(conversationId: string, userId: string, deviceId: string): Promise<string> {
    const token = await this.token(userId);
    return `${this.backend.url}?${new URLSearchParams({ token, conversationId, clientId: deviceId }).toString()}`;
  }

  listConnections(conversationId: string): Promise<ConnectionRecord[]> {
    return this.registry.listByConversation(conversationId);
  }

  async close(): Promise<void> {
    this.db.destroy();
    await this.backend.close();
    await this.scope.close();
  }
}

let unique = 0;
/** Ids unique within a bench run (conversations, client message ids). */
export function uniqueId(prefix: string): string {
  unique += 1;
  return `${prefix}-${Date.now().toString(36)}-${unique}`;
}

import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { tableShapes, type TableName, type TableNames } from '../deploy/tables.js';
import { fanoutWorker, notifier, presenceSweeper, routes } from '../deploy/routes.js';
import { startLocalGateway, type LocalGatewayOptions, type RouteHandler, type RouteTable } from './gateway.js';
import { resolveRedis, startDynalite, startSqsServer, type RunningService } from './services.js';
import { lazyServices, Scope, type Route } from '../lambdas/context/lazy.js';
import type { Services } from '../lambdas/ports.js';
import { MemoryPresence } from '../lambdas/adapters/memory-presence.js';
import { MemoryFanoutBudget } from '../lambdas/adapters/memory-fanout-budget.js';
import { MemoryRateLimiter } from '../lambdas/adapters/memory-rate-limiter.js';
import { loadConfig, loadMembershipLimit, type FunctionName } from '../lambdas/config.js';
import { presenceTimings } from '../lambdas/context/presence.js';
import { fanoutBudgetSettings } from '../lambdas/context/settings.js';
import { startSqsPoller } from './sqs-poller.js';
import { ensureTables } from './tables.js';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoMembershipStore } from '../lambdas/adapters/dynamo-members.js';
import { DynamoMessageLog } from '../lambdas/adapters/dynamo-message-log.js';
import { appKeysFrom } from '../lambdas/secret.js';
import { ensureMember } from './members.js';
import { newDevSecretJson } from './dev-state.js';
import { webPage, type WebPagePush } from './web/server.js';
import { pushJsonLineLog, startLocalPushService, type LocalPushService } from './push-service.js';
import { generateVapidKeys } from '../lambdas/adapters/web-push-sender.js';


export interface LocalBackendOptions {
  port?: number;
  host?: string;
  stage?: string;
  /** Use this DynamoDB (e.g. a shared dynalite) instead of starting one in process. */
  dynamodbEndpoint?: string;
  /** Use this SQS endpoint instead of starting fauxqs in process. */
  sqsEndpoint?: string;
  /**
   * `redis://…` (with `env.REDIS_MODE=cluster` for a cluster), or `none` to run without Redis (rate limits in
   * process, no seq cache); unset = spawn redis-server, else none. Messages live in DynamoDB either way.
   */
  redisUrl?: string;
  /** Extra environment for the handlers' config (rate limits, thresholds, secrets…). */
  env?: Record<string, string>;
  /**
   * Environment of one function over `env` (e.g. its own access key id, so a proxy can tell which function made
   * a call, as IAM tells roles apart).
   */
  functionEnv?: (name: FunctionName) => Record<string, string>;
  /** Gateway limits and timeouts (tests shorten them). */
  gateway?: Pick<
    LocalGatewayOptions,
    'idleTimeoutMs' | 'maxConnectionMs' | 'maxFrameBytes' | 'maxMessageBytes' | 'maxPostBytes' | 'log' | 'managementDelayMs' | 'headersTimeoutMs' | 'requestTimeoutMs' | 'handshakeTimeoutMs'
  >;
  /** Visibility timeout of the local fan-out and notify queues, seconds. */
  visibilityTimeoutSeconds?: number;
  maxReceiveCount?: number;
  onWorkerError?: (error: unknown) => void;
  /**
   * Services given to every route instead of being built from the environment (instruments for the bench,
   * fakes for a fault test). Each route takes the members it uses.
   */
  services?: Partial<Services>;
  /**
   * Serve the chat page at `/` and its dev endpoints (`GET /dev/token?user=`, `POST /dev/join?user=&conversation=`)
   * on the gateway's port. Local only: no stage has them.
   */
  web?: boolean;
}

export interface LocalBackend {
  url: string;
  managementEndpoint: string;
  port: number;
  stage: string;
  dynamodbEndpoint: string;
  sqsEndpoint: string;
  /** Empty without Redis. */
  redisUrl: string;
  redisKind: 'external' | 'spawned' | 'none';
  tables: TableNames;
  queueUrl: string;
  dlqUrl: string;
  /** The notifier's queue (one job per stored message) and its dead-letter queue. */
  notifyQueueUrl: string;
  notifyDlqUrl: string;
  /** The VAPID public key Web Push subscriptions must be made with (`applicationServerKey`). */
  vapidPublicKey: string;
  /** With `web: true`, the local push service the page's subscriptions come from. */
  pushService: LocalPushService | undefined;
  /** The environment the handlers are built from (what a Lambda would get); change it, then restart the functions. */
  env: Record<string, string>;
  /**
   * Each function by its manifest name, invoked directly as `aws lambda invoke` would: the same handler and
   * services the gateway and the queue poller call.
   */
  functions: Readonly<Record<string, (event: unknown) => Promise<unknown>>>;
  /** Drops a socket without running `$disconnect` (see LocalGateway.loseConnection). */
  loseConnection(connectionId: string): boolean;
  /** Ids of the connections open now. */
  connectionIds(): string[];
  /** Cold-starts every function, as a redeploy would: each builds its services again, from `env`, on its next event. */
  restartFunctions(): Promise<void>;
  close(): Promise<void>;
}

/** A handler module of the manifest: its `route` is built here with the local environment and services. */
async function loadRoute(entry: string): Promise<Route<object, (event: never) => Promise<unknown>>> {
  const module: { route?: unknown } = await import(pathToFileURL(resolve(entry)).href);
  const route = module.route;
  if (typeof route !== 'object' || route === null || !('build' in route) || !('create' in route)) {
    throw new TypeError(`${entry} does not export a route`);
  }
  // Each module types its own route; here they are all driven the same way: build(env, scope, given) → create.
  return route as Route<object, (event: never) => Promise<unknown>>;
}
/** Runs `sweep` every `intervalMs` (never two at once) until stopped; stopping waits for a sweep under way. */
function startSweeping(sweep: () => Promise<unknown>, intervalMs: number): Pick<RunningService, 'stop'> {
  let stopped = false;
  let running: Promise<unknown> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  const tick = () => {
    running = sweep()
      .catch(() => undefined)
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, intervalMs);
      });
  };
  timer = setTimeout(tick, intervalMs);
  return {
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

/** A queue and its dead-letter queue (after `maxReceiveCount` receives), as the stack makes them. */
async function createQueueWithDlq(
  sqs: SQSClient,
  name: string,
  options: { visibilityTimeoutSeconds: number; maxReceiveCount: number },
): Promise<{ queueUrl: string; queueArn: string; dlqUrl: string }> {
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }));
  const dlqUrl = dlq.QueueUrl ?? '';
  const dlqAttributes = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }));
  const queue = await sqs.send(
    new CreateQueueCommand({
      QueueName: name,
      Attributes: {
        VisibilityTimeout: String(options.visibilityTimeoutSeconds),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqAttributes.Attributes?.QueueArn, maxReceiveCount: String(options.maxReceiveCount) }),
      },
    }),
  );
  const queueUrl = queue.QueueUrl ?? '';
  const attributes = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));
  return { queueUrl, queueArn: attributes.Attributes?.QueueArn ?? '', dlqUrl };
}

function vapidPublicKeyOf(json: string): string {
  const parsed: unknown = JSON.parse(json);
  return typeof parsed === 'object' && parsed !== null && 'publicKey' in parsed && typeof parsed.publicKey === 'string' ? parsed.publicKey : '';
}

/** The worker's answer, checked like Lambda checks a partial batch response. */
function batchResponse(value: unknown): SQSBatchResponse {
  if (typeof value !== 'object' || value === null || !('batchItemFailures' in value) || !Array.isArray(value.batchItemFailures)) {
    throw new TypeError('the fan-out worker did not return a batch response');
  }
  return {
    batchItemFailures: value.batchItemFailures.flatMap((item: unknown) =>
      typeof item === 'object' && item !== null && 'itemIdentifier' in item && typeof item.itemIdentifier === 'string'
        ? [{ itemIdentifier: item.itemIdentifier }]
        : [],
    ),
  };
}

/** The web page's handler, with the DynamoDB client its `/dev/join` adds members through. */
function webPageOf(dynamodbEndpoint: string, tables: TableNames, secretJson: string, maxMembers: number, url: () => string, push: WebPagePush) {
  const db = DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint: dynamodbEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }),
  );
  const services = { members: new DynamoMembershipStore(db, tables.members), messages: new DynamoMessageLog(db, tables, { now: () => Date.now() }) };
  return {
    http: webPage({ jwtSecret: appKeysFrom(secretJson).jwtSecret, url, join: (conversationId, userId) => ensureMember(services, conversationId, userId, maxMembers), push }),
    stop: async () => db.destroy(),
  };
}

/**
 * The whole backend on one machine: dynalite, a local SQS server feeding the fan-out worker, Redis (or its
 * twin), and the API Gateway emulator running the real handler modules from the same route table the stack
 * uses. Each route's services are built from this backend's own environment (never process.env), so several
 * backends can run in one process.
 */
export async function startLocalBackend(options: LocalBackendOptions = {}): Promise<LocalBackend> {
  const stage = options.stage ?? 'local';
  const started: Pick<RunningService, 'stop'>[] = [];
  const stopAll = async () => {
    for (const service of started.reverse()) await service.stop().catch(() => undefined);
  };
  try {
    const dynamo = options.dynamodbEndpoint === undefined ? await startDynalite() : undefined;
    if (dynamo !== undefined) started.push(dynamo);
    const dynamodbEndpoint = options.dynamodbEndpoint ?? dynamo?.endpoint ?? '';
    const sqsServer = options.sqsEndpoint === undefined ? await startSqsServer() : undefined;
    if (sqsServer !== undefined) started.push(sqsServer);
    const sqsEndpoint = options.sqsEndpoint ?? sqsServer?.endpoint ?? '';
    const redis = await resolveRedis(options.redisUrl);
    started.push(redis);

    const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
    const names = Object.keys(tableShapes) as TableName[];
    const tables = Object.fromEntries(names.map((name) => [name, `relay-${stage}-${name}`])) as TableNames;
    const ddb = new DynamoDBClient({ endpoint: dynamodbEndpoint, region: 'us-east-1', credentials });
    await ensureTables(ddb, Object.fromEntries(names.map((name) => [tables[name], tableShapes[name]])));
    ddb.destroy();

    const sqs = new SQSClient({ endpoint: sqsEndpoint, region: 'us-east-1', credentials });
    const queueOptions = { visibilityTimeoutSeconds: options.visibilityTimeoutSeconds ?? 30, maxReceiveCount: options.maxReceiveCount ?? 3 };
    const fanoutQueues = await createQueueWithDlq(sqs, `relay-${stage}-fanout`, queueOptions);
    const notifyQueues = await createQueueWithDlq(sqs, `relay-${stage}-notify`, queueOptions);
    const { queueUrl, dlqUrl } = fanoutQueues;

    // The gateway's routes are set once its Management endpoint (the handlers' CALLBACK_URL) is known.
    const routeTable: RouteTable = {};
    // Without a secret given, one of its own for this backend only (`npm start` gives the machine's, kept in a file).
    const secretJson = options.env?.APP_SECRET_JSON ?? newDevSecretJson();
    // Web Push keys of this backend only (a stage keeps its own in Secrets Manager), unless given.
    const vapidJson = options.env?.PUSH_VAPID_JSON ?? JSON.stringify(generateVapidKeys());
    // The page's stand-in for the browser's PushManager (see local/push-service.ts); its log lines carry no payloads.
    const pushService =
      options.web === true ? await startLocalPushService({ ...((options.env?.LOG_LEVEL ?? 'INFO') === 'SILENT' ? {} : { log: pushJsonLineLog((line) => process.stdout.write(line)) }) }) : undefined;
    if (pushService !== undefined) started.push({ stop: () => pushService.close() });
    const pagePush = pushService === undefined ? undefined : { service: pushService, applicationServerKey: vapidPublicKeyOf(vapidJson) };
    const page =
      pagePush === undefined ? undefined : webPageOf(dynamodbEndpoint, tables, secretJson, loadMembershipLimit(options.env ?? {}), () => gateway.url, pagePush);
    if (page !== undefined) started.push(page);
    const gateway = await startLocalGateway({
      port: options.port ?? 0,
      host: options.host ?? '127.0.0.1',
      stage,
      routes: routeTable,
      ...options.gateway,
      ...(page === undefined ? {} : { http: page.http }),
    });
    started.push({ stop: () => gateway.close() });

    const env: Record<string, string> = {
      CONNECTIONS_TABLE: tables.connections,
      PUSH_TARGETS_TABLE: tables.pushTargets,
      NOTIFY_QUEUE_URL: notifyQueues.queueUrl,
      PUSH_VAPID_JSON: vapidJson,
      // The local push service listens on loopback http; a stage never allows it.
      PUSH_ALLOW_LOOPBACK: 'true',
      MEMBERS_TABLE: tables.members,
      MESSAGES_TABLE: tables.messages,
      IDEMPOTENCY_TABLE: tables.idempotency,
      POSITIONS_TABLE: tables.positions,
      FANOUT_QUEUE_URL: queueUrl,
      ...(redis.kind === 'none' ? {} : { REDIS_URL: redis.url }),
      APP_SECRET_JSON: secretJson,
      CALLBACK_URL: gateway.managementEndpoint,
      DYNAMODB_ENDPOINT: dynamodbEndpoint,
      SQS_ENDPOINT: sqsEndpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      ...options.env,
    };
    // One scope owns every client the routes open; each route builds its services lazily on its first event.
    // A restart is a fresh set of containers: new sources over a new scope, the old one closed.
    let scope = new Scope();
    started.push({ stop: () => scope.close() });
    const renewals: (() => void)[] = [];
    const sweeperConfig = loadConfig('presenceSweeper', env);
    // Without Redis every route shares one in-process limiter, one set of fan-out budgets and one presence, as
    // they would share Redis.
    const budgets = fanoutBudgetSettings(loadConfig('sendMessage', env));
    const given: Partial<Services> = {
      ...(redis.kind === 'none'
        ? { limiter: new MemoryRateLimiter(), fanoutBudget: new MemoryFanoutBudget(budgets), presence: new MemoryPresence(presenceTimings(sweeperConfig)) }
        : {}),
      ...options.services,
    };
    const handlerOf = async ({ name, entry }: { name: FunctionName; entry: string }) => {
      const route = await loadRoute(entry);
      const fresh = () => lazyServices(() => route.build({ ...env, ...options.functionEnv?.(name) }, scope, given));
      let source = fresh();
      renewals.push(() => {
        source = fresh();
      });
      return route.create(() => source());
    };
    const functions: Record<string, (event: unknown) => Promise<unknown>> = {};
    for (const route of routes) {
      const handler = await handlerOf(route);
      const call: RouteHandler = (event) => handler(event as never);
      routeTable[route.routeKey] = { handler: call, twoWay: route.twoWay };
      functions[route.name] = (event) => handler(event as never);
    }

    const workerHandler = await handlerOf(fanoutWorker);
    functions[fanoutWorker.name] = (event) => workerHandler(event as never);
    const worker = async (event: SQSEvent) => batchResponse(await workerHandler(event as never));
    const poller = startSqsPoller(sqs, queueUrl, fanoutQueues.queueArn, worker, options.onWorkerError ?? (() => undefined));
    // The notifier, from its own queue, as its SQS event source runs it in the cloud.
    const notifierHandler = await handlerOf(notifier);
    functions[notifier.name] = (event) => notifierHandler(event as never);
    const notifierPoller = startSqsPoller(
      sqs,
      notifyQueues.queueUrl,
      notifyQueues.queueArn,
      async (event: SQSEvent) => batchResponse(await notifierHandler(event as never)),
      options.onWorkerError ?? (() => undefined),
    );
    // Stop order: the pollers and gateway first (they call handlers), then the servers they talk to.
    started.push({
      stop: async () => {
        await Promise.all([poller.stop(), notifierPoller.stop()]);
        sqs.destroy();
      },
    });
    // The presence sweeper, as EventBridge runs it in the cloud: here one sweep every PRESENCE_SWEEP_SECONDS.
    const sweeperHandler = await handlerOf(presenceSweeper);
    functions[presenceSweeper.name] = (event) => sweeperHandler(event as never);
    started.push(startSweeping(() => sweeperHandler({} as never), sweeperConfig.PRESENCE_SWEEP_SECONDS * 1000));

    return {
      url: gateway.url,
      managementEndpoint: gateway.managementEndpoint,
      port: gateway.port,
      stage,
      dynamodbEndpoint,
      sqsEndpoint,
      redisUrl: redis.url,
      redisKind: redis.kind,
      tables,
      queueUrl,
      dlqUrl,
      notifyQueueUrl: notifyQueues.queueUrl,
      notifyDlqUrl: notifyQueues.dlqUrl,
      vapidPublicKey: vapidPublicKeyOf(env.PUSH_VAPID_JSON ?? vapidJson),
      pushService,
      env,
      functions,
      loseConnection: (connectionId) => gateway.loseConnection(connectionId),
      connectionIds: () => gateway.connectionIds(),
      restartFunctions: async () => {
        const previous = scope;
        scope = new Scope();
        for (const renew of renewals) renew();
        await previous.close();
      },
      close: async () => {
        // The poller and the gateway call handlers: stop them first, then the clients and the servers.
        await stopAll();
      },
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

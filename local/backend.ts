import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { connectionsTable, membersTable } from '../deploy/tables.js';
import { fanoutWorker, routes } from '../deploy/routes.js';
import { startLocalGateway, type LocalGatewayOptions, type RouteHandler, type RouteTable } from './gateway.js';
import { resolveRedis, startDynalite, startSqsServer, type RunningService } from './services.js';
import { startSqsPoller } from './sqs-poller.js';
import { ensureTables } from './tables.js';

/** A development-only master key: fixed, so tokens minted by `npm run admin -- token` survive restarts. */
export const DEV_SECRET_JSON = JSON.stringify({ masterKey: 'relay-ws-local-development-master-key--not-a-secret' });

export interface LocalBackendOptions {
  port?: number;
  host?: string;
  stage?: string;
  /** Use this DynamoDB (e.g. a shared dynalite) instead of starting one in process. */
  dynamodbEndpoint?: string;
  /** Use this SQS endpoint instead of starting fauxqs in process. */
  sqsEndpoint?: string;
  /** `redis://…`, or `memory://` for the in-memory twin; unset = spawn redis-server, else the twin. */
  redisUrl?: string;
  /** Extra environment for the handlers' config (rate limits, thresholds, secrets…). */
  env?: Record<string, string>;
  /** Gateway limits and timeouts (tests shorten them). */
  gateway?: Pick<LocalGatewayOptions, 'idleTimeoutMs' | 'maxConnectionMs' | 'maxFrameBytes' | 'maxMessageBytes' | 'maxPostBytes' | 'log'>;
  /** Visibility timeout of the local fan-out queue, seconds. */
  visibilityTimeoutSeconds?: number;
  maxReceiveCount?: number;
  onWorkerError?: (error: unknown) => void;
}

export interface LocalBackend {
  url: string;
  managementEndpoint: string;
  port: number;
  stage: string;
  dynamodbEndpoint: string;
  sqsEndpoint: string;
  redisUrl: string;
  redisKind: 'external' | 'spawned' | 'memory';
  tables: { connections: string; members: string };
  queueUrl: string;
  dlqUrl: string;
  /** The environment the handlers run with (what a Lambda would get). */
  env: Record<string, string>;
  close(): Promise<void>;
}

type LambdaHandler = (event: unknown, context?: unknown) => Promise<unknown>;

async function loadHandler(entry: string): Promise<LambdaHandler> {
  const module: { handler?: unknown } = await import(pathToFileURL(resolve(entry)).href);
  const handler = module.handler;
  if (typeof handler !== 'function') throw new TypeError(`${entry} does not export a handler function`);
  return async (event, context) => {
    const result: unknown = await handler(event, context);
    return result;
  };
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

/**
 * The whole backend on one machine: dynalite, a local SQS server feeding the fan-out worker, Redis (or its
 * twin), and the API Gateway emulator running the real handler modules from the same route table the stack
 * uses. Handlers read their config from process.env, so one backend runs per process.
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
    const tables = { connections: `relay-${stage}-connections`, members: `relay-${stage}-members` };
    const ddb = new DynamoDBClient({ endpoint: dynamodbEndpoint, region: 'us-east-1', credentials });
    await ensureTables(ddb, { [tables.connections]: connectionsTable, [tables.members]: membersTable });
    ddb.destroy();

    const sqs = new SQSClient({ endpoint: sqsEndpoint, region: 'us-east-1', credentials });
    const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `relay-${stage}-fanout-dlq` }));
    const dlqUrl = dlq.QueueUrl ?? '';
    const dlqAttributes = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }));
    const queue = await sqs.send(
      new CreateQueueCommand({
        QueueName: `relay-${stage}-fanout`,
        Attributes: {
          VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? 30),
          RedrivePolicy: JSON.stringify({
            deadLetterTargetArn: dlqAttributes.Attributes?.QueueArn,
            maxReceiveCount: String(options.maxReceiveCount ?? 3),
          }),
        },
      }),
    );
    const queueUrl = queue.QueueUrl ?? '';
    const queueAttributes = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));

    const routeTable: RouteTable = {};
    for (const route of routes) {
      const handler: RouteHandler = await loadHandler(route.entry);
      routeTable[route.routeKey] = { handler, twoWay: route.twoWay };
    }
    const gateway = await startLocalGateway({
      port: options.port ?? 0,
      host: options.host ?? '127.0.0.1',
      stage,
      routes: routeTable,
      ...options.gateway,
    });
    started.push({ stop: () => gateway.close() });

    const env: Record<string, string> = {
      CONNECTIONS_TABLE: tables.connections,
      MEMBERS_TABLE: tables.members,
      FANOUT_QUEUE_URL: queueUrl,
      REDIS_URL: redis.url,
      APP_SECRET_JSON: DEV_SECRET_JSON,
      CALLBACK_URL: gateway.managementEndpoint,
      DYNAMODB_ENDPOINT: dynamodbEndpoint,
      SQS_ENDPOINT: sqsEndpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      LOCAL_MODE: 'true',
      ...options.env,
    };
    // The handlers build their context from the environment on their first event, as in Lambda.
    Object.assign(process.env, env);

    const workerHandler = await loadHandler(fanoutWorker.entry);
    const worker = async (event: SQSEvent) => batchResponse(await workerHandler(event));
    const poller = startSqsPoller(
      sqs,
      queueUrl,
      queueAttributes.Attributes?.QueueArn ?? '',
      worker,
      options.onWorkerError ?? (() => undefined),
    );
    // Stop order: the poller and gateway first (they call handlers), then the servers they talk to.
    started.push({
      stop: async () => {
        await poller.stop();
        sqs.destroy();
      },
    });

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
      env,
      close: async () => {
        const { resetContext } = await import('../lambdas/context.js');
        const poller = started.pop();
        await poller?.stop();
        const gatewayService = started.pop();
        await gatewayService?.stop();
        await resetContext();
        await stopAll();
      },
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

import { CfnOutput, Duration, RemovalPolicy, Stack, Tags, type StackProps } from 'aws-cdk-lib';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { fanoutWorker, notifier, presenceSweeper, routes, type FunctionSpec, type RouteSpec } from '../deploy/routes.js';
import type { TableName } from '../deploy/tables.js';
import { variablesOf } from '../lambdas/config.js';
import { grantAccess } from './access.js';
import { Alarms } from './alarms.js';
import { WebSocketGateway } from './api.js';
import { OperationsDashboard } from './dashboard.js';
import { RelayFunction, type FunctionEnvironment } from './functions.js';
import { PushSetup, pushSetup } from './push-setup.js';
import { FanoutQueues } from './queues.js';
import { ExternalRedis, redisPasswordRotation, ServerlessRedis, type RedisBackend } from './redis.js';
import { workerMaxConcurrency, type StackSettings } from './settings.js';
import { Signals } from './signals.js';
import { Tables } from './tables.js';
import { acknowledge } from './nag.js';
import { OUTPUTS } from './outputs.js';

/** Output keys: the admin CLI and the deploy guide read these names. */
export { OUTPUTS };

/** API Gateway gives a route integration 29 s; a frame should answer well before that. */
export const ROUTE_TIMEOUT = Duration.seconds(10);
/** A batch of 10 jobs × up to FANOUT_BATCH_SIZE posts each. */
export const WORKER_TIMEOUT = Duration.seconds(30);
export const WORKER_BATCH_SIZE = 10;
/** The presence sweeper runs every minute and sweeps until about 5 s before this. */
export const SWEEPER_TIMEOUT = Duration.seconds(65);
/** The sweeper is always running (mostly waiting between sweeps): its cost is its memory, and it needs little. */
export const SWEEPER_MEMORY_MB = 128;
export const SWEEPER_SCHEDULE = Schedule.rate(Duration.minutes(1));
export const MEMORY_MB = 512;
/** A rotation step may wait for the ElastiCache user to be active again (about a minute or two at most). */
export const ROTATION_TIMEOUT = Duration.minutes(3);
/** The push custom resources: a key pair, or a few SNS calls. */
export const PUSH_SETUP_TIMEOUT = Duration.minutes(1);
export const ROTATION_MEMORY_MB = 256;
/** A batch of 10 notify jobs, each a few reads and pushes (a push service answers within its 5 s timeout). */
export const NOTIFIER_TIMEOUT = Duration.seconds(30);
export const NOTIFIER_BATCH_SIZE = 10;
/** Notifiers at once: pushes are cheap and the push services rate-limit per sender, so a burst waits in the queue. */
export const NOTIFIER_MAX_CONCURRENCY = 10;

export interface RelayStackProps extends StackProps {
  settings: StackSettings;
}

/** The whole backend of one stage: API, functions, tables, queue, Redis, secret, alarms and a dashboard. */
export class RelayStack extends Stack {
  readonly settings: StackSettings;
  readonly tables: Tables;
  readonly fanout: FanoutQueues;
  /** The notifier's queue (one job of ids per stored message) and its dead-letter queue. */
  readonly notify: FanoutQueues;
  readonly appSecret: Secret;
  /** The VAPID key pair of Web Push (filled by the operator: docs/deploy.md, "Push notifications"). */
  readonly vapidSecret: Secret;
  readonly notifier: RelayFunction;
  readonly jwtSecret: Secret;
  readonly redis: RedisBackend;
  readonly routeFunctions: readonly { route: RouteSpec; relayFunction: RelayFunction }[];
  readonly worker: RelayFunction;
  readonly sweeper: RelayFunction;
  /** Rotates the ElastiCache app user's password (serverless Redis only); Secrets Manager invokes it, nothing else. */
  readonly passwordRotation: RelayFunction | undefined;
  /** The VAPID key pair and the SNS platform applications the stack makes (custom resources). */
  readonly pushSetup: PushSetup;
  readonly gateway: WebSocketGateway;
  readonly alarms: Alarms;
  readonly dashboard: OperationsDashboard;

  constructor(scope: Construct, id: string, props: RelayStackProps) {
    super(scope, id, props);
    const { settings } = props;
    this.settings = settings;
    // retainData (default: only the stage named prod) keeps the data when the stack goes; others clean up.
    const dataRemoval = settings.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const logRetention = settings.logRetentionDays as RetentionDays;
    Tags.of(this).add('app', 'relay-ws');
    Tags.of(this).add('stage', settings.stage);

    this.tables = new Tables(this, 'Tables', { removalPolicy: dataRemoval });
    this.fanout = new FanoutQueues(this, 'Fanout', {
      maxReceiveCount: settings.maxReceiveCount,
      workerTimeout: WORKER_TIMEOUT,
    });
    // The same construct as the fan-out queues: encrypted, TLS only, senders limited by a resource policy, a DLQ
    // only SQS moves jobs to.
    this.notify = new FanoutQueues(this, 'Notify', { maxReceiveCount: settings.maxReceiveCount, workerTimeout: NOTIFIER_TIMEOUT });
    // CloudFormation cannot make a P-256 key pair: the secret starts without one, and the PushSetup custom resource
    // below generates `{publicKey, privateKey, subject}` into it once (never replacing a pair it holds).
    this.vapidSecret = new Secret(this, 'VapidSecret', {
      description: `relay-ws ${settings.stage}: the VAPID key pair of Web Push ({"publicKey","privateKey","subject"})`,
      generateSecretString: { secretStringTemplate: '{}', generateStringKey: 'unset', passwordLength: 16, excludePunctuation: true },
      removalPolicy: dataRemoval,
    });
    acknowledge(
      this.vapidSecret,
      'AwsSolutions-SMG4',
      'A new VAPID key pair invalidates every Web Push subscription (browsers bind them to the public key): it is replaced deliberately, never on a schedule.',
    );
    this.appSecret = new Secret(this, 'AppSecret', {
      description: `relay-ws ${settings.stage}: masterKey for message keys`,
      generateSecretString: {
        secretStringTemplate: '{}',
        generateStringKey: 'masterKey',
        passwordLength: 64,
        excludePunctuation: true,
      },
      removalPolicy: dataRemoval,
    });
    acknowledge(
      this.appSecret,
      'AwsSolutions-SMG4',
      'masterKey derives the keys of stored messages; rotating it unreads them, so rotation is a planned re-encryption, not a schedule.',
    );
    // A secret of its own (CloudFormation generates one key per secret; changing the app secret's template would
    // generate a new masterKey): whoever can mint tokens cannot open messages, and each rotates on its own.
    this.jwtSecret = new Secret(this, 'JwtSecret', {
      description: `relay-ws ${settings.stage}: jwtSecret, the HS256 secret of connection tokens`,
      generateSecretString: {
        secretStringTemplate: '{}',
        generateStringKey: 'jwtSecret',
        passwordLength: 64,
        excludePunctuation: true,
      },
      removalPolicy: dataRemoval,
    });
    acknowledge(
      this.jwtSecret,
      'AwsSolutions-SMG4',
      'Rotating jwtSecret is a two-step procedure (previousJwtSecrets keeps tokens already issued valid until they expire): docs/deploy.md, "Rotation".',
    );
    this.redis =
      settings.redis === 'serverless'
        ? new ServerlessRedis(this, 'Redis', {
            stage: settings.stage,
            natGateways: settings.natGateways,
            logRetention,
            removalPolicy: dataRemoval,
            maxDataStorageGb: settings.cacheMaxDataStorageGb,
            maxEcpuPerSecond: settings.cacheMaxEcpuPerSecond,
          })
        : new ExternalRedis(this, 'Redis', { redisUrlSecretArn: requireValue(settings.redisUrlSecretArn, 'redisUrlSecretArn') });

    // Every value any function reads; each function gets only the variables its own schema names.
    const values: FunctionEnvironment = {
      CONNECTIONS_TABLE: this.tables.connections.tableName,
      MEMBERS_TABLE: this.tables.members.tableName,
      MESSAGES_TABLE: this.tables.byName.messages.tableName,
      IDEMPOTENCY_TABLE: this.tables.byName.idempotency.tableName,
      POSITIONS_TABLE: this.tables.byName.positions.tableName,
      PUSH_TARGETS_TABLE: this.tables.byName.pushTargets.tableName,
      NOTIFY_QUEUE_URL: this.notify.queue.queueUrl,
      PUSH_VAPID_SECRET_ID: this.vapidSecret.secretArn,
      PUSH_PREVIEW: String(settings.pushPreview),
      ...(settings.pushWebAllowedHosts === undefined ? {} : { PUSH_WEB_ALLOWED_HOSTS: settings.pushWebAllowedHosts }),
      ...(settings.historyRetentionDays === undefined ? {} : { HISTORY_RETENTION_SECONDS: String(settings.historyRetentionDays * 24 * 3600) }),
      FANOUT_QUEUE_URL: this.fanout.queue.queueUrl,
      APP_SECRET_ID: this.appSecret.secretArn,
      JWT_SECRET_ID: this.jwtSecret.secretArn,
      ...this.redis.environment,
      LOG_LEVEL: settings.logLevel,
      METRICS: 'emf',
      METRICS_STAGE: settings.stage,
      RATE_LIMIT_PER_SECOND: String(settings.rateLimitPerSecond),
      RATE_LIMIT_BURST: String(settings.rateLimitBurst),
      ...(settings.jwtJwksUrl === undefined ? {} : { JWT_JWKS_URL: settings.jwtJwksUrl }),
      ...(settings.jwtIssuer === undefined ? {} : { JWT_ISSUER: settings.jwtIssuer }),
      ...(settings.jwtAudience === undefined ? {} : { JWT_AUDIENCE: settings.jwtAudience }),
      ...(settings.originAllowList === undefined ? {} : { ORIGIN_ALLOW_LIST: settings.originAllowList }),
    };
    const makeFunction = (spec: FunctionSpec, timeout: Duration, extra: FunctionEnvironment = {}, memorySize = MEMORY_MB) =>
      new RelayFunction(this, spec.name, {
        namePrefix: this.stackName,
        spec,
        environment: { ...environmentOf(spec, values), ...extra },
        timeout,
        memorySize,
        logRetention,
        logRemovalPolicy: dataRemoval,
        tracing: settings.tracing,
        placement: spec.access.redis ? this.redis.placement : undefined,
      });
    this.pushSetup = new PushSetup(this, 'PushSetup', {
      setupFunction: makeFunction(pushSetup, PUSH_SETUP_TIMEOUT),
      namePrefix: `relay-ws-${settings.stage}`,
      vapidSecret: this.vapidSecret,
      vapidSubject: settings.pushVapidSubject,
      ...(settings.pushApnsCredentialsSecretArn === undefined
        ? {}
        : { apns: { credentialsSecretArn: settings.pushApnsCredentialsSecretArn, platform: settings.pushApnsSandbox ? 'APNS_SANDBOX' : 'APNS' } }),
      ...(settings.pushFcmCredentialsSecretArn === undefined ? {} : { fcm: { credentialsSecretArn: settings.pushFcmCredentialsSecretArn } }),
      ...(settings.pushCredentialsVersion === undefined ? {} : { credentialsVersion: settings.pushCredentialsVersion }),
      logRetention,
      logRemovalPolicy: dataRemoval,
    });
    // The platform applications: the operator's, or the ones just made (read from their custom resources, so the
    // functions that push are deployed after the applications exist).
    const apnsArn = settings.pushApnsPlatformArn ?? this.pushSetup.apns?.arn;
    const fcmArn = settings.pushFcmPlatformArn ?? this.pushSetup.fcm?.arn;
    if (apnsArn !== undefined) values.PUSH_APNS_PLATFORM_ARN = apnsArn;
    if (fcmArn !== undefined) values.PUSH_FCM_PLATFORM_ARN = fcmArn;
    const pushPlatformArns = [settings.pushApnsPlatformArn ?? this.pushSetup.apns?.grantArn, settings.pushFcmPlatformArn ?? this.pushSetup.fcm?.grantArn].flatMap((arn) =>
      arn === undefined ? [] : [arn],
    );
    this.routeFunctions = routes.map((route) => ({ route, relayFunction: makeFunction(route, ROUTE_TIMEOUT) }));

    this.gateway = new WebSocketGateway(this, 'WebSocket', {
      name: this.stackName,
      stageName: settings.stage,
      routes: this.routeFunctions.map(({ route, relayFunction }) => ({ route, handler: relayFunction.function })),
      throttleRate: settings.throttleRate,
      throttleBurst: settings.throttleBurst,
      logRetention,
      logRemovalPolicy: dataRemoval,
      createCloudWatchRole: settings.apiGatewayCloudWatchRole,
    });

    // The worker posts only to the stage's own endpoint (a job cannot name another): it is given it like the sweeper.
    this.worker = makeFunction(fanoutWorker, WORKER_TIMEOUT, { CALLBACK_URL: this.gateway.stage.callbackUrl });
    this.worker.function.addEventSource(
      new SqsEventSource(this.fanout.queue, {
        batchSize: WORKER_BATCH_SIZE,
        reportBatchItemFailures: true,
        maxConcurrency: workerMaxConcurrency(settings),
      }),
    );
    this.notifier = makeFunction(notifier, NOTIFIER_TIMEOUT);
    this.notifier.function.addEventSource(
      new SqsEventSource(this.notify.queue, { batchSize: NOTIFIER_BATCH_SIZE, reportBatchItemFailures: true, maxConcurrency: NOTIFIER_MAX_CONCURRENCY }),
    );
    // The sweeper has no event to take the endpoint from: it is given the stage's (it is no route of the API, so
    // referring to the stage makes no cycle).
    this.sweeper = makeFunction(presenceSweeper, SWEEPER_TIMEOUT, { CALLBACK_URL: this.gateway.stage.callbackUrl }, SWEEPER_MEMORY_MB);
    new Rule(this, 'PresenceSweepSchedule', {
      description: 'Runs the presence sweeper (it sweeps every PRESENCE_SWEEP_SECONDS within its invocation)',
      schedule: SWEEPER_SCHEDULE,
      targets: [new LambdaFunction(this.sweeper.function, { retryAttempts: 0 })],
    });

    if (this.redis instanceof ServerlessRedis) {
      this.passwordRotation = makeFunction(redisPasswordRotation, ROTATION_TIMEOUT, this.redis.rotationEnvironment, ROTATION_MEMORY_MB);
      this.redis.rotateWith(this.passwordRotation, Duration.days(settings.redisPasswordRotationDays));
    }

    for (const relayFunction of this.allFunctions) {
      grantAccess(relayFunction.role, relayFunction.spec, {
        tables: this.tables,
        fanoutQueue: this.fanout.queue,
        notifyQueue: this.notify.queue,
        vapidSecret: this.vapidSecret,
        pushPlatformArns,
        appSecret: this.appSecret,
        jwtSecret: this.jwtSecret,
        redis: this.redis,
        postToConnectionsArn: this.gateway.postToConnectionsArn,
      });
    }

    this.fanout.allowSendersOnly(this.allFunctions.filter((f) => f.spec.access.enqueue).map((f) => f.role));
    this.notify.allowSendersOnly(this.allFunctions.filter((f) => f.spec.access.notifies === true).map((f) => f.role));

    const signals = new Signals({
      stage: settings.stage,
      apiId: this.gateway.api.apiId,
      functions: this.allFunctions.map((f) => ({ name: f.spec.name, handler: f.function })),
      fanoutQueue: this.fanout.queue,
      deadLetterQueue: this.fanout.deadLetterQueue,
      notifyDeadLetterQueue: this.notify.deadLetterQueue,
      tables: (Object.keys(this.tables.byName) as TableName[]).map((name) => ({ name, table: this.tables.byName[name] })),
      serverlessCacheName: this.redis instanceof ServerlessRedis ? this.redis.cache.serverlessCacheName : undefined,
      natGatewayIds: this.redis instanceof ServerlessRedis ? this.redis.natGatewayIds : [],
      ...(this.passwordRotation === undefined ? {} : { passwordRotation: this.passwordRotation.function }),
    });
    this.alarms = new Alarms(this, 'Alarms', { stackName: this.stackName, signals, alarmEmail: settings.alarmEmail });
    this.dashboard = new OperationsDashboard(this, 'Operations', { stackName: this.stackName, signals, alarms: this.alarms.alarms });

    this.output(OUTPUTS.webSocketUrl, this.gateway.stage.url, 'Clients connect here (wss://…/{stage})');
    this.output(OUTPUTS.callbackUrl, this.gateway.stage.callbackUrl, 'Management API endpoint (POST @connections)');
    this.output(OUTPUTS.stageName, settings.stage, 'The stage this stack serves');
    this.output(OUTPUTS.connectionsTable, this.tables.connections.tableName, 'Connections table');
    this.output(OUTPUTS.membersTable, this.tables.members.tableName, 'Membership table (admin CLI: MEMBERS_TABLE)');
    this.output(OUTPUTS.messagesTable, this.tables.byName.messages.tableName, 'Message log (admin CLI: MESSAGES_TABLE)');
    this.output(OUTPUTS.idempotencyTable, this.tables.byName.idempotency.tableName, 'Idempotency records (admin CLI: IDEMPOTENCY_TABLE)');
    this.output(OUTPUTS.fanoutQueueUrl, this.fanout.queue.queueUrl, 'Fan-out queue');
    this.output(OUTPUTS.deadLetterQueueUrl, this.fanout.deadLetterQueue.queueUrl, 'Fan-out dead-letter queue');
    this.output(OUTPUTS.appSecretArn, this.appSecret.secretArn, 'App secret (admin CLI: APP_SECRET_ID)');
    this.output(OUTPUTS.jwtSecretArn, this.jwtSecret.secretArn, 'JWT secret of connection tokens (admin CLI: JWT_SECRET_ID)');
    this.output(OUTPUTS.notifyDeadLetterQueueUrl, this.notify.deadLetterQueue.queueUrl, 'Notifier dead-letter queue (push jobs that failed)');
    this.output(OUTPUTS.vapidSecretArn, this.vapidSecret.secretArn, 'VAPID key pair of Web Push (generated at the first deploy, never replaced)');
    this.output(OUTPUTS.vapidPublicKey, this.pushSetup.vapidPublicKey, 'VAPID public key: the applicationServerKey of your web app');
    if (this.pushSetup.apns !== undefined) this.output(OUTPUTS.apnsPlatformArn, this.pushSetup.apns.arn, 'SNS platform application of APNs (made by the stack)');
    if (this.pushSetup.fcm !== undefined) this.output(OUTPUTS.fcmPlatformArn, this.pushSetup.fcm.arn, 'SNS platform application of FCM (made by the stack)');
    this.output(OUTPUTS.redisMode, this.redis.mode, 'serverless (ElastiCache) or external');
  }

  get allFunctions(): readonly RelayFunction[] {
    return [...this.routeFunctions.map((entry) => entry.relayFunction), this.worker, this.sweeper, this.notifier];
  }

  private output(key: string, value: string, description: string): void {
    new CfnOutput(this, key, { value, description });
  }
}

/** The subset of `values` that this function's environment schema reads. */
export function environmentOf(spec: FunctionSpec, values: FunctionEnvironment): FunctionEnvironment {
  const wanted = new Set(variablesOf(spec.name));
  return Object.fromEntries(Object.entries(values).filter(([variable]) => wanted.has(variable)));
}

function requireValue(value: string | undefined, name: string): string {
  // settings.ts already refuses redis=external without it; this keeps the type honest.
  if (value === undefined) throw new Error(`context value ${name} is required`);
  return value;
}

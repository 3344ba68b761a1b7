import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { build } from 'esbuild';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { fanoutWorker, routes, type FunctionSpec } from '../../deploy/routes.js';
import { connectEvent, disconnectEvent, headerMaps, messageEvent, queryMaps, type ConnectionFacts } from '../../local/gateway/events.js';
import type { BenchConfig } from '../config.js';
import { uniqueId, type BenchBackend } from '../lib/backend.js';
import { STACK_TARGET, bundleLikeTheStack, type Bundle } from '../lib/bundle.js';
import { withTimeout } from '../lib/limit.js';
import { REPOSITORY_ROOT, resultsPath } from '../lib/paths.js';
import type { Progress } from '../lib/progress.js';
import { median, percentile, round } from '../lib/stats.js';
import { SocketSet } from '../lib/sockets.js';
import { bundleSourceMapper, readProfile, summarize as summarizeProfile, type ProfileSummary } from '../lib/profile.js';

/** The empty handler whose cold start is the floor every handler is compared with. */
const FLOOR_SOURCE = 'export const handler = async () => ({ statusCode: 200 });';
/**
 * The second reference: the DynamoDB document client alone, bundled like the functions, built from the environment
 * on the first call (as the routes build their services), which sends ONE GetItem to the connections table — the
 * least every route but $default does on its first event.
 */
const REFERENCE_SOURCE = [
  "import { DynamoDBClient } from '@aws-sdk/client-dynamodb';",
  "import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';",
  'let db: DynamoDBDocumentClient | undefined;',
  'export const handler = async () => {',
  '  const env = process.env;',
  '  const sessionToken = env.AWS_SESSION_TOKEN;',
  '  db ??= DynamoDBDocumentClient.from(new DynamoDBClient({',
  "    region: env.AWS_REGION ?? 'us-east-1',",
  '    ...(env.DYNAMODB_ENDPOINT === undefined ? {} : { endpoint: env.DYNAMODB_ENDPOINT }),',
  "    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID ?? '', secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? '', ...(sessionToken === undefined ? {} : { sessionToken }) },",
  '  }));',
  "  await db.send(new GetCommand({ TableName: env.CONNECTIONS_TABLE, Key: { connectionId: 'cold-start-reference', entry: '#connection' } }));",
  '  return { statusCode: 200 };',
  '};',
].join('\n');
export const REFERENCE = 'document client + 1 GetItem';
/** The stack runs every function with this (lib/functions.ts); the bench measures with it, and once without. */
const STACK_NODE_OPTIONS = '--enable-source-maps';
const NO_SOURCE_MAPS = ' (no source maps)';

export interface ColdRow {
  name: string;
  bytes: number;
  gzipBytes: number;
  top: Bundle['top'];
  /** Medians over the samples, ms: import() of the bundle, the first invocation (context build included), both. */
  loadMs: number;
  firstMs: number;
  totalMs: number;
  /** 90th percentile of the total. */
  totalP90Ms: number;
  /** totalMs minus the floor's totalMs. */
  overFloorMs: number;
  /**
   * totalMs ÷ the reference's totalMs: the DynamoDB document client alone sending one GetItem on its first call,
   * bundled and timed the same way (every route but $default makes at least that call).
   */
  overReference: number;
  samples: number;
  failures: number;
  lastFailure?: string;
}

/** What one dependency costs at import when bundled alone like the stack (median ms over the floor's import). */
export interface DependencyCost {
  name: string;
  bytes: number;
  gzipBytes: number;
  loadMs: number;
  /** Import + a first (empty) call, as the handlers are timed. */
  totalMs: number;
  overFloorMs: number;
}

/** The dependency bundle of the document client alone (import only; a first, empty call). */
export const DOCUMENT_CLIENT = 'DynamoDB client + lib-dynamodb';

export interface ColdProfile {
  name: string;
  summary: ProfileSummary;
}

export interface ColdResult {
  target: string;
  /** The target the stack uses; differs from `target` only if the host Node could not run it. */
  stackTarget: string;
  node: string;
  nodeOptions: string;
  floor: ColdRow;
  /** The document client + one GetItem (see REFERENCE_SOURCE): the denominator of every row's `overReference`. */
  reference: ColdRow;
  rows: ColdRow[];
  /** The same samples without --enable-source-maps, for the floor and one handler: what the flag costs. */
  withoutSourceMaps: { name: string; totalMs: number; withMs: number }[];
  dependencies: DependencyCost[];
  /** One extra sample per profiled handler, CPU-profiled and mapped through the bundle's source map. */
  profiles: ColdProfile[];
}

const DYNAMODB = "export { DynamoDBClient } from '@aws-sdk/client-dynamodb'; export { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand, DeleteCommand } from '@aws-sdk/lib-dynamodb';";
const IOREDIS = "export { Redis, Cluster } from 'ioredis';";
const SECRETS = "export { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';";
const SQS = "export { SQSClient, SendMessageBatchCommand } from '@aws-sdk/client-sqs';";
const POSTER = "export { ManagementApiPoster } from './lambdas/adapters/management-poster.ts';";
const SCHEMAS = "export * from './lambdas/protocol.ts'; export * from './lambdas/config.ts';";
const LOGGER = "export { Logger } from '@aws-lambda-powertools/logger';";

/**
 * Each dependency alone, re-exported so nothing is tree-shaken away; then each route's own needs: the third-party
 * packages its handler module imports (deploy/routes.ts entries, read from their imports), without the app's code.
 */
const DEPENDENCIES: readonly { name: string; contents: string }[] = [
  { name: "zod/mini + the app's schemas", contents: SCHEMAS },
  { name: 'jose', contents: "export { jwtVerify, createRemoteJWKSet } from 'jose';" },
  { name: 'Powertools Logger', contents: LOGGER },
  { name: 'ioredis', contents: IOREDIS },
  {
    name: DOCUMENT_CLIENT,
    contents:
      "export { DynamoDBClient } from '@aws-sdk/client-dynamodb'; export { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, DeleteCommand } from '@aws-sdk/lib-dynamodb';",
  },
  { name: 'SQS client', contents: SQS },
  { name: 'Powertools SecretsProvider', contents: SECRETS },
  { name: 'Management API poster (SigV4 signer)', contents: POSTER },
  {
    name: "disconnect's own needs (DynamoDB, schemas, Logger)",
    contents: [
      "export { DynamoDBClient } from '@aws-sdk/client-dynamodb';",
      "export { DynamoDBDocumentClient, DeleteCommand } from '@aws-sdk/lib-dynamodb';",
      "export * from './lambdas/proxy-event.ts'; export * from './lambdas/config.ts';",
      LOGGER,
    ].join(' '),
  },
  { name: "ack / getUnacked / getHistory's own needs (DynamoDB, ioredis, SecretsProvider, schemas, Logger)", contents: [DYNAMODB, IOREDIS, SECRETS, SCHEMAS, LOGGER].join(' ') },
  // ack and typing import SecretsProvider only for REDIS_URL_SECRET_ID (an external Redis): what it adds to them.
  { name: 'the same without SecretsProvider (DynamoDB, ioredis, schemas, Logger)', contents: [DYNAMODB, IOREDIS, SCHEMAS, LOGGER].join(' ') },
  {
    name: "connect's own needs (DynamoDB, ioredis, SecretsProvider, jose, schemas, Logger)",
    contents: [DYNAMODB, IOREDIS, SECRETS, "export { jwtVerify, createRemoteJWKSet } from 'jose';", SCHEMAS, LOGGER].join(' '),
  },
  { name: "typing / sendMessage's own needs (DynamoDB, ioredis, SecretsProvider, SQS, poster, schemas, Logger)", contents: [DYNAMODB, IOREDIS, SECRETS, SQS, POSTER, SCHEMAS, LOGGER].join(' ') },
  {
    name: "fanoutWorker's own needs (DynamoDB, SecretsProvider, poster, Powertools batch, schemas, Logger)",
    contents: [DYNAMODB, SECRETS, POSTER, "export { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';", SCHEMAS, LOGGER].join(' '),
  },
];
const HANDLER_EXPORT = ' export const handler = async () => ({ statusCode: 200 });';
const PROFILED = ['typing'];

interface Target {
  name: string;
  bundle: Bundle;
  /** A fresh event per sample (ids must differ between samples). */
  event(sample: number): unknown;
  ok(result: unknown): boolean;
  nodeOptions: string;
}

interface Sample {
  loadMs: number;
  firstMs: number;
  error?: string;
  result?: unknown;
}

/**
 * Cold start: each handler bundled as the stack bundles it, then, in a fresh `node` process per sample, the time to
 * import the bundle plus its first invocation (the context built against this run's local servers), compared with
 * an empty handler measured the same way. Samples are interleaved across handlers so noise spreads evenly.
 */
export async function runColdStart(config: BenchConfig, bench: BenchBackend, progress: Progress): Promise<ColdResult> {
  const outdir = resultsPath('bundles');
  await rm(outdir, { recursive: true, force: true });
  const specs: FunctionSpec[] = [...routes, fanoutWorker];
  progress.start('cold start: bundling like the stack', specs.length + 2, 'bundles');
  let built = 0;
  const bundleAll = (target: string) =>
    Promise.all([
      bundleLikeTheStack('floor', { contents: FLOOR_SOURCE }, outdir, target),
      bundleLikeTheStack('reference', { contents: REFERENCE_SOURCE }, outdir, target),
      ...specs.map((spec) =>
        bundleLikeTheStack(spec.name, { entry: spec.entry }, outdir, target).then((bundle) => {
          built += 1;
          progress.update(built);
          return bundle;
        }),
      ),
    ]);
  let bundles = await bundleAll(STACK_TARGET);
  const dependencyBundles = await Promise.all(
    DEPENDENCIES.map((d, i) => bundleLikeTheStack(`dependency-${i}`, { contents: `${d.contents}${HANDLER_EXPORT}` }, outdir)),
  );
  progress.finish();
  const child = await buildChild();
  const world = await prepareWorld(bench);
  try {
    let target = STACK_TARGET;
    // The exact artifacts if this Node runs them; else the host's target (said in the report).
    const probe = await sample(child, world.env(STACK_NODE_OPTIONS), bundles[1]?.file ?? '', {}, config.cold.timeoutMs);
    if (probe.error !== undefined && /SyntaxError/.test(probe.error)) {
      target = `node${process.versions.node.split('.')[0] ?? '20'}`;
      bundles = await bundleAll(target);
    }
    const [floorBundle, referenceBundle, ...handlerBundles] = bundles;
    if (floorBundle === undefined || referenceBundle === undefined) throw new Error('the floor or reference bundle is missing');
    const floorTarget: Target = { name: 'floor', bundle: floorBundle, event: () => ({}), ok: () => true, nodeOptions: STACK_NODE_OPTIONS };
    const referenceTarget: Target = { name: REFERENCE, bundle: referenceBundle, event: () => ({}), ok: status200, nodeOptions: STACK_NODE_OPTIONS };
    const handlerTargets: Target[] = handlerBundles.map((bundle) => ({
      name: bundle.name,
      bundle,
      event: world.events.get(bundle.name) ?? (() => ({})),
      ok: world.checks.get(bundle.name) ?? (() => true),
      nodeOptions: STACK_NODE_OPTIONS,
    }));
    const targets = [floorTarget, referenceTarget, ...handlerTargets];
    // What --enable-source-maps costs: the floor and one handler once more without it.
    const plain: Target[] = [floorTarget, ...handlerTargets.filter((t) => t.name === 'typing')].map((t) => ({
      ...t,
      name: `${t.name}${NO_SOURCE_MAPS}`,
      nodeOptions: '',
    }));
    const dependencyTargets: Target[] = dependencyBundles.map((bundle, i) => ({
      name: DEPENDENCIES[i]?.name ?? bundle.name,
      bundle,
      event: () => ({}),
      ok: () => true,
      nodeOptions: STACK_NODE_OPTIONS,
    }));
    const all = [...targets, ...plain, ...dependencyTargets];
    const samples = new Map<string, Sample[]>(all.map((t) => [t.name, []]));
    const total = config.cold.samples * all.length;
    progress.start('cold start', total, 'processes');
    let done = 0;
    for (let round = 0; round < config.cold.samples; round += 1) {
      for (const t of all) {
        const s = await sample(child, world.env(t.nodeOptions), t.bundle.file, t.event(round), config.cold.timeoutMs);
        const failed = s.error ?? (t.ok(s.result) ? undefined : `unexpected result ${JSON.stringify(s.result).slice(0, 200)}`);
        samples.get(t.name)?.push(failed === undefined ? s : { ...s, error: failed });
        done += 1;
        progress.update(done);
      }
    }
    const referenceMs = summarize(referenceTarget, samples.get(referenceTarget.name) ?? [], 0, Number.NaN).totalMs;
    const rowOf = (t: Target, floorMs: number): ColdRow => summarize(t, samples.get(t.name) ?? [], floorMs, referenceMs);
    const floor = rowOf(floorTarget, 0);
    const reference = rowOf(referenceTarget, floor.totalMs);
    const rows = handlerTargets.map((t) => rowOf(t, floor.totalMs));
    const withoutSourceMaps = plain.map((t) => {
      const base = t.name.replace(NO_SOURCE_MAPS, '');
      const withMs = base === 'floor' ? floor.totalMs : (rows.find((r) => r.name === base)?.totalMs ?? Number.NaN);
      return { name: base, totalMs: rowOf(t, 0).totalMs, withMs };
    });
    const dependencies: DependencyCost[] = dependencyTargets.map((t) => {
      const row = rowOf(t, floor.totalMs);
      return { name: t.name, bytes: row.bytes, gzipBytes: row.gzipBytes, loadMs: row.loadMs, totalMs: row.totalMs, overFloorMs: round(row.loadMs - floor.loadMs, 1) };
    });
    const profiles: ColdProfile[] = [];
    for (const t of handlerTargets.filter((h) => PROFILED.includes(h.name))) {
      progress.note(`cold start: one CPU-profiled sample of ${t.name} (not counted)`);
      const file = resultsPath(`cold-${t.name}.cpuprofile`);
      const s = await sample(child, { ...world.env(t.nodeOptions), BENCH_PROFILE: file }, t.bundle.file, t.event(config.cold.samples), config.cold.timeoutMs);
      if (s.error === undefined) profiles.push({ name: t.name, summary: summarizeProfile(await readProfile(file), file, await bundleSourceMapper(t.bundle.file)) });
    }
    const worst = Math.max(...rows.map((r) => r.overReference));
    progress.finish(`worst handler: ${worst}× the reference (${reference.totalMs} ms)`);
    return {
      target,
      stackTarget: STACK_TARGET,
      node: process.version,
      nodeOptions: STACK_NODE_OPTIONS,
      floor,
      reference,
      rows,
      withoutSourceMaps,
      dependencies,
      profiles,
    };
  } finally {
    await world.close();
  }
}

function summarize(t: Target, samples: readonly Sample[], floorMs: number, referenceMs: number): ColdRow {
  const good = samples.filter((s) => s.error === undefined);
  const totals = good.map((s) => s.loadMs + s.firstMs);
  const failures = samples.filter((s) => s.error !== undefined);
  const totalMs = round(median(totals), 1);
  return {
    name: t.name,
    bytes: t.bundle.bytes,
    gzipBytes: t.bundle.gzipBytes,
    top: t.bundle.top,
    loadMs: round(median(good.map((s) => s.loadMs)), 1),
    firstMs: round(median(good.map((s) => s.firstMs)), 1),
    totalMs,
    totalP90Ms: round(percentile(totals, 90), 1),
    overFloorMs: round(totalMs - floorMs, 1),
    overReference: round(totalMs / referenceMs, 2),
    samples: good.length,
    failures: failures.length,
    ...(failures.length > 0 ? { lastFailure: failures[failures.length - 1]?.error } : {}),
  };
}

/** The sample runner, bundled for plain `node` so no loader sits between it and the handler bundle. */
async function buildChild(): Promise<string> {
  const file = resultsPath('cold-child.mjs');
  await build({
    entryPoints: [`${REPOSITORY_ROOT}/bench/scenarios/cold-child.ts`],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: `node${process.versions.node.split('.')[0] ?? '20'}`,
    outfile: file,
    logLevel: 'error',
  });
  return file;
}

function sample(child: string, env: NodeJS.ProcessEnv, bundle: string, event: unknown, timeoutMs: number): Promise<Sample> {
  const run = new Promise<Sample>((resolve) => {
    const proc = spawn(process.execPath, [child], {
      env: { ...env, BENCH_BUNDLE: bundle, BENCH_EVENT: JSON.stringify(event) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    proc.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
    });
    proc.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString('utf8');
    });
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.once('close', (code) => {
      clearTimeout(timer);
      resolve(parseSample(out, code, err));
    });
  });
  return withTimeout(run, timeoutMs + 5_000, 'cold-start sample');
}

function parseSample(out: string, code: number | null, err: string): Sample {
  const line = out.trim().split('\n').pop() ?? '';
  try {
    const parsed: unknown = JSON.parse(line);
    if (typeof parsed === 'object' && parsed !== null) {
      if ('error' in parsed && typeof parsed.error === 'string') return { loadMs: 0, firstMs: 0, error: parsed.error };
      if ('loadMs' in parsed && typeof parsed.loadMs === 'number' && 'firstMs' in parsed && typeof parsed.firstMs === 'number') {
        return { loadMs: parsed.loadMs, firstMs: parsed.firstMs, result: 'result' in parsed ? parsed.result : undefined };
      }
    }
  } catch {
    // Reported below with the exit code and stderr.
  }
  return { loadMs: 0, firstMs: 0, error: `exit ${String(code)}: ${err.trim().split('\n').slice(-3).join(' | ').slice(0, 300)}` };
}

interface World {
  env(nodeOptions: string): NodeJS.ProcessEnv;
  events: Map<string, (sample: number) => unknown>;
  checks: Map<string, (result: unknown) => boolean>;
  close(): Promise<void>;
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;
/** A route response with status 200 and no body (nothing to answer). */
const status200 = (result: unknown) => isRecord(result) && result.statusCode === 200 && result.body === undefined;
/** A route response whose body is a frame of this type. */
const answerType = (type: string) => (result: unknown) => isRecord(result) && typeof result.body === 'string' && result.body.includes(`"type":"${type}"`);

/**
 * What the first invocations act on: a conversation with a live sender (connected through $connect) and one live
 * member, and one stored message, so typing, sendMessage (its `sent` and the message) and the worker make real
 * posts through the gateway, and getUnacked / getHistory / the worker read a real log.
 */
async function prepareWorld(bench: BenchBackend): Promise<World> {
  const { backend } = bench;
  const conversationId = uniqueId('cold');
  await bench.addMembers(conversationId, ['cold-user', 'cold-listener']);
  const sockets = new SocketSet();
  await sockets.open([await bench.connectUrl(conversationId, 'cold-user', 'cold'), await bench.connectUrl(conversationId, 'cold-listener', 'd')], 1);
  const live = await bench.listConnections(conversationId);
  const senderId = live.find((r) => r.userId === 'cold-user')?.connectionId ?? '';
  const listenerId = live.find((r) => r.userId === 'cold-listener')?.connectionId ?? '';
  if (senderId === '' || listenerId === '') throw new Error('the cold-start sockets are not registered');
  const token = await bench.token('cold-user');
  const facts = (connectionId: string): ConnectionFacts => ({
    connectionId,
    connectedAt: Date.now(),
    identity: { sourceIp: '127.0.0.1', userAgent: 'cold-start-bench' },
    domainName: `127.0.0.1:${backend.port}`,
    stage: backend.stage,
    apiId: 'coldbench',
  });
  const frame = (route: string, body: Record<string, unknown>) => (i: number) =>
    messageEvent(facts(senderId), route, `req-${route}-${i}`, `msg-${i}`, Date.now(), JSON.stringify({ action: route, conversationId, ...body }));
  // One stored message for the worker's job to load (and for getUnacked / getHistory to read).
  const send = backend.functions.sendMessage;
  if (send === undefined) throw new Error('the backend has no sendMessage function');
  const stored: unknown = await send(frame('sendMessage', { clientMessageId: 'cold-seed', body: 'cold start seed' })(0));
  if (!status200(stored) && !answerType('sent')(stored)) throw new Error(`the seed message was not stored: ${JSON.stringify(stored).slice(0, 200)}`);
  const newest = await bench.db.send(
    new QueryCommand({ TableName: backend.tables.messages, KeyConditionExpression: 'conversationId = :c AND seq > :z', ExpressionAttributeValues: { ':c': conversationId, ':z': 0 }, ScanIndexForward: false, Limit: 1 }),
  );
  const seed = newest.Items?.[0];
  const seedSeq = seed?.seq;
  const seedId = seed?.messageId;
  if (typeof seedSeq !== 'number' || typeof seedId !== 'string') throw new Error('the seed message is not in the log');
  const events = new Map<string, (sample: number) => unknown>([
    [
      'connect',
      (i) =>
        connectEvent(
          facts(`cold-conn-${i}`),
          `req-connect-${i}`,
          Date.now(),
          headerMaps(['Host', `127.0.0.1:${backend.port}`], []),
          queryMaps(new URLSearchParams({ token, conversationId, clientId: `cold-${i}` }).toString()),
        ),
    ],
    ['disconnect', (i) => disconnectEvent(facts(`cold-conn-${i}`), `req-disconnect-${i}`, Date.now(), 1000, '')],
    ['default', (i) => messageEvent(facts(senderId), '$default', `req-default-${i}`, `msg-${i}`, Date.now(), '{"action":"nope"}')],
    // The sender subscribes again (idempotent); the unsubscribe names a conversation it is not in, so the others keep
    // their subscription.
    [
      'subscribe',
      (i) => messageEvent(facts(senderId), 'subscribe', `req-subscribe-${i}`, `msg-${i}`, Date.now(), JSON.stringify({ action: 'subscribe', conversationIds: [conversationId] })),
    ],
    [
      'unsubscribe',
      (i) => messageEvent(facts(senderId), 'unsubscribe', `req-unsubscribe-${i}`, `msg-${i}`, Date.now(), JSON.stringify({ action: 'unsubscribe', conversationIds: ['cold-other'] })),
    ],
    ['typing', frame('typing', {})],
    ['sendMessage', (i) => frame('sendMessage', { clientMessageId: `cold-${Date.now().toString(36)}-${i}`, body: 'cold start' })(i)],
    ['ack', frame('ack', { messageIds: ['not-a-message'] })],
    ['getUnacked', frame('getUnacked', {})],
    ['getHistory', frame('getHistory', { limit: 20 })],
    [
      'fanoutWorker',
      (i) => ({
        Records: [
          {
            messageId: `cold-${i}`,
            receiptHandle: `cold-${i}`,
            // A message job, as sendMessage enqueues above the threshold: the worker loads it from the log.
            body: JSON.stringify({ kind: 'message', endpoint: backend.managementEndpoint, conversationId, seq: seedSeq, messageId: seedId, connectionIds: [listenerId] }),
            attributes: { ApproximateReceiveCount: '1', SentTimestamp: String(Date.now()), SenderId: 'bench', ApproximateFirstReceiveTimestamp: String(Date.now()) },
            messageAttributes: {},
            md5OfBody: '',
            eventSource: 'aws:sqs',
            eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:cold-start-bench',
            awsRegion: 'us-east-1',
          },
        ],
      }),
    ],
  ]);
  const checks = new Map<string, (result: unknown) => boolean>([
    ['connect', status200],
    ['disconnect', status200],
    ['default', answerType('error')],
    ['typing', status200],
    // `sent` is posted to the sender's socket; the route answers it only if that post failed.
    ['sendMessage', (result) => status200(result) || answerType('sent')(result)],
    ['ack', answerType('acked')],
    ['getUnacked', answerType('unacked')],
    ['getHistory', answerType('history')],
    ['subscribe', answerType('subscribed')],
    ['unsubscribe', answerType('unsubscribed')],
    [
      'fanoutWorker',
      (result) =>
        typeof result === 'object' && result !== null && 'batchItemFailures' in result && Array.isArray(result.batchItemFailures) && result.batchItemFailures.length === 0,
    ],
  ]);
  const base: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ...backend.env,
    LOG_LEVEL: 'SILENT',
    // Every sample's $connect is a new connection of the same user (none of them ever closes).
    MAX_CONNECTIONS_PER_USER: '100000',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  return {
    env: (nodeOptions) => ({ ...base, NODE_OPTIONS: nodeOptions }),
    events,
    checks,
    close: () => sockets.close(),
  };
}

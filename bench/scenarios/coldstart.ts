import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { build } from 'esbuild';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
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
  /** totalMs ÷ the DynamoDB document client alone, bundled and timed the same way (every route but $default needs it). */
  overDocumentClient: number;
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

/** The name of the dependency that is the second reference of every row. */
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
  rows: ColdRow[];
  /** The same samples without --enable-source-maps, for the floor and one handler: what the flag costs. */
  withoutSourceMaps: { name: string; totalMs: number; withMs: number }[];
  dependencies: DependencyCost[];
  /** One extra sample per profiled handler, CPU-profiled and mapped through the bundle's source map. */
  profiles: ColdProfile[];
}

/** Each dependency of the shared context alone, re-exported so nothing is tree-shaken away. */
const DEPENDENCIES: readonly { name: string; contents: string }[] = [
  { name: "zod/mini + the app's schemas", contents: "export * from './lambdas/protocol.ts'; export * from './lambdas/config.ts';" },
  { name: 'jose', contents: "export { jwtVerify, createRemoteJWKSet } from 'jose';" },
  { name: 'Powertools Logger', contents: "export { Logger } from '@aws-lambda-powertools/logger';" },
  { name: 'ioredis', contents: "export { Redis, Cluster } from 'ioredis';" },
  {
    name: DOCUMENT_CLIENT,
    contents:
      "export { DynamoDBClient } from '@aws-sdk/client-dynamodb'; export { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, DeleteCommand } from '@aws-sdk/lib-dynamodb';",
  },
  { name: 'SQS client', contents: "export { SQSClient, SendMessageBatchCommand } from '@aws-sdk/client-sqs';" },
  {
    name: 'Management API client',
    contents:
      "export { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi'; export { NodeHttpHandler } from '@smithy/node-http-handler';",
  },
  { name: 'Powertools SecretsProvider', contents: "export { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';" },
  { name: 'Management API poster (SigV4 signer)', contents: "export { ManagementApiPoster } from './lambdas/adapters/management-poster.ts';" },
  {
    name: "typing's own needs (DynamoDB, ioredis, poster, schemas, Logger)",
    contents: [
      "export { DynamoDBClient } from '@aws-sdk/client-dynamodb';",
      "export { DynamoDBDocumentClient, GetCommand, QueryCommand, DeleteCommand } from '@aws-sdk/lib-dynamodb';",
      "export { Redis, Cluster } from 'ioredis';",
      "export { ManagementApiPoster } from './lambdas/adapters/management-poster.ts';",
      "export * from './lambdas/protocol.ts'; export * from './lambdas/config.ts';",
      "export { Logger } from '@aws-lambda-powertools/logger';",
    ].join(' '),
  },
  {
    name: "disconnect's own needs (DynamoDB, schemas, Logger)",
    contents: [
      "export { DynamoDBClient } from '@aws-sdk/client-dynamodb';",
      "export { DynamoDBDocumentClient, DeleteCommand } from '@aws-sdk/lib-dynamodb';",
      "export * from './lambdas/proxy-event.ts'; export * from './lambdas/config.ts';",
      "export { Logger } from '@aws-lambda-powertools/logger';",
    ].join(' '),
  },
  {
    name: 'all four SDK clients together',
    contents: [
      "export { DynamoDBClient } from '@aws-sdk/client-dynamodb';",
      "export { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, DeleteCommand } from '@aws-sdk/lib-dynamodb';",
      "export { SQSClient, SendMessageBatchCommand } from '@aws-sdk/client-sqs';",
      "export { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';",
      "export { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';",
    ].join(' '),
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
  progress.start('cold start: bundling like the stack', specs.length + 1, 'bundles');
  let built = 0;
  const bundleAll = (target: string) =>
    Promise.all([
      bundleLikeTheStack('floor', { contents: FLOOR_SOURCE }, outdir, target),
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
    const probe = await sample(child, world.env(STACK_NODE_OPTIONS), bundles[1]?.file ?? '', world.events.get('connect')?.(0) ?? {}, config.cold.timeoutMs);
    if (probe.error !== undefined && /SyntaxError/.test(probe.error)) {
      target = `node${process.versions.node.split('.')[0] ?? '20'}`;
      bundles = await bundleAll(target);
    }
    const [floorBundle, ...handlerBundles] = bundles;
    if (floorBundle === undefined) throw new Error('the floor bundle is missing');
    const floorTarget: Target = { name: 'floor', bundle: floorBundle, event: () => ({}), ok: () => true, nodeOptions: STACK_NODE_OPTIONS };
    const handlerTargets: Target[] = handlerBundles.map((bundle) => ({
      name: bundle.name,
      bundle,
      event: world.events.get(bundle.name) ?? (() => ({})),
      ok: world.checks.get(bundle.name) ?? (() => true),
      nodeOptions: STACK_NODE_OPTIONS,
    }));
    const targets = [floorTarget, ...handlerTargets];
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
    const documentClient = dependencyTargets.find((t) => t.name === DOCUMENT_CLIENT);
    const referenceMs = documentClient === undefined ? Number.NaN : summarize(documentClient, samples.get(documentClient.name) ?? [], 0, Number.NaN).totalMs;
    const rowOf = (t: Target, floorMs: number): ColdRow => summarize(t, samples.get(t.name) ?? [], floorMs, referenceMs);
    const floor = rowOf(floorTarget, 0);
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
    const worst = Math.max(...rows.map((r) => r.overFloorMs));
    progress.finish(`worst handler: floor + ${round(worst, 0)} ms`);
    return {
      target,
      stackTarget: STACK_TARGET,
      node: process.version,
      nodeOptions: STACK_NODE_OPTIONS,
      floor,
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
    overDocumentClient: round(totalMs / referenceMs, 2),
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

/**
 * What the first invocations act on: a conversation with a registered sender row (as after $connect) and one
 * live member, so typing, sendMessage and the worker make real posts through the gateway.
 */
async function prepareWorld(bench: BenchBackend): Promise<World> {
  const { backend } = bench;
  const conversationId = uniqueId('cold');
  await bench.addMembers(conversationId, ['cold-user', 'cold-listener']);
  const senderId = `cold-sender-${Date.now().toString(36)}`;
  const now = Date.now();
  await bench.db.send(
    new PutCommand({
      TableName: backend.tables.connections,
      Item: { connectionId: senderId, userId: 'cold-user', deviceId: 'cold', conversationId, connectedAt: now, expiresAt: Math.floor(now / 1000) + 3600 },
    }),
  );
  const listener = new SocketSet();
  await listener.open([await bench.connectUrl(conversationId, 'cold-listener', 'd')], 1);
  const listenerId = (await bench.listConnections(conversationId)).find((r) => r.userId === 'cold-listener')?.connectionId ?? '';
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
  const answerType = (type: string) => (result: unknown) =>
    typeof result === 'object' && result !== null && 'body' in result && typeof result.body === 'string' && result.body.includes(`"type":"${type}"`);
  const status200 = (result: unknown) =>
    typeof result === 'object' && result !== null && 'statusCode' in result && result.statusCode === 200 && !('body' in result && result.body !== undefined);
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
    ['typing', frame('typing', {})],
    ['sendMessage', (i) => frame('sendMessage', { clientMessageId: `cold-${Date.now().toString(36)}-${i}`, body: 'cold start' })(i)],
    ['ack', frame('ack', { messageIds: ['not-a-message'] })],
    ['getUnacked', frame('getUnacked', {})],
    [
      'fanoutWorker',
      (i) => ({
        Records: [
          {
            messageId: `cold-${i}`,
            receiptHandle: `cold-${i}`,
            body: JSON.stringify({
              kind: 'frame',
              endpoint: backend.managementEndpoint,
              frame: JSON.stringify({ type: 'typing', conversationId, userId: 'cold-user', state: 'start', at: Date.now() }),
              connectionIds: [listenerId],
            }),
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
    ['sendMessage', answerType('sent')],
    ['ack', answerType('acked')],
    ['getUnacked', answerType('unacked')],
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
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  return {
    env: (nodeOptions) => ({ ...base, NODE_OPTIONS: nodeOptions }),
    events,
    checks,
    close: () => listener.close(),
  };
}

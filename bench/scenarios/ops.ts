import { randomUUID } from 'node:crypto';
import { DynamoDBClient, ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { connectionsTable } from '../../deploy/tables.js';
import { MEMORY_MB } from '../../lib/relay-stack.js';
import { messageEvent, type ConnectionFacts } from '../../local/gateway/events.js';
import { spawnRedis } from '../../local/redis-server.js';
import { ensureTables } from '../../local/tables.js';
import type { BenchConfig } from '../config.js';
import { BenchBackend, LOCAL_CREDENTIALS } from '../lib/backend.js';
import { DynamoCountingProxy, type DynamoCounts } from '../lib/dynamo-proxy.js';
import { mapLimit, now, pollUntil } from '../lib/limit.js';
import { PRICES, costPerMillion, itemBytes, scanReadUnits, type CostPerMillion } from '../lib/prices.js';
import type { Progress } from '../lib/progress.js';
import { RedisCommandCounter, type RedisCounts } from '../lib/redis-monitor.js';
import type { ServiceProcess } from '../lib/services.js';
import { SocketSet } from '../lib/sockets.js';
import { median, round } from '../lib/stats.js';

type FrameHandler = (event: unknown) => Promise<{ statusCode: number; body?: string }>;

/** A function of the bench backend, invoked directly (as `aws lambda invoke` would), answering a route response. */
function invoker(bench: BenchBackend, name: string): FrameHandler {
  return async (event) => {
    const invoke = bench.backend.functions[name];
    if (invoke === undefined) throw new TypeError(`the backend has no function ${name}`);
    const result: unknown = await invoke(event);
    if (typeof result !== 'object' || result === null || !('statusCode' in result) || typeof result.statusCode !== 'number') {
      throw new TypeError(`${name} did not answer a route response`);
    }
    return { statusCode: result.statusCode, ...('body' in result && typeof result.body === 'string' ? { body: result.body } : {}) };
  };
}

export interface OpsRow {
  route: 'typing' | 'sendMessage';
  members: number;
  /** Connections posted to (every other member's, one device each). */
  recipients: number;
  dynamo: DynamoCounts;
  registryQueries: number;
  scans: number;
  redis: RedisCounts;
  posts: number;
  gatewayMessages: number;
  /** Median duration of the handler here (local servers), ms. */
  durationMs: number;
  /** True when every repeat made exactly the same calls. */
  steady: boolean;
  cost: CostPerMillion;
  /** The same event with the registry Query replaced by a Scan of the whole connections table (AWS's simple chat sample). */
  scanCost: CostPerMillion;
}

export interface OpsResult {
  memoryMb: number;
  prices: typeof PRICES;
  rows: OpsRow[];
  scan: {
    tableRows: number;
    bytesPerRow: number;
    readUnits: number;
    /** dynalite's own count for a Scan of a smaller table of the same rows, against the formula. */
    check: { rows: number; measured: number; computed: number };
  };
  getUnacked: {
    pending: number;
    pageLimit: number;
    /** One getUnacked frame (the first page). */
    roundTrips: number;
    byCommand: Record<string, number>;
    scriptCommands: number;
    dynamo: DynamoCounts;
    messages: number;
    hasMore: boolean;
    /** Frames (each one Redis round trip) to read all of them. */
    pagesToDrain: number;
    roundTripsToDrain: number;
  };
  /** For scale: connection time is billed apart from events. */
  connectionMinutes: { members: number; hoursPerDay: number; days: number; dollars: number }[];
}

/**
 * Operations and cost per event: the typing and sendMessage handlers invoked once per sample on a warm container
 * (as a frame after the first), with DynamoDB calls and capacity counted by a proxy in front of dynalite, Redis
 * commands by MONITOR on a dedicated redis-server, and Management API posts by the gateway's log.
 */
export async function runOps(config: BenchConfig, services: ServiceProcess, progress: Progress): Promise<OpsResult> {
  const proxy = await DynamoCountingProxy.start(services.dynamodbEndpoint);
  const redis = await spawnRedis();
  const monitor = await RedisCommandCounter.start(redis.url);
  const posts = { counting: false, count: 0 };
  let bench: BenchBackend | undefined;
  try {
    bench = await BenchBackend.start({
      stage: 'ops',
      dynamodbEndpoint: proxy.endpoint,
      sqsEndpoint: services.sqsEndpoint,
      redisUrl: redis.url,
      gateway: {
        log: (entry) => {
          if (posts.counting && entry.event === 'management_request' && entry.method === 'POST') posts.count += 1;
        },
      },
    });
    const counted = async (invoke: () => Promise<unknown>) => {
      proxy.reset();
      monitor.reset();
      posts.count = 0;
      proxy.counting = true;
      monitor.counting = true;
      posts.counting = true;
      const started = now();
      const result = await invoke();
      const durationMs = now() - started;
      const redisCounts = await monitor.settle();
      proxy.counting = false;
      monitor.counting = false;
      posts.counting = false;
      return { result, durationMs, dynamo: proxy.snapshot(), redis: redisCounts, posts: posts.count };
    };
    const rows: OpsRow[] = [];
    let bytesPerRow = 0;
    for (const members of config.ops.sizes) {
      const room = await openRoom(bench, members);
      try {
        const row = await bench.registry.get(room.actorId);
        if (row !== undefined) bytesPerRow = Math.max(bytesPerRow, itemBytes({ ...row }));
        const frames = {
          typing: (i: number) => event(room, 'typing', i, {}),
          sendMessage: (i: number) => event(room, 'sendMessage', i, { clientMessageId: randomUUID(), body: 'hello, how are you?' }),
        };
        const handlers: Record<OpsRow['route'], FrameHandler> = { typing: invoker(bench, 'typing'), sendMessage: invoker(bench, 'sendMessage') };
        // Warm: the context is built and this connection's binding is known to the container.
        for (const route of ['typing', 'sendMessage'] as const) await handlers[route](frames[route](-1));
        for (const route of ['typing', 'sendMessage'] as const) {
          progress.start(`ops ${route} N=${members}`, config.ops.repeats, 'events');
          const samples: Awaited<ReturnType<typeof counted>>[] = [];
          for (let i = 0; i < config.ops.repeats; i += 1) {
            samples.push(await counted(() => handlers[route](frames[route](i))));
            progress.update(i + 1);
          }
          const first = samples[0];
          if (first === undefined) continue;
          const steady = samples.every((s) => JSON.stringify([s.dynamo.calls, s.redis.byCommand, s.posts]) === JSON.stringify([first.dynamo.calls, first.redis.byCommand, first.posts]));
          const durationMs = round(median(samples.map((s) => s.durationMs)), 2);
          const gatewayMessages = 1 + (route === 'sendMessage' ? 1 : 0) + first.posts;
          const counts = { gatewayMessages, invocations: 1, durationMs, memoryMb: MEMORY_MB, readUnits: first.dynamo.readUnits, writeUnits: first.dynamo.writeUnits };
          const queryUnits = first.dynamo.unitsByOperation.Query ?? 0;
          const scanUnits = scanReadUnits(config.ops.scanTableRows, bytesPerRow);
          rows.push({
            route,
            members,
            recipients: members - 1,
            dynamo: first.dynamo,
            registryQueries: first.dynamo.calls.Query ?? 0,
            scans: first.dynamo.calls.Scan ?? 0,
            redis: first.redis,
            posts: first.posts,
            gatewayMessages,
            durationMs,
            steady,
            cost: costPerMillion(counts),
            scanCost: costPerMillion({ ...counts, readUnits: counts.readUnits - queryUnits + scanUnits }),
          });
          progress.finish(`${first.dynamo.calls.Query ?? 0} query, ${first.dynamo.calls.Scan ?? 0} scan, ${first.redis.roundTrips} Redis, ${first.posts} posts`);
        }
      } finally {
        await room.close();
      }
    }
    const getUnacked = await measureGetUnacked(bench, config.ops.pending, counted, progress);
    const scan = await checkScan(services.dynamodbEndpoint, config.ops.scanTableRows, bytesPerRow);
    return {
      memoryMb: MEMORY_MB,
      prices: PRICES,
      rows,
      scan: { tableRows: config.ops.scanTableRows, bytesPerRow, readUnits: scanReadUnits(config.ops.scanTableRows, bytesPerRow), check: scan },
      getUnacked,
      connectionMinutes: [2, 10, 100].map((members) => ({
        members,
        hoursPerDay: 8,
        days: 30,
        dollars: round((members * 8 * 60 * 30 * PRICES.apiGatewayPerMillionConnectionMinutes) / 1e6, 4),
      })),
    };
  } finally {
    await bench?.close();
    monitor.close();
    await redis.stop();
    await proxy.close();
  }
}

interface Room {
  conversationId: string;
  actorId: string;
  facts: ConnectionFacts;
  close(): Promise<void>;
}

/** A conversation of `members` users (UUID ids, as real JWT subjects often are), each with one live device. */
async function openRoom(bench: BenchBackend, members: number): Promise<Room> {
  const conversationId = randomUUID();
  const actor = randomUUID();
  const others = Array.from({ length: members - 1 }, () => randomUUID());
  await bench.addMembers(conversationId, [actor, ...others]);
  const sockets = new SocketSet();
  const urls = await Promise.all([actor, ...others].map((user) => bench.connectUrl(conversationId, user, randomUUID())));
  await sockets.open(urls, 16);
  const actorId = (await bench.listConnections(conversationId)).find((r) => r.userId === actor)?.connectionId ?? '';
  return {
    conversationId,
    actorId,
    facts: {
      connectionId: actorId,
      connectedAt: Date.now(),
      identity: { sourceIp: '127.0.0.1' },
      domainName: `127.0.0.1:${bench.backend.port}`,
      stage: bench.backend.stage,
      apiId: 'opsbench',
    },
    close: async () => {
      await sockets.close();
      await pollUntil(async () => (await bench.listConnections(conversationId)).length === 0, 30_000, 50);
    },
  };
}

function event(room: Room, route: string, i: number, fields: Record<string, unknown>): unknown {
  return messageEvent(room.facts, route, `ops-${route}-${i}`, `ops-msg-${i}`, Date.now(), JSON.stringify({ action: route, conversationId: room.conversationId, ...fields }));
}

type Counted = <T>(invoke: () => Promise<T>) => Promise<{ result: unknown; dynamo: DynamoCounts; redis: RedisCounts; posts: number; durationMs: number }>;

/** A device offline while `pending` messages were sent, back online: what its getUnacked frames cost. */
async function measureGetUnacked(bench: BenchBackend, pending: number, counted: Counted, progress: Progress): Promise<OpsResult['getUnacked']> {
  const conversationId = randomUUID();
  const writer = randomUUID();
  const reader = randomUUID();
  const readerDevice = randomUUID();
  await bench.addMembers(conversationId, [writer, reader]);
  const readerUrl = await bench.connectUrl(conversationId, reader, readerDevice);
  const offline = new SocketSet();
  await offline.open([readerUrl], 1);
  await offline.close();
  await pollUntil(async () => (await bench.listConnections(conversationId)).length === 0, 10_000, 20);
  const writerSocket = new SocketSet();
  await writerSocket.open([await bench.connectUrl(conversationId, writer, randomUUID())], 1);
  const facts = async (userId: string): Promise<ConnectionFacts> => ({
    connectionId: (await bench.listConnections(conversationId)).find((r) => r.userId === userId)?.connectionId ?? '',
    connectedAt: Date.now(),
    identity: { sourceIp: '127.0.0.1' },
    domainName: `127.0.0.1:${bench.backend.port}`,
    stage: bench.backend.stage,
    apiId: 'opsbench',
  });
  const writerFacts = await facts(writer);
  progress.start(`ops getUnacked: sending ${pending} messages to an offline device`, pending, 'messages');
  let sent = 0;
  await mapLimit(Array.from({ length: pending }, (_, i) => i), 16, async (i) => {
    const body = JSON.stringify({ action: 'sendMessage', conversationId, clientMessageId: `p-${i}`, body: `pending message ${i}` });
    await invoker(bench, 'sendMessage')(messageEvent(writerFacts, 'sendMessage', `seed-${i}`, `seed-${i}`, Date.now(), body));
    sent += 1;
    if (sent % 50 === 0) progress.update(sent);
  });
  progress.update(pending);
  progress.finish();
  const online = new SocketSet();
  await online.open([readerUrl], 1);
  const readerFacts = await facts(reader);
  const page = (afterSeq: number | undefined, i: number) =>
    messageEvent(readerFacts, 'getUnacked', `unacked-${i}`, `unacked-${i}`, Date.now(), JSON.stringify({ action: 'getUnacked', conversationId, limit: 100, ...(afterSeq === undefined ? {} : { afterSeq }) }));
  try {
    const first = await counted(() => invoker(bench, 'getUnacked')(page(undefined, 0)));
    const answer = parseUnacked(first.result);
    let pages = 1;
    let roundTrips = first.redis.roundTrips;
    let last = answer;
    // Bounded: at most one page per 100 pending messages, plus one.
    while (last.hasMore && pages <= pending / 100 + 1) {
      const next = await counted(() => invoker(bench, 'getUnacked')(page(last.lastSeq, pages)));
      last = parseUnacked(next.result);
      pages += 1;
      roundTrips += next.redis.roundTrips;
    }
    return {
      pending,
      pageLimit: 100,
      roundTrips: first.redis.roundTrips,
      byCommand: first.redis.byCommand,
      scriptCommands: first.redis.scriptCommands,
      dynamo: first.dynamo,
      messages: answer.count,
      hasMore: answer.hasMore,
      pagesToDrain: pages,
      roundTripsToDrain: roundTrips,
    };
  } finally {
    await online.close();
    await writerSocket.close();
  }
}

function parseUnacked(result: unknown): { count: number; hasMore: boolean; lastSeq: number | undefined } {
  const body = typeof result === 'object' && result !== null && 'body' in result && typeof result.body === 'string' ? result.body : '{}';
  const frame: unknown = JSON.parse(body);
  if (typeof frame !== 'object' || frame === null || !('messages' in frame) || !Array.isArray(frame.messages)) {
    throw new Error(`getUnacked did not answer unacked: ${body.slice(0, 200)}`);
  }
  const seqs = frame.messages.flatMap((m: unknown) => (typeof m === 'object' && m !== null && 'seq' in m && typeof m.seq === 'number' ? [m.seq] : []));
  return { count: seqs.length, hasMore: 'hasMore' in frame && frame.hasMore === true, lastSeq: seqs.length === 0 ? undefined : Math.max(...seqs) };
}

/** dynalite's consumed capacity for a Scan of a table of such rows, against the formula used for 10,000 rows. */
async function checkScan(endpoint: string, tableRows: number, bytesPerRow: number): Promise<OpsResult['scan']['check']> {
  const rows = Math.min(1_000, tableRows);
  const client = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: LOCAL_CREDENTIALS });
  const db = DynamoDBDocumentClient.from(client);
  const table = `relay-ops-scan-${Date.now().toString(36)}`;
  try {
    await ensureTables(client, { [table]: connectionsTable });
    const conversationId = randomUUID();
    const items = Array.from({ length: rows }, (_, i) => ({
      connectionId: `${randomUUID().replace(/-/g, '').slice(0, 15)}=`.slice(0, 16),
      userId: randomUUID(),
      deviceId: randomUUID(),
      conversationId,
      connectedAt: 1_764_000_000_000 + i,
      expiresAt: 1_764_010_000 + i,
    }));
    for (let start = 0; start < items.length; start += 25) {
      await db.send(new BatchWriteCommand({ RequestItems: { [table]: items.slice(start, start + 25).map((Item) => ({ PutRequest: { Item } })) } }));
    }
    let measured = 0;
    let startKey: Record<string, AttributeValue> | undefined;
    for (let page = 0; page < 100; page += 1) {
      const out = await client.send(new ScanCommand({ TableName: table, ReturnConsumedCapacity: 'TOTAL', ExclusiveStartKey: startKey }));
      measured += out.ConsumedCapacity?.CapacityUnits ?? 0;
      startKey = out.LastEvaluatedKey;
      if (startKey === undefined) break;
    }
    const sampleBytes = items[0] === undefined ? bytesPerRow : itemBytes(items[0]);
    return { rows, measured, computed: scanReadUnits(rows, sampleBytes) };
  } finally {
    db.destroy();
  }
}

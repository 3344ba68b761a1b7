import { randomUUID } from 'node:crypto';
import { DynamoDBClient, ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { connectionsTable } from '../../deploy/tables.js';
import { MEMORY_MB } from '../../lib/relay-stack.js';
import { messageEvent, type ConnectionFacts } from '../../local/gateway/events.js';
import { ensureTables } from '../../local/tables.js';
import type { BenchConfig } from '../config.js';
import { BenchBackend, LOCAL_CREDENTIALS } from '../lib/backend.js';
import { startCountedBench, type CountedBench, type CountedSample } from '../lib/counted-bench.js';
import type { DynamoCounts } from '../lib/dynamo-proxy.js';
import { mapLimit, pollUntil } from '../lib/limit.js';
import {
  DYNAMO_ITEM_OVERHEAD_BYTES,
  DYNAMO_REQUEST_PRICES_ASKED,
  DYNAMO_REQUEST_PRICES_NOW,
  PRICES,
  costPerMillion,
  dynamoStoragePerMillion,
  itemBytes,
  scanReadUnits,
  type CostPerMillion,
  type DynamoRequestPrices,
  type EventCounts,
} from '../lib/prices.js';
import type { Progress } from '../lib/progress.js';
import type { RedisCounts } from '../lib/redis-monitor.js';
import type { ServiceProcess } from '../lib/services.js';
import { SocketSet } from '../lib/sockets.js';
import { median, round } from '../lib/stats.js';

type FrameHandler = (event: unknown) => Promise<{ statusCode: number; body?: string }>;

/** A chat-sized body, as the other scenarios send. */
const BODY = 'hello, how are you? '.repeat(6).trim();
/** How long the message and its idempotency item are assumed kept, for storage (days). */
const MESSAGE_DAYS = 30.4;
const IDEMPOTENCY_DAYS = 7;

/** A function of the bench backend, invoked directly (as `aws lambda invoke` would), answering a route response. */
export function invoker(bench: BenchBackend, name: string): FrameHandler {
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

export const OPS_ROUTES = ['typing', 'sendMessage', 'getUnacked', 'ack', 'getHistory', 'editMessage', 'deleteMessage', 'ping', 'getPresence'] as const;
export type OpsRoute = (typeof OPS_ROUTES)[number];

export interface OpsRow {
  route: OpsRoute;
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
  /** What the frame read (getUnacked / getHistory: messages in the answer). */
  note: string;
  /** Dollars per million events at the current DynamoDB request prices. */
  cost: CostPerMillion;
  /** typing / sendMessage: the same event with the registry Query replaced by a Scan of the whole connections table. */
  scanCost?: CostPerMillion;
}

/** Bytes of what a message leaves in DynamoDB (item size as DynamoDB counts it, plus its 100 B overhead each). */
export interface StoredBytes {
  /** The log item (sealed body and its fields). */
  messageItem: number;
  /** Its entry in the messageId index (KEYS_ONLY). */
  messageIndexEntry: number;
  idempotencyItem: number;
}

/** Dollars per million messages in a conversation of N members: the send, every recipient's ack, storage. */
export interface MessageCost {
  members: number;
  /** One sendMessage plus one ack by each of the N − 1 recipients (one device each, acking each message). */
  apiGateway: number;
  lambda: number;
  /** DynamoDB requests at the prices the comparison is asked in ($1.25 / $0.25 per million WRU / RRU). */
  dynamoRequestsAsked: number;
  /** The same requests at the current list price ($0.625 / $0.125). */
  dynamoRequestsNow: number;
  /** The message item and index entry kept a month, the idempotency item 7 days. */
  storage: number;
  total: number;
  totalNow: number;
}

export interface ContentionResult {
  inFlight: number;
  messages: number;
  /** Per message, one at a time vs `inFlight` at once into one conversation. */
  alone: { dynamoCalls: number; writeUnits: number; readUnits: number; byOperation: Record<string, number> };
  contended: {
    dynamoCalls: number;
    writeUnits: number;
    /**
     * With the failed conditional writes, which DynamoDB bills (1 WRU each for items this small) but dynalite
     * reports no capacity for.
     */
    writeUnitsBilled: number;
    readUnits: number;
    byOperation: Record<string, number>;
    failures: Record<string, number>;
    errors: Record<string, number>;
    msPerMessage: number;
  };
}

export interface OpsResult {
  memoryMb: number;
  prices: typeof PRICES;
  rows: OpsRow[];
  stored: StoredBytes;
  messageCosts: MessageCost[];
  contention: ContentionResult | undefined;
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
    /** Frames to read all of them, and what they took together. */
    pagesToDrain: number;
    roundTripsToDrain: number;
    dynamoCallsToDrain: number;
    readUnitsToDrain: number;
    /** getHistory of the same conversation: the newest full page. */
    history: { limit: number; messages: number; hasMore: boolean; dynamo: DynamoCounts; redisRoundTrips: number };
  };
  /** For scale: connection time is billed apart from events. */
  connectionMinutes: { members: number; hoursPerDay: number; days: number; dollars: number }[];
}

type Sample = CountedSample;
type Counted = CountedBench['counted'];

/**
 * Operations and cost per event: each route invoked once per sample on a warm container (as a frame after the
 * first), with DynamoDB calls and capacity counted by a proxy in front of dynalite, Redis commands by MONITOR on a
 * dedicated redis-server, and Management API posts by the gateway's log.
 */
export async function runOps(config: BenchConfig, services: ServiceProcess, progress: Progress): Promise<OpsResult> {
  let counting: CountedBench | undefined;
  try {
    counting = await startCountedBench('ops', services);
    const { bench, counted } = counting;
    const rows: OpsRow[] = [];
    let bytesPerRow = 0;
    let stored: StoredBytes = { messageItem: 0, messageIndexEntry: 0, idempotencyItem: 0 };
    let contention: ContentionResult | undefined;
    for (const members of config.ops.sizes) {
      const room = await openRoom(bench, members);
      try {
        const row = await bench.registry.subscription(room.actor.connectionId, room.conversationId);
        if (row !== undefined) bytesPerRow = Math.max(bytesPerRow, itemBytes({ ...row }));
        const measured = await measureRoom(bench, room, config, counted, progress);
        rows.push(...measured.rows);
        stored = measured.stored;
        if (members === Math.min(...config.ops.sizes) && config.ops.contention.inFlight > 1) {
          contention = await measureContention(bench, room, config.ops.contention, counted, progress);
        }
      } finally {
        await room.close();
      }
    }
    const scanUnits = scanReadUnits(config.ops.scanTableRows, bytesPerRow);
    for (const row of rows) {
      if (row.route !== 'typing' && row.route !== 'sendMessage') continue;
      const queryUnits = row.dynamo.unitsByOperation.Query ?? 0;
      row.scanCost = costPerMillion({ ...countsOf(row), readUnits: row.dynamo.readUnits - queryUnits + scanUnits });
    }
    const getUnacked = await measureGetUnacked(bench, config.ops.pending, counted, progress);
    const scan = await checkScan(services.dynamodbEndpoint, config.ops.scanTableRows, bytesPerRow);
    return {
      memoryMb: MEMORY_MB,
      prices: PRICES,
      rows,
      stored,
      messageCosts: config.ops.sizes.flatMap((members) => {
        const cost = messageCost(rows, members, stored);
        return cost === undefined ? [] : [cost];
      }),
      contention,
      scan: { tableRows: config.ops.scanTableRows, bytesPerRow, readUnits: scanUnits, check: scan },
      getUnacked,
      connectionMinutes: [2, 10, 100].map((members) => ({
        members,
        hoursPerDay: 8,
        days: 30,
        dollars: round((members * 8 * 60 * 30 * PRICES.apiGatewayPerMillionConnectionMinutes) / 1e6, 4),
      })),
    };
  } finally {
    await counting?.close();
  }
}

function countsOf(row: OpsRow): EventCounts {
  return { gatewayMessages: row.gatewayMessages, invocations: 1, durationMs: row.durationMs, memoryMb: MEMORY_MB, readUnits: row.dynamo.readUnits, writeUnits: row.dynamo.writeUnits };
}

/** One sendMessage and an ack by each recipient, plus storage: dollars per million messages. */
function messageCost(rows: readonly OpsRow[], members: number, stored: StoredBytes): MessageCost | undefined {
  const send = rows.find((r) => r.route === 'sendMessage' && r.members === members);
  const ack = rows.find((r) => r.route === 'ack' && r.members === members);
  if (send === undefined || ack === undefined) return undefined;
  const acks = members - 1;
  const parts = (prices: DynamoRequestPrices) => {
    const a = costPerMillion(countsOf(send), prices);
    const b = costPerMillion(countsOf(ack), prices);
    return {
      apiGateway: a.apiGateway + acks * b.apiGateway,
      lambda: a.lambdaRequests + a.lambdaCompute + acks * (b.lambdaRequests + b.lambdaCompute),
      dynamo: a.dynamo + acks * b.dynamo,
    };
  };
  const asked = parts(DYNAMO_REQUEST_PRICES_ASKED);
  const current = parts(DYNAMO_REQUEST_PRICES_NOW);
  const storage =
    dynamoStoragePerMillion(stored.messageItem + stored.messageIndexEntry, MESSAGE_DAYS) + dynamoStoragePerMillion(stored.idempotencyItem, IDEMPOTENCY_DAYS);
  return {
    members,
    apiGateway: asked.apiGateway,
    lambda: asked.lambda,
    dynamoRequestsAsked: asked.dynamo,
    dynamoRequestsNow: current.dynamo,
    storage,
    total: asked.apiGateway + asked.lambda + asked.dynamo + storage,
    totalNow: current.apiGateway + current.lambda + current.dynamo + storage,
  };
}

interface Member {
  userId: string;
  deviceId: string;
  connectionId: string;
  facts: ConnectionFacts;
}

interface Room {
  conversationId: string;
  actor: Member;
  /** The first other member: acks, reads pending and history. */
  reader: Member;
  members: number;
  close(): Promise<void>;
}

/** A conversation of `members` users (UUID ids, as real JWT subjects often are), each with one live device. */
async function openRoom(bench: BenchBackend, members: number): Promise<Room> {
  const conversationId = randomUUID();
  const users = Array.from({ length: members }, () => ({ userId: randomUUID(), deviceId: randomUUID() }));
  await bench.addMembers(
    conversationId,
    users.map((u) => u.userId),
  );
  const sockets = new SocketSet();
  const urls = await Promise.all(users.map((u) => bench.connectUrl(conversationId, u.userId, u.deviceId)));
  await sockets.open(urls, 16);
  const rows = await bench.listConnections(conversationId);
  const member = (index: number): Member => {
    const user = users[index] ?? users[0];
    const connectionId = rows.find((r) => r.userId === user?.userId)?.connectionId ?? '';
    return {
      userId: user?.userId ?? '',
      deviceId: user?.deviceId ?? '',
      connectionId,
      facts: {
        connectionId,
        connectedAt: Date.now(),
        identity: { sourceIp: '127.0.0.1' },
        domainName: `127.0.0.1:${bench.backend.port}`,
        stage: bench.backend.stage,
        apiId: 'opsbench',
      },
    };
  };
  return {
    conversationId,
    actor: member(0),
    reader: member(1),
    members,
    close: async () => {
      await sockets.close();
      await pollUntil(async () => (await bench.listConnections(conversationId)).length === 0, 30_000, 50);
    },
  };
}

function frameEvent(room: Room, who: Member, route: string, tag: string, fields: Record<string, unknown>): unknown {
  return messageEvent(who.facts, route, `ops-${route}-${tag}`, `ops-msg-${tag}`, Date.now(), JSON.stringify({ action: route, conversationId: room.conversationId, ...fields }));
}

/** The newest `count` messages of the conversation, ascending. */
async function newestMessages(bench: BenchBackend, conversationId: string, count: number): Promise<{ seq: number; messageId: string; item: Record<string, unknown> }[]> {
  const out = await bench.db.send(
    new QueryCommand({
      TableName: bench.backend.tables.messages,
      KeyConditionExpression: 'conversationId = :c AND seq > :z',
      ExpressionAttributeValues: { ':c': conversationId, ':z': 0 },
      ScanIndexForward: false,
      Limit: count,
      ConsistentRead: true,
    }),
  );
  return (out.Items ?? [])
    .flatMap((item) => (typeof item.seq === 'number' && typeof item.messageId === 'string' ? [{ seq: item.seq, messageId: item.messageId, item }] : []))
    .reverse();
}

/** Messages in an `unacked` or `history` answer. */
function answerMessages(result: unknown): { count: number; hasMore: boolean; lastSeq: number | undefined; type: string } {
  const body = typeof result === 'object' && result !== null && 'body' in result && typeof result.body === 'string' ? result.body : '{}';
  const frame: unknown = JSON.parse(body);
  if (typeof frame !== 'object' || frame === null || !('messages' in frame) || !Array.isArray(frame.messages)) {
    throw new Error(`the frame did not answer messages: ${body.slice(0, 200)}`);
  }
  const seqs = frame.messages.flatMap((m: unknown) => (typeof m === 'object' && m !== null && 'seq' in m && typeof m.seq === 'number' ? [m.seq] : []));
  return {
    count: seqs.length,
    hasMore: 'hasMore' in frame && frame.hasMore === true,
    lastSeq: seqs.length === 0 ? undefined : Math.max(...seqs),
    type: 'type' in frame ? String(frame.type) : '',
  };
}

/**
 * Every route once per sample in one conversation, in a chat's order: typing, sendMessage (the actor), then the
 * reader's getUnacked (the messages just sent are pending), its acks (one message per ack, in order, as a client
 * acks what arrives) and getHistory (the newest page).
 */
async function measureRoom(
  bench: BenchBackend,
  room: Room,
  config: BenchConfig,
  counted: Counted,
  progress: Progress,
): Promise<{ rows: OpsRow[]; stored: StoredBytes }> {
  const repeats = config.ops.repeats;
  const handler = (route: OpsRoute) => invoker(bench, route);
  const rows: OpsRow[] = [];
  // Warm: each function's services are built and this connection's binding is known to the container; the
  // reader's position is brought up to date, so the counted acks move it one message at a time.
  await handler('typing')(frameEvent(room, room.actor, 'typing', 'warm', {}));
  await handler('sendMessage')(frameEvent(room, room.actor, 'sendMessage', 'warm', { clientMessageId: randomUUID(), body: BODY }));
  await handler('getUnacked')(frameEvent(room, room.reader, 'getUnacked', 'warm', { limit: 50 }));
  await handler('ack')(frameEvent(room, room.reader, 'ack', 'warm', { upToSeq: (await newestMessages(bench, room.conversationId, 1))[0]?.seq ?? 0 }));
  await handler('getHistory')(frameEvent(room, room.reader, 'getHistory', 'warm', { limit: 50 }));

  const run = async (route: OpsRoute, who: Member, fields: (i: number) => Record<string, unknown>, note: (first: Sample) => string = () => '') => {
    progress.start(`ops ${route} N=${room.members}`, repeats, 'events');
    const samples: Sample[] = [];
    for (let i = 0; i < repeats; i += 1) {
      samples.push(await counted(() => handler(route)(frameEvent(room, who, route, String(i), fields(i)))));
      progress.update(i + 1);
    }
    const first = samples[0];
    if (first === undefined) return;
    const signature = (s: Sample) => JSON.stringify([s.dynamo.calls, s.redis.byCommand, s.posts]);
    const durationMs = round(median(samples.map((s) => s.durationMs)), 2);
    // Billed messages: the frame in, a route answer when there is one, and every post (sendMessage posts `sent`).
    const answered = typeof first.result === 'object' && first.result !== null && 'body' in first.result && first.result.body !== undefined ? 1 : 0;
    const gatewayMessages = 1 + answered + first.posts;
    const row: OpsRow = {
      route,
      members: room.members,
      recipients: route === 'typing' || route === 'sendMessage' || route === 'editMessage' || route === 'deleteMessage' ? room.members - 1 : 0,
      dynamo: first.dynamo,
      registryQueries: first.dynamo.calls.Query ?? 0,
      scans: first.dynamo.calls.Scan ?? 0,
      redis: first.redis,
      posts: first.posts,
      gatewayMessages,
      durationMs,
      steady: samples.every((s) => signature(s) === signature(first)),
      note: note(first),
      cost: costPerMillion({ gatewayMessages, invocations: 1, durationMs, memoryMb: MEMORY_MB, readUnits: first.dynamo.readUnits, writeUnits: first.dynamo.writeUnits }),
    };
    rows.push(row);
    const calls = Object.entries(first.dynamo.calls).map(([op, n]) => `${n} ${op}`).join(', ') || 'no DynamoDB';
    progress.finish(`${calls}; ${first.redis.roundTrips} Redis; ${first.posts} posts`);
  };

  // Alternating states (the warm-up sent a start): each counted frame is a change, so each one goes out.
  await run('typing', room.actor, (i) => ({ state: i % 2 === 0 ? 'stop' : 'start' }));
  await run('sendMessage', room.actor, () => ({ clientMessageId: randomUUID(), body: BODY }));
  const sent = await newestMessages(bench, room.conversationId, repeats);
  const messages = (first: Sample) => {
    const answer = answerMessages(first.result);
    return `${answer.count} messages${answer.hasMore ? ', hasMore' : ''}`;
  };
  await run('getUnacked', room.reader, () => ({ limit: 50 }), messages);
  await run('ack', room.reader, (i) => ({ messageIds: [sent[i]?.messageId ?? 'missing'] }), () => 'one messageId, the next in order');
  await run('getHistory', room.reader, () => ({ limit: 50 }), messages);
  // The sender takes back what it sent: each of its messages edited once, then deleted (warmed on the warm-up message).
  const [warmMessage] = await newestMessages(bench, room.conversationId, repeats + 1);
  await handler('editMessage')(frameEvent(room, room.actor, 'editMessage', 'warm', { messageId: warmMessage?.messageId ?? 'missing', body: `${BODY}!` }));
  await handler('deleteMessage')(frameEvent(room, room.actor, 'deleteMessage', 'warm', { messageId: warmMessage?.messageId ?? 'missing' }));
  await run('editMessage', room.actor, (i) => ({ messageId: sent[i]?.messageId ?? 'missing', body: `${BODY} (edited)` }), () => 'one message, edited once');
  await run('deleteMessage', room.actor, (i) => ({ messageId: sent[i]?.messageId ?? 'missing' }), () => 'one message');
  // Presence: a ping keeps the connection live in its conversations; getPresence reads who is online.
  await handler('ping')(frameEvent(room, room.reader, 'ping', 'warm', {}));
  await handler('getPresence')(frameEvent(room, room.reader, 'getPresence', 'warm', {}));
  await run('ping', room.reader, () => ({}), () => 'a connection subscribed to 1 conversation');
  await run('getPresence', room.reader, () => ({}), () => 'the online list');

  // What one message leaves in DynamoDB: the log item, its index entry, its idempotency item.
  const newest = sent[sent.length - 1];
  const idempotency = await bench.db.send(
    new QueryCommand({ TableName: bench.backend.tables.idempotency, KeyConditionExpression: 'conversationId = :c', ExpressionAttributeValues: { ':c': room.conversationId }, Limit: 1 }),
  );
  const claim = idempotency.Items?.[0];
  const stored: StoredBytes = {
    messageItem: newest === undefined ? 0 : itemBytes(newest.item) + DYNAMO_ITEM_OVERHEAD_BYTES,
    messageIndexEntry:
      newest === undefined ? 0 : itemBytes({ conversationId: room.conversationId, seq: newest.seq, messageId: newest.messageId }) + DYNAMO_ITEM_OVERHEAD_BYTES,
    idempotencyItem: claim === undefined ? 0 : itemBytes(claim) + DYNAMO_ITEM_OVERHEAD_BYTES,
  };
  return { rows, stored };
}

/** sendMessage with `inFlight` invocations at once into one conversation (the seq is contended), against one at a time. */
async function measureContention(
  bench: BenchBackend,
  room: Room,
  settings: BenchConfig['ops']['contention'],
  counted: Counted,
  progress: Progress,
): Promise<ContentionResult> {
  const send = invoker(bench, 'sendMessage');
  const frame = (tag: string) => frameEvent(room, room.actor, 'sendMessage', tag, { clientMessageId: randomUUID(), body: BODY });
  const perMessage = (counts: DynamoCounts, messages: number) => {
    const total = Object.values(counts.calls).reduce((sum, n) => sum + n, 0);
    return {
      dynamoCalls: round(total / messages, 2),
      writeUnits: round(counts.writeUnits / messages, 2),
      readUnits: round(counts.readUnits / messages, 2),
      byOperation: Object.fromEntries(Object.entries(counts.calls).map(([op, n]) => [op, round(n / messages, 2)])),
    };
  };
  const messages = settings.inFlight * settings.rounds;
  progress.start(`ops sendMessage: ${messages} one at a time, then ${settings.inFlight} in flight`, 2, 'passes');
  const alone = await counted(async () => {
    for (let i = 0; i < messages; i += 1) await send(frame(`alone-${i}`));
  });
  progress.update(1);
  const errors: Record<string, number> = {};
  const contended = await counted(async () => {
    await mapLimit(Array.from({ length: messages }, (_, i) => i), settings.inFlight, async (i) => {
      const answer = await send(frame(`busy-${i}`));
      const code = answer.body === undefined ? undefined : /"code":"([a-z_]+)"/.exec(answer.body)?.[1];
      if (code !== undefined) errors[code] = (errors[code] ?? 0) + 1;
    });
  });
  progress.update(2);
  const failedWrites = Object.entries(contended.dynamo.failures)
    .filter(([key]) => /^(PutItem|UpdateItem|DeleteItem) ConditionalCheckFailed/.test(key))
    .reduce((sum, [, n]) => sum + n, 0);
  const result: ContentionResult = {
    inFlight: settings.inFlight,
    messages,
    alone: perMessage(alone.dynamo, messages),
    contended: {
      ...perMessage(contended.dynamo, messages),
      writeUnitsBilled: round((contended.dynamo.writeUnits + failedWrites) / messages, 2),
      failures: contended.dynamo.failures,
      errors,
      msPerMessage: round(contended.durationMs / messages, 2),
    },
  };
  progress.finish(`${result.alone.dynamoCalls} DynamoDB calls a message alone, ${result.contended.dynamoCalls} with ${settings.inFlight} in flight`);
  return result;
}

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
  // One at a time: concurrent sends into one conversation contend for the seq (measured apart, above).
  for (let i = 0; i < pending; i += 1) {
    const body = JSON.stringify({ action: 'sendMessage', conversationId, clientMessageId: `p-${i}`, body: `pending message ${i}` });
    await invoker(bench, 'sendMessage')(messageEvent(writerFacts, 'sendMessage', `seed-${i}`, `seed-${i}`, Date.now(), body));
    sent += 1;
    if (sent % 50 === 0) progress.update(sent);
  }
  progress.update(pending);
  progress.finish();
  const online = new SocketSet();
  await online.open([readerUrl], 1);
  const readerFacts = await facts(reader);
  const page = (afterSeq: number | undefined, i: number) =>
    messageEvent(readerFacts, 'getUnacked', `unacked-${i}`, `unacked-${i}`, Date.now(), JSON.stringify({ action: 'getUnacked', conversationId, limit: 100, ...(afterSeq === undefined ? {} : { afterSeq }) }));
  try {
    // The connection's first frame in this container (its binding read) is not the one counted.
    await invoker(bench, 'getUnacked')(page(undefined, -1));
    const first = await counted(() => invoker(bench, 'getUnacked')(page(undefined, 0)));
    const answer = answerMessages(first.result);
    let pages = 1;
    let roundTrips = first.redis.roundTrips;
    let dynamoCalls = Object.values(first.dynamo.calls).reduce((sum, n) => sum + n, 0);
    let readUnits = first.dynamo.readUnits;
    let last = answer;
    // Bounded: at most one page per 100 pending messages, plus one.
    while (last.hasMore && pages <= pending / 100 + 1) {
      const next = await counted(() => invoker(bench, 'getUnacked')(page(last.lastSeq, pages)));
      last = answerMessages(next.result);
      pages += 1;
      roundTrips += next.redis.roundTrips;
      dynamoCalls += Object.values(next.dynamo.calls).reduce((sum, n) => sum + n, 0);
      readUnits += next.dynamo.readUnits;
    }
    const historyPage = (i: number) =>
      messageEvent(readerFacts, 'getHistory', `history-${i}`, `history-${i}`, Date.now(), JSON.stringify({ action: 'getHistory', conversationId, limit: 50 }));
    await invoker(bench, 'getHistory')(historyPage(-1));
    const history = await counted(() => invoker(bench, 'getHistory')(historyPage(0)));
    const historyAnswer = answerMessages(history.result);
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
      dynamoCallsToDrain: dynamoCalls,
      readUnitsToDrain: round(readUnits, 1),
      history: { limit: 50, messages: historyAnswer.count, hasMore: historyAnswer.hasMore, dynamo: history.dynamo, redisRoundTrips: history.redis.roundTrips },
    };
  } finally {
    await online.close();
    await writerSocket.close();
  }
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
    // Subscription rows, as the conversation index holds them.
    const items = Array.from({ length: rows }, (_, i) => ({
      connectionId: `${randomUUID().replace(/-/g, '').slice(0, 15)}=`.slice(0, 16),
      entry: `c#${conversationId}`,
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

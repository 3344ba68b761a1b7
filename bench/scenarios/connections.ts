import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { loadConfig } from '../../lambdas/config.js';
import { MEMORY_MB } from '../../lib/relay-stack.js';
import { spawnRedis } from '../../local/redis-server.js';
import { BenchBackend, LOCAL_CREDENTIALS } from '../lib/backend.js';
import { DynamoCountingProxy, type DynamoCounts } from '../lib/dynamo-proxy.js';
import { mapLimit, now, pollUntil, sleep } from '../lib/limit.js';
import { openSocket } from '../lib/sockets.js';
import type { TestClient } from '../../local/gateway/testing.js';
import { PRICES, costPerMillion } from '../lib/prices.js';
import type { Progress } from '../lib/progress.js';
import { RedisCommandCounter } from '../lib/redis-monitor.js';
import type { ServiceProcess } from '../lib/services.js';
import { percentile, round } from '../lib/stats.js';
import { benchSeams, registryVia, type Patch } from '../lib/whatif.js';

/** What the `connections` scenario measures (BENCH_ONLY=connections), and how much of it. */
export interface ConnectionsSettings {
  /** Sequential `$connect`s of each kind (v2 without a conversation, v1 with one), each followed by its `$disconnect`. */
  connects: number;
  /** Conversations the measured user is a member of (the many-conversation subscribe, the v1 socket count). */
  conversations: number;
  /** `subscribe` frames of each kind, each on a fresh connection of the same device. */
  subscribes: number;
  /** Resuming `subscribe` frames (fewer: each needs `missed` × `conversations` messages sent first). */
  resumes: number;
  /** Messages sent into each conversation while the device is offline, before each resume. */
  missed: number;
  timeoutMs: number;
}

export function connectionsSettings(quick: boolean): ConnectionsSettings {
  return {
    connects: quick ? 50 : 200,
    conversations: 40,
    subscribes: quick ? 10 : 40,
    resumes: quick ? 4 : 15,
    missed: 3,
    timeoutMs: 15_000,
  };
}

export interface Latency {
  samples: number;
  p50: number;
  p99: number;
  max: number;
}

export type ConnectionsEvent =
  | 'connect-v2'
  | 'connect-v1'
  | 'subscribe-1'
  | 'subscribe-many'
  | 'subscribe-resume'
  | 'disconnect-0'
  | 'disconnect-1'
  | 'disconnect-many';

/** One event, counted sample by sample; the figures are means per event (equal to every sample's when `steady`). */
export interface ConnectionsRow {
  event: ConnectionsEvent;
  /** What the event was, for the table. */
  label: string;
  /** Subscriptions the connection had (disconnect) or asks for (subscribe). */
  conversations: number;
  samples: number;
  /** Socket opened → `open` ($connect); frame sent → `subscribed` (subscribe); none for $disconnect (nobody waits). */
  latency: Latency | undefined;
  /** Resume only: frame sent → the last `unacked` page arrived. */
  lastPage: Latency | undefined;
  dynamoCalls: number;
  byOperation: Record<string, number>;
  readUnits: number;
  /** Write units as dynalite reports them: the table only. */
  writeUnits: number;
  /**
   * Subscription rows written or deleted: each is also an entry of the conversation index, which DynamoDB bills
   * as one more write unit (these rows are under 1 KB) and dynalite leaves out of ConsumedCapacity.
   */
  indexWrites: number;
  /** `writeUnits` + `indexWrites`: what DynamoDB would bill. */
  writeUnitsBilled: number;
  unitsByOperation: Record<string, number>;
  failures: Record<string, number>;
  redisRoundTrips: number;
  posts: number;
  /** WebSocket messages API Gateway bills for the event: the frame in, a route answer, every post (the handshake and the close are not messages). */
  gatewayMessages: number;
  /** True when every sample made exactly the same DynamoDB calls and Redis commands. */
  steady: boolean;
  note: string;
}

/** One device of a user in `conversations` conversations: a socket per conversation (v1) against one socket (v2). */
export interface DeviceSide {
  sockets: number;
  connectionMinutesPerHour: number;
  /** Connection minutes of one device-hour, in dollars. */
  dollarsPerDeviceHour: number;
  /** `devices` online `hoursPerDay` for `days` (see DeviceComparison.month). */
  dollarsPerMonth: number;
  /** A (re)connect of the device: Lambda invocations ($connect, and v2's one subscribe). */
  invocations: number;
  gatewayMessages: number;
  dynamoCalls: number;
  readUnits: number;
  /** As DynamoDB bills them (the conversation index included). */
  writeUnits: number;
  /** Dollars per million device (re)connects: API Gateway messages, Lambda requests and compute, DynamoDB requests. */
  dollarsPerMillionConnects: number;
  /** The device going offline: $disconnect invocations and their DynamoDB calls. */
  disconnectInvocations: number;
  disconnectDynamoCalls: number;
  disconnectWriteUnits: number;
  /** Keep-alive: API Gateway closes a socket idle 10 minutes, so each socket needs ≥ 6 ping + pong an hour. */
  keepAliveMessagesPerHour: number;
}

export interface DeviceComparison {
  conversations: number;
  /** MAX_CONNECTIONS_PER_USER as the handlers read it: v1 with more conversations than this is refused (429). */
  maxConnectionsPerUser: number;
  month: { devices: number; hoursPerDay: number; days: number };
  /** Lambda compute is priced at the measured p50 of each event (socket open / subscribed): an upper bound on the handler's duration. */
  memoryMb: number;
  v1: DeviceSide;
  v2: DeviceSide;
}

export interface ConnectionsResult {
  conversations: number;
  missed: number;
  rows: ConnectionsRow[];
  comparison: DeviceComparison;
}

interface Counts {
  dynamo: DynamoCounts;
  redisRoundTrips: number;
  redisByCommand: Record<string, number>;
  posts: number;
}

interface Sample {
  counts: Counts;
  latencyMs?: number;
  lastPageMs?: number;
}

type Frame = Record<string, unknown>;

/** A client socket that parses every frame and can wait for the ones it expects. */
class FrameSocket {
  private readonly frames: { at: number; frame: Frame }[] = [];
  private readonly waiters = new Set<() => void>();

  private constructor(private readonly socket: TestClient) {}

  private onFrame(text: string): void {
    const at = now();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof parsed !== 'object' || parsed === null) return;
    this.frames.push({ at, frame: { ...parsed } });
    for (const wake of this.waiters) wake();
  }

  /** Opens the socket; `openMs` is `new WebSocket` → `open` (the whole handshake, $connect included). */
  static async open(url: string, timeoutMs: number): Promise<{ socket: FrameSocket; openMs: number }> {
    const started = now();
    let socket: FrameSocket | undefined = undefined; // set once open: frames reach it from then on
    const client = await openSocket(url, { openTimeoutMs: timeoutMs, onFrame: (text) => socket?.onFrame(text) });
    socket = new FrameSocket(client);
    return { socket, openMs: now() - started };
  }


  /** Sends a frame; returns when it was sent (for latencies). */
  send(frame: Frame): number {
    const at = now();
    this.socket.ws.send(JSON.stringify(frame));
    return at;
  }

  /** Frames received so far (the caller takes what it needs with `drain`). */
  drain(): { at: number; frame: Frame }[] {
    return this.frames.splice(0);
  }

  /** Waits until `count` frames matching `match` have arrived (counting from the last `drain`); returns them. */
  async waitFor(match: (frame: Frame) => boolean, count: number, timeoutMs: number, what: string): Promise<{ at: number; frame: Frame }[]> {
    const deadline = Date.now() + timeoutMs;
    const found = () => this.frames.filter((f) => match(f.frame));
    const error = () => this.frames.find((f) => f.frame.type === 'error');
    while (found().length < count && error() === undefined && Date.now() < deadline) await this.nextFrame(deadline - Date.now());
    const failed = error();
    if (failed !== undefined) throw new Error(`${what} answered an error: ${JSON.stringify(failed.frame).slice(0, 300)}`);
    const got = found();
    if (got.length < count) throw new Error(`${what}: ${got.length} of ${count} frames in ${timeoutMs} ms`);
    return got;
  }

  /** Resolves at the next frame, or after `ms`. */
  private nextFrame(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer: { id?: NodeJS.Timeout } = {};
      const wake = () => {
        clearTimeout(timer.id);
        this.waiters.delete(wake);
        resolve();
      };
      timer.id = setTimeout(wake, Math.max(0, ms));
      this.waiters.add(wake);
    });
  }

  async close(): Promise<void> {
    await this.socket.close();
  }
}

/** What the registry seam saw: connections opened (in order) and removed ($disconnect, or a prune). */
class Lifecycle {
  readonly opened: string[] = [];
  readonly removed = new Set<string>();

  patch(): Patch {
    return {
      name: 'connections lifecycle',
      apply: (services, counter) => {
        const registry = services.registry;
        return {
          registry: {
            ...registryVia(() => registry),
            open: async (record, max) => {
              const opened = await registry.open(record, max);
              counter.hits += 1;
              if (opened) this.opened.push(record.connectionId);
              return opened;
            },
            remove: async (connectionId) => {
              try {
                return await registry.remove(connectionId);
              } finally {
                this.removed.add(connectionId);
              }
            },
          },
        };
      },
    };
  }

  /** The connection id of the socket just opened (connects run one at a time). */
  last(): string {
    const id = this.opened[this.opened.length - 1];
    if (id === undefined) throw new Error('no connection was registered');
    return id;
  }
}

/**
 * `$connect`, `subscribe` and `$disconnect` of protocol v2 through the gateway emulator and the real handlers,
 * with DynamoDB calls and capacity counted by the proxy in front of dynalite (as in ops.ts), Redis commands by
 * MONITOR, posts by the gateway's log. Every event runs alone (one at a time, after the backend is quiet), on a
 * warm container. The measured user is a member of `conversations` conversations, with one device.
 */
export async function runConnections(settings: ConnectionsSettings, services: ServiceProcess, progress: Progress): Promise<ConnectionsResult> {
  const proxy = await DynamoCountingProxy.start(services.dynamodbEndpoint);
  const redis = await spawnRedis();
  const monitor = await RedisCommandCounter.start(redis.url);
  // Uncounted: what the bench itself reads to check the handlers' work goes straight to dynalite.
  const direct = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: services.dynamodbEndpoint, region: 'us-east-1', credentials: LOCAL_CREDENTIALS }));
  const posts = { counting: false, count: 0 };
  let bench: BenchBackend | undefined;
  try {
    bench = await BenchBackend.start({
      stage: 'conns',
      dynamodbEndpoint: proxy.endpoint,
      sqsEndpoint: services.sqsEndpoint,
      redisUrl: redis.url,
      gateway: {
        log: (entry) => {
          if (posts.counting && entry.event === 'management_request' && entry.method === 'POST') posts.count += 1;
        },
      },
    });
    const life = new Lifecycle();
    const b = bench;
    const { result, applied } = await benchSeams.with(life.patch(), () => measure(b, settings, { proxy, monitor, posts, direct, life }, progress));
    if (!applied) throw new Error('the handlers did not go through the bench registry seam');
    return result;
  } finally {
    await bench?.close();
    direct.destroy();
    monitor.close();
    await redis.stop();
    await proxy.close();
  }
}

interface Instruments {
  proxy: DynamoCountingProxy;
  monitor: RedisCommandCounter;
  posts: { counting: boolean; count: number };
  direct: DynamoDBDocumentClient;
  life: Lifecycle;
}

async function measure(bench: BenchBackend, settings: ConnectionsSettings, tools: Instruments, progress: Progress): Promise<ConnectionsResult> {
  const { proxy, monitor, posts, direct, life } = tools;
  const timeout = settings.timeoutMs;
  const tables = bench.backend.tables;

  const startCounting = () => {
    proxy.reset();
    monitor.reset();
    posts.count = 0;
    proxy.counting = true;
    monitor.counting = true;
    posts.counting = true;
  };
  const stopCounting = async (): Promise<Counts> => {
    const redisCounts = await monitor.settle();
    proxy.counting = false;
    monitor.counting = false;
    posts.counting = false;
    return { dynamo: proxy.snapshot(), redisRoundTrips: redisCounts.roundTrips, redisByCommand: redisCounts.byCommand, posts: posts.count };
  };
  /** Waits until no DynamoDB call has been made for 150 ms (a sendMessage fans out after its `sent`). */
  const quiet = async () => {
    let calm = 0;
    for (let i = 0; i < 200 && calm < 3; i += 1) {
      proxy.reset();
      proxy.counting = true;
      await sleep(50);
      const calls = Object.values(proxy.snapshot().calls).reduce((sum, n) => sum + n, 0);
      calm = calls === 0 ? calm + 1 : 0;
    }
    proxy.counting = false;
    if (calm < 3) throw new Error('the backend did not go quiet');
  };
  /** The connection's rows and its slot in the user's set are gone (read straight from dynalite). */
  const gone = async (connectionId: string, userId: string) => {
    const rows = await direct.send(
      new QueryCommand({ TableName: tables.connections, KeyConditionExpression: 'connectionId = :id', ExpressionAttributeValues: { ':id': connectionId }, ConsistentRead: true }),
    );
    const slots = await direct.send(
      new GetCommand({ TableName: tables.connections, Key: { connectionId: `user#${encodeURIComponent(userId)}`, entry: '#connections' }, ConsistentRead: true }),
    );
    const open = slots.Item?.open;
    return (rows.Count ?? 0) === 0 && !(open instanceof Set && open.has(connectionId));
  };
  /** Closes the socket and waits for its $disconnect to finish and its rows to be gone; counted when asked. */
  const disconnect = async (socket: FrameSocket, connectionId: string, userId: string, count: boolean): Promise<Counts | undefined> => {
    if (count) startCounting();
    await socket.close();
    if (!(await pollUntil(() => life.removed.has(connectionId), timeout, 2))) throw new Error('$disconnect did not remove the connection in time');
    const counts = count ? await stopCounting() : undefined;
    if (!(await pollUntil(() => gone(connectionId, userId), timeout, 10))) throw new Error('the connection rows outlived $disconnect');
    return counts;
  };

  // The cast: U, the measured user (one device), and S, who sends; both members of every conversation.
  const conversations = Array.from({ length: settings.conversations }, () => randomUUID());
  const user = randomUUID();
  const device = randomUUID();
  const sender = randomUUID();
  for (const conversationId of conversations) await bench.addMembers(conversationId, [user, sender]);
  const userToken = await bench.token(user);
  const url = (token: string, clientId: string, conversationId?: string) =>
    `${bench.backend.url}?${new URLSearchParams({ token, clientId, ...(conversationId === undefined ? {} : { conversationId }) }).toString()}`;
  const first = conversations[0] ?? '';

  progress.start('connections: setup (the sender subscribes and sends one message into each conversation)', 2, 'steps');
  const senderSocket = (await FrameSocket.open(url(await bench.token(sender), randomUUID()), timeout)).socket;
  senderSocket.send({ action: 'subscribe', requestId: 'sender', conversationIds: conversations });
  await senderSocket.waitFor((f) => f.type === 'subscribed', 1, timeout, 'the sender subscribe');
  senderSocket.drain();
  // What the device has seen, by conversation (the highest seq): a client's afterSeq.
  const seen = new Map<string, number>();
  let messageNumber = 0;
  const sendRound = async (perConversation: number) => {
    // Conversation by conversation, round by round: the frames in flight are for different conversations.
    const frames = Array.from({ length: perConversation }, () => conversations).flatMap((round) =>
      round.map((conversationId) => {
        messageNumber += 1;
        return { action: 'sendMessage', conversationId, clientMessageId: `m-${messageNumber}`, body: `missed message ${messageNumber}` };
      }),
    );
    await mapLimit(frames, 8, async (frame) => {
      senderSocket.send(frame);
      await senderSocket.waitFor((f) => f.type === 'sent' && f.clientMessageId === frame.clientMessageId, 1, timeout, 'sendMessage');
    });
    senderSocket.drain();
    await quiet();
  };
  await sendRound(1);
  progress.update(1);
  // Warm every route's container (connect, subscribe, disconnect); the device gets its position everywhere.
  {
    const warm = (await FrameSocket.open(url(userToken, device), timeout)).socket;
    warm.send({ action: 'subscribe', requestId: 'warm', conversationIds: conversations });
    const [answer] = await warm.waitFor((f) => f.type === 'subscribed', 1, timeout, 'the warm-up subscribe');
    for (const status of statuses(answer?.frame)) if (status.lastSeq !== undefined) seen.set(status.conversationId, status.lastSeq);
    await disconnect(warm, life.last(), user, false);
    const v1 = (await FrameSocket.open(url(userToken, device, first), timeout)).socket;
    await disconnect(v1, life.last(), user, false);
  }
  await quiet();
  progress.update(2);
  progress.finish();

  const rows: ConnectionsRow[] = [];

  // 1 and 3: $connect one at a time (v2, then v1), each followed by its $disconnect (0 and 1 subscriptions).
  const connects = async (kind: 'v2' | 'v1') => {
    const connectSamples: Sample[] = [];
    const disconnectSamples: Sample[] = [];
    progress.start(`connections: $connect ${kind} + $disconnect`, settings.connects, 'connections');
    for (let i = 0; i < settings.connects; i += 1) {
      const target = url(userToken, device, kind === 'v1' ? first : undefined);
      startCounting();
      const { socket, openMs } = await FrameSocket.open(target, timeout);
      connectSamples.push({ counts: await stopCounting(), latencyMs: openMs });
      const counts = await disconnect(socket, life.last(), user, true);
      if (counts !== undefined) disconnectSamples.push({ counts });
      progress.update(i + 1);
    }
    const subscriptions = kind === 'v1' ? 1 : 0;
    const connectRow = row(kind === 'v2' ? 'connect-v2' : 'connect-v1', connectSamples, subscriptions, 0, subscriptions);
    rows.push(connectRow);
    rows.push(row(kind === 'v2' ? 'disconnect-0' : 'disconnect-1', disconnectSamples, subscriptions, 0, subscriptions));
    progress.finish(`p50 ${connectRow.latency?.p50 ?? '–'} ms; ${describe(connectRow)}`);
  };
  await connects('v2');
  await connects('v1');

  // 2: subscribe on a fresh v2 connection of the same (known) device: 1 conversation, all of them, and resuming.
  const subscribes = async (event: 'subscribe-1' | 'subscribe-many', ids: readonly string[]) => {
    const subscribeSamples: Sample[] = [];
    const disconnectSamples: Sample[] = [];
    progress.start(`connections: subscribe ${ids.length}`, settings.subscribes, 'frames');
    for (let i = 0; i < settings.subscribes; i += 1) {
      const { socket } = await FrameSocket.open(url(userToken, device), timeout);
      const connectionId = life.last();
      startCounting();
      const sentAt = socket.send({ action: 'subscribe', requestId: `s-${i}`, conversationIds: ids });
      const [answer] = await socket.waitFor((f) => f.type === 'subscribed', 1, timeout, 'subscribe');
      const counts = await stopCounting();
      checkAllOk(answer?.frame, ids.length);
      subscribeSamples.push({ counts, latencyMs: (answer?.at ?? sentAt) - sentAt });
      const closed = await disconnect(socket, connectionId, user, event === 'subscribe-many');
      if (closed !== undefined) disconnectSamples.push({ counts: closed });
      progress.update(i + 1);
    }
    const subscribeRow = row(event, subscribeSamples, ids.length, 2, ids.length);
    rows.push(subscribeRow);
    if (disconnectSamples.length > 0) rows.push(row('disconnect-many', disconnectSamples, ids.length, 0, ids.length));
    progress.finish(`p50 ${subscribeRow.latency?.p50 ?? '–'} ms; ${describe(subscribeRow)}`);
  };
  await subscribes('subscribe-1', [first]);
  await subscribes('subscribe-many', conversations);

  {
    const resumeSamples: Sample[] = [];
    progress.start(`connections: subscribe ${conversations.length} with afterSeq, ${settings.missed} missed in each`, settings.resumes, 'frames');
    for (let i = 0; i < settings.resumes; i += 1) {
      // The device is offline: the sender writes `missed` messages into every conversation.
      await sendRound(settings.missed);
      const { socket } = await FrameSocket.open(url(userToken, device), timeout);
      const connectionId = life.last();
      const afterSeq = Object.fromEntries(conversations.map((c) => [c, seen.get(c) ?? 0]));
      startCounting();
      const sentAt = socket.send({ action: 'subscribe', requestId: `r-${i}`, conversationIds: conversations, afterSeq });
      const [answer] = await socket.waitFor((f) => f.type === 'subscribed', 1, timeout, 'subscribe (resume)');
      const pages = await socket.waitFor((f) => f.type === 'unacked', conversations.length, timeout, 'subscribe (resume) pages');
      const counts = await stopCounting();
      checkAllOk(answer?.frame, conversations.length);
      let lastAt = sentAt;
      for (const page of pages) {
        lastAt = Math.max(lastAt, page.at);
        const messages = Array.isArray(page.frame.messages) ? page.frame.messages : [];
        if (messages.length !== settings.missed || page.frame.hasMore === true) {
          throw new Error(`a resume page held ${messages.length} messages (hasMore ${String(page.frame.hasMore)}), not the ${settings.missed} missed`);
        }
        for (const m of messages) {
          if (typeof m === 'object' && m !== null && 'seq' in m && typeof m.seq === 'number' && typeof page.frame.conversationId === 'string') {
            seen.set(page.frame.conversationId, Math.max(seen.get(page.frame.conversationId) ?? 0, m.seq));
          }
        }
      }
      resumeSamples.push({ counts, latencyMs: (answer?.at ?? sentAt) - sentAt, lastPageMs: lastAt - sentAt });
      await disconnect(socket, connectionId, user, false);
      progress.update(i + 1);
    }
    // The frame in, then `subscribed` and one `unacked` page per conversation, all posted.
    const resumeRow = row('subscribe-resume', resumeSamples, conversations.length, undefined, conversations.length);
    rows.push(resumeRow);
    progress.finish(`p50 ${resumeRow.latency?.p50 ?? '–'} ms to subscribed, ${resumeRow.lastPage?.p50 ?? '–'} ms to the last page; ${describe(resumeRow)}`);
  }
  senderSocket.drain();
  await senderSocket.close();

  const maxConnectionsPerUser = loadConfig('connect', bench.backend.env).MAX_CONNECTIONS_PER_USER;
  return {
    conversations: settings.conversations,
    missed: settings.missed,
    rows: sortRows(rows),
    comparison: compare(rows, settings.conversations, maxConnectionsPerUser),
  };
}

const ORDER: readonly ConnectionsEvent[] = ['connect-v2', 'connect-v1', 'subscribe-1', 'subscribe-many', 'subscribe-resume', 'disconnect-0', 'disconnect-1', 'disconnect-many'];
function sortRows(rows: readonly ConnectionsRow[]): ConnectionsRow[] {
  return [...rows].sort((a, b) => ORDER.indexOf(a.event) - ORDER.indexOf(b.event));
}

function statuses(frame: Frame | undefined): { conversationId: string; status: string; lastSeq?: number }[] {
  const list = frame?.conversations;
  if (!Array.isArray(list)) return [];
  return list.flatMap((entry: unknown) =>
    typeof entry === 'object' && entry !== null && 'conversationId' in entry && typeof entry.conversationId === 'string' && 'status' in entry && typeof entry.status === 'string'
      ? [{ conversationId: entry.conversationId, status: entry.status, ...('lastSeq' in entry && typeof entry.lastSeq === 'number' ? { lastSeq: entry.lastSeq } : {}) }]
      : [],
  );
}

function checkAllOk(frame: Frame | undefined, expected: number): void {
  const list = statuses(frame);
  const ok = list.filter((s) => s.status === 'ok').length;
  if (ok !== expected) throw new Error(`subscribed answered ${ok} of ${expected} conversations ok`);
}

function latency(values: readonly number[]): Latency | undefined {
  if (values.length === 0) return undefined;
  return { samples: values.length, p50: round(percentile(values, 50), 2), p99: round(percentile(values, 99), 2), max: round(Math.max(...values), 2) };
}

const LABELS: Record<ConnectionsEvent, (n: number) => string> = {
  'connect-v2': () => '$connect v2 (no conversationId)',
  'connect-v1': () => '$connect v1 (conversationId: subscribes it)',
  'subscribe-1': () => 'subscribe, 1 conversation',
  'subscribe-many': (n) => `subscribe, ${n} conversations`,
  'subscribe-resume': (n) => `subscribe, ${n} conversations + afterSeq`,
  'disconnect-0': () => '$disconnect, 0 subscriptions',
  'disconnect-1': () => '$disconnect, 1 subscription',
  'disconnect-many': (n) => `$disconnect, ${n} subscriptions`,
};

/** Means per event over the samples; `gatewayMessages` undefined = the frame in plus every post. */
function row(event: ConnectionsEvent, samples: readonly Sample[], conversations: number, gatewayMessages: number | undefined, indexWrites: number): ConnectionsRow {
  const n = Math.max(1, samples.length);
  const byOperation: Record<string, number> = {};
  const unitsByOperation: Record<string, number> = {};
  const failures: Record<string, number> = {};
  let readUnits = 0;
  let writeUnits = 0;
  let redisRoundTrips = 0;
  let posts = 0;
  for (const s of samples) {
    for (const [op, calls] of Object.entries(s.counts.dynamo.calls)) byOperation[op] = (byOperation[op] ?? 0) + calls;
    for (const [f, calls] of Object.entries(s.counts.dynamo.failures)) failures[f] = (failures[f] ?? 0) + calls;
    for (const [op, units] of Object.entries(s.counts.dynamo.unitsByOperation)) unitsByOperation[op] = (unitsByOperation[op] ?? 0) + units;
    readUnits += s.counts.dynamo.readUnits;
    writeUnits += s.counts.dynamo.writeUnits;
    redisRoundTrips += s.counts.redisRoundTrips;
    posts += s.counts.posts;
  }
  const perEvent = (value: number) => round(value / n, 2);
  const mean = Object.fromEntries(Object.entries(byOperation).map(([op, calls]) => [op, perEvent(calls)]));
  const signature = (s: Sample) => JSON.stringify([s.counts.dynamo.calls, s.counts.redisByCommand, s.counts.posts]);
  const firstSample = samples[0];
  const meanPosts = perEvent(posts);
  const redisCommands = firstSample === undefined ? '' : Object.entries(firstSample.counts.redisByCommand).map(([c, k]) => `${k} ${c}`).join(', ');
  return {
    event,
    label: LABELS[event](conversations),
    conversations,
    samples: samples.length,
    latency: latency(samples.flatMap((s) => (s.latencyMs === undefined ? [] : [s.latencyMs]))),
    lastPage: latency(samples.flatMap((s) => (s.lastPageMs === undefined ? [] : [s.lastPageMs]))),
    dynamoCalls: perEvent(Object.values(byOperation).reduce((sum, k) => sum + k, 0)),
    byOperation: mean,
    readUnits: perEvent(readUnits),
    writeUnits: perEvent(writeUnits),
    indexWrites,
    writeUnitsBilled: round(perEvent(writeUnits) + indexWrites, 2),
    unitsByOperation: Object.fromEntries(Object.entries(unitsByOperation).map(([op, units]) => [op, perEvent(units)])),
    failures: Object.fromEntries(Object.entries(failures).map(([f, k]) => [f, perEvent(k)])),
    redisRoundTrips: perEvent(redisRoundTrips),
    posts: meanPosts,
    gatewayMessages: gatewayMessages ?? round(1 + meanPosts, 2),
    steady: firstSample !== undefined && samples.every((s) => signature(s) === signature(firstSample)),
    note: redisCommands === '' ? '' : `Redis: ${redisCommands}`,
  };
}

function describe(r: ConnectionsRow): string {
  const calls = Object.entries(r.byOperation).map(([op, k]) => `${k} ${op}`).join(', ') || 'no DynamoDB';
  return `${calls} (${r.readUnits} RRU, ${r.writeUnits} WRU + ${r.indexWrites} index); ${r.redisRoundTrips} Redis; ${r.posts} posts`;
}

const MONTH = { devices: 1_000, hoursPerDay: 8, days: 30 } as const;
/** API Gateway closes a connection idle for 10 minutes: at least 6 pings (and their pongs) an hour per socket. */
const KEEPALIVE_MESSAGES_PER_SOCKET_HOUR = 2 * (60 / 10);

/**
 * A device of a user in `conversations` conversations. v1: a socket per conversation, each a `$connect` with its
 * conversationId (and a `$disconnect` with one subscription). v2: one socket, one `$connect` and one `subscribe`
 * of them all (and one `$disconnect` of a connection with all of them).
 */
function compare(rows: readonly ConnectionsRow[], conversations: number, maxConnectionsPerUser: number): DeviceComparison {
  const find = (event: ConnectionsEvent) => {
    const found = rows.find((r) => r.event === event);
    if (found === undefined) throw new Error(`${event} was not measured`);
    return found;
  };
  const connectV1 = find('connect-v1');
  const connectV2 = find('connect-v2');
  const subscribeAll = find('subscribe-many');
  const disconnect1 = find('disconnect-1');
  const disconnectAll = find('disconnect-many');
  const cost = (parts: readonly { r: ConnectionsRow; times: number }[]) =>
    parts.reduce(
      (sum, { r, times }) =>
        sum +
        times *
          costPerMillion({
            gatewayMessages: r.gatewayMessages,
            invocations: 1,
            durationMs: r.latency?.p50 ?? 0,
            memoryMb: MEMORY_MB,
            readUnits: r.readUnits,
            writeUnits: r.writeUnitsBilled,
          }).total,
      0,
    );
  const side = (sockets: number, parts: readonly { r: ConnectionsRow; times: number }[], close: { r: ConnectionsRow; times: number }): DeviceSide => {
    const minutes = sockets * 60;
    const sum = (pick: (r: ConnectionsRow) => number) => round(parts.reduce((total, { r, times }) => total + times * pick(r), 0), 2);
    return {
      sockets,
      connectionMinutesPerHour: minutes,
      dollarsPerDeviceHour: (minutes * PRICES.apiGatewayPerMillionConnectionMinutes) / 1e6,
      dollarsPerMonth: round((MONTH.devices * MONTH.hoursPerDay * MONTH.days * minutes * PRICES.apiGatewayPerMillionConnectionMinutes) / 1e6, 2),
      invocations: parts.reduce((total, { times }) => total + times, 0),
      gatewayMessages: sum((r) => r.gatewayMessages),
      dynamoCalls: sum((r) => r.dynamoCalls),
      readUnits: sum((r) => r.readUnits),
      writeUnits: sum((r) => r.writeUnitsBilled),
      dollarsPerMillionConnects: round(cost(parts), 2),
      disconnectInvocations: close.times,
      disconnectDynamoCalls: round(close.times * close.r.dynamoCalls, 2),
      disconnectWriteUnits: round(close.times * close.r.writeUnitsBilled, 2),
      keepAliveMessagesPerHour: sockets * KEEPALIVE_MESSAGES_PER_SOCKET_HOUR,
    };
  };
  return {
    conversations,
    maxConnectionsPerUser,
    month: MONTH,
    memoryMb: MEMORY_MB,
    v1: side(conversations, [{ r: connectV1, times: conversations }], { r: disconnect1, times: conversations }),
    v2: side(1, [{ r: connectV2, times: 1 }, { r: subscribeAll, times: 1 }], { r: disconnectAll, times: 1 }),
  };
}

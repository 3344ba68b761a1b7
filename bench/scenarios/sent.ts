import { randomUUID } from 'node:crypto';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { startLocalBackend, type LocalBackend } from '../../local/backend.js';
import { signToken } from '../../local/tokens.js';
import { createPool, type ClientPool } from '../lib/clients.js';
import { mapLimit, now, sleep } from '../lib/limit.js';
import { openSocket } from '../lib/sockets.js';
import type { TestClient } from '../../local/gateway/testing.js';
import type { Progress } from '../lib/progress.js';
import { percentile, round } from '../lib/stats.js';

/**
 * Time to `sent`: from a `sendMessage` frame leaving the sender's socket to the `sent` frame arriving on it, through
 * the gateway emulator and the real handlers, with N other live sockets in the conversation; optionally with every
 * Management API request delayed (the gateway's `managementDelayMs`), as a post to API Gateway is a network round trip.
 *
 * This file runs unchanged against older trees of the project (the "before" figures in BENCHMARKS.md): it uses only
 * `startLocalBackend`, `signToken`, a raw PutItem of membership items, the raw socket (`local/gateway/testing.ts`
 * through `bench/lib/sockets.ts`: copy both along into a tree older than their `onFrame`/timeout options) and the
 * bench's own helpers (clients, limit, stats, progress). `sent-standalone.ts` runs it by itself.
 */

/** A chat-sized body, as in the fan-out scenario. */
const BODY = 'The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs. '.repeat(2).trim();
/** The app secret of the bench's backends: an explicit jwtSecret, so tokens are signed without the project's key derivation. */
const MASTER_KEY = 'relay-ws-bench-master-key--not-a-secret--0123456789';
const JWT_SECRET = 'relay-ws-bench-jwt-secret--not-a-secret--0123456789';
const SENDER = 'sender';
const WARM_UP = 10;
const CONNECT_CONCURRENCY = 32;
/** A quiet moment between samples, so one sample's trailing work (prunes, logs) does not land in the next. */
const GAP_MS = 2;

export interface SentSettings {
  /** Receiving sockets in the conversation (the sender's socket is one more). */
  sizes: readonly number[];
  /** Modelled Management API delays (ms per request); 0 = none. */
  delaysMs: readonly number[];
  /** Latency samples at each (N, delay), one frame at a time. */
  samples(n: number, delayMs: number): number;
  /** Messages of the throughput pass at each (N, delay), `window` in flight. */
  messages(n: number, delayMs: number): number;
  window: number;
  /** Longest wait for one frame's `sent` or deliveries. */
  timeoutMs: number;
  /** Time budget of one (N, delay) cell's latency samples; sampling stops early past it (the row says how many ran). */
  cellBudgetMs: number;
}

export function sentSettings(quick: boolean): SentSettings {
  return {
    sizes: quick ? [10] : [2, 10, 100],
    delaysMs: [0, 20],
    samples: (n) => (quick ? 30 : n >= 100 ? 100 : 200),
    messages: (n) => (quick ? 20 : n >= 100 ? 40 : 100),
    window: 8,
    timeoutMs: 5_000,
    cellBudgetMs: quick ? 10_000 : 40_000,
  };
}

export interface SentRow {
  n: number;
  delayMs: number;
  samples: number;
  /** Frame sent → `sent` received by the sender, ms. */
  sentP50: number;
  sentP99: number;
  /** Frame sent → the last of the N recipients has the message, ms. */
  lastP50: number;
  lastP99: number;
  timeouts: number;
  /** Error frames the sender got, by code (latency and throughput passes). */
  errors: Record<string, number>;
  /** The throughput pass: `window` frames in flight. */
  throughput: { messages: number; deliveries: number; expected: number; seconds: number; perSecond: number; sentPerSecond: number; complete: boolean };
}

export interface SentResult {
  window: number;
  rows: SentRow[];
}

export interface SentEndpoints {
  dynamodbEndpoint: string;
  sqsEndpoint: string;
}

/** The sending socket: records when each `sent` (by clientMessageId) and each error frame arrives. */
class SendingSocket {
  private readonly sentAt = new Map<string, number>();
  private readonly wakers = new Set<() => void>();
  answers = 0;
  readonly errors = new Map<string, number>();

  private constructor(private readonly socket: TestClient) {}

  private onFrame(text: string): void {
    const at = now();
    if (text.startsWith('{"type":"sent"')) {
      const id = /"clientMessageId":"([^"]*)"/.exec(text)?.[1];
      if (id !== undefined && !this.sentAt.has(id)) {
        this.sentAt.set(id, at);
        this.answers += 1;
      }
    } else if (text.startsWith('{"type":"error"')) {
      const code = /"code":"([a-z_]+)"/.exec(text)?.[1] ?? 'unknown';
      this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
      this.answers += 1;
    }
    for (const wake of this.wakers) wake();
  }

  static async open(url: string, timeoutMs: number): Promise<SendingSocket> {
    let sending: SendingSocket | undefined = undefined; // set once open: frames reach it from then on
    const client = await openSocket(url, { openTimeoutMs: timeoutMs, onFrame: (text) => sending?.onFrame(text) });
    sending = new SendingSocket(client);
    return sending;
  }

  send(frame: string): void {
    this.socket.ws.send(frame);
  }

  /** When `sent` for this clientMessageId arrived, if it has. */
  sentTime(clientMessageId: string): number | undefined {
    return this.sentAt.get(clientMessageId);
  }

  /** Resolves once `check` holds or at the deadline (with whether it held). */
  until(check: () => boolean, deadline: number): Promise<boolean> {
    if (check()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        this.wakers.delete(wake);
        resolve(ok);
      };
      const wake = () => {
        if (check()) finish(true);
      };
      const timer = setTimeout(() => finish(check()), Math.max(0, deadline - Date.now()));
      this.wakers.add(wake);
    });
  }

  async close(): Promise<void> {
    await this.socket.close();
  }
}

interface Room {
  conversationId: string;
  sender: SendingSocket;
  pool: ClientPool;
}

/** Runs every (N, delay) cell: one local backend per delay, one conversation per N on it. */
export async function runSent(settings: SentSettings, endpoints: SentEndpoints, progress: Progress): Promise<SentResult> {
  const rows: SentRow[] = [];
  const pool = await createPool('child');
  const db = new DynamoDBClient({ endpoint: endpoints.dynamodbEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  try {
    for (const delayMs of settings.delaysMs) {
      const backend = await startLocalBackend({
        stage: `sent${delayMs}`,
        dynamodbEndpoint: endpoints.dynamodbEndpoint,
        sqsEndpoint: endpoints.sqsEndpoint,
        env: {
          LOG_LEVEL: 'SILENT',
          RATE_LIMIT_PER_SECOND: '1000000',
          RATE_LIMIT_BURST: '1000000',
          RATE_LIMIT_USER_PER_SECOND: '1000000',
          RATE_LIMIT_USER_BURST: '1000000',
          APP_SECRET_JSON: JSON.stringify({ masterKey: MASTER_KEY, jwtSecret: JWT_SECRET }),
        },
        gateway: { managementDelayMs: delayMs },
      });
      try {
        for (const n of settings.sizes) {
          const room = await openRoom(backend, db, pool, n, settings.timeoutMs, progress, delayMs);
          try {
            rows.push(await measureCell(room, n, delayMs, settings, progress));
          } finally {
            await room.sender.close();
            await pool.drop();
            // Let the gateway run the $disconnects before the next room (bounded: they are quick).
            await sleep(300);
          }
        }
      } finally {
        await backend.close();
      }
    }
  } finally {
    db.destroy();
    await pool.close();
  }
  return { window: settings.window, rows };
}

async function openRoom(
  backend: LocalBackend,
  db: DynamoDBClient,
  pool: ClientPool,
  n: number,
  timeoutMs: number,
  progress: Progress,
  delayMs: number,
): Promise<Room> {
  const conversationId = `sent-${n}-${delayMs}-${randomUUID().slice(0, 8)}`;
  const receivers = Array.from({ length: n }, (_, i) => `r${i}`);
  // Membership as the admin CLI writes it: one item per (conversationId, userId).
  await mapLimit([SENDER, ...receivers], 8, (userId) =>
    db.send(new PutItemCommand({ TableName: backend.tables.members, Item: { conversationId: { S: conversationId }, userId: { S: userId } } })),
  );
  const secret = new TextEncoder().encode(JWT_SECRET);
  const url = async (userId: string) => {
    const token = await signToken(secret, userId, { ttlSeconds: 3600 });
    return `${backend.url}?${new URLSearchParams({ token, conversationId, clientId: 'd' }).toString()}`;
  };
  const urls = await Promise.all(receivers.map(url));
  progress.start(`sent N=${n} delay ${delayMs} ms: connect`, n, 'connections');
  await pool.open(urls, CONNECT_CONCURRENCY, (opened) => progress.update(opened));
  progress.finish();
  const sender = await SendingSocket.open(await url(SENDER), timeoutMs);
  return { conversationId, sender, pool };
}

async function measureCell(room: Room, n: number, delayMs: number, settings: SentSettings, progress: Progress): Promise<SentRow> {
  const frame = (clientMessageId: string) => JSON.stringify({ action: 'sendMessage', conversationId: room.conversationId, clientMessageId, body: BODY });
  const target = settings.samples(n, delayMs);
  const sentTimes: number[] = [];
  const lastTimes: number[] = [];
  let timeouts = 0;
  let taken = 0;
  const budgetEnd = Date.now() + settings.cellBudgetMs;
  progress.start(`sent N=${n} delay ${delayMs} ms: time to sent`, target, 'samples');
  for (let i = 0; i < WARM_UP + target; i += 1) {
    if (i >= WARM_UP && Date.now() > budgetEnd) break;
    await room.pool.reset();
    const id = `lat-${i}-${randomUUID().slice(0, 8)}`;
    const answersBefore = room.sender.answers;
    const start = now();
    room.sender.send(frame(id));
    const deadline = Date.now() + settings.timeoutMs;
    const answered = await room.sender.until(() => room.sender.sentTime(id) !== undefined || room.sender.answers > answersBefore, deadline);
    const delivered = await room.pool.waitFor(n, Math.max(0, deadline - Date.now()), () => undefined);
    const sentAt = room.sender.sentTime(id);
    if (i >= WARM_UP) {
      taken += 1;
      if (!answered || sentAt === undefined || delivered.received < n) timeouts += 1;
      if (sentAt !== undefined) sentTimes.push(sentAt - start);
      if (delivered.received >= n && delivered.lastAt > 0) lastTimes.push(delivered.lastAt - start);
      progress.update(taken);
    }
    await sleep(GAP_MS);
  }
  progress.finish(`p50 ${round(percentile(sentTimes, 50), 2)} ms, p99 ${round(percentile(sentTimes, 99), 2)} ms to sent`);

  // Throughput: `window` frames in flight, deliveries counted at the receivers until the last one arrives.
  const messages = settings.messages(n, delayMs);
  const expected = messages * n;
  await room.pool.reset();
  progress.start(`sent N=${n} delay ${delayMs} ms: fan-out, ${settings.window} in flight`, expected, 'deliveries');
  const base = room.sender.answers;
  const startedAt = now();
  const passDeadline = Date.now() + Math.max(settings.timeoutMs, 60_000);
  let sending = true;
  for (let i = 0; i < messages && sending; i += 1) {
    sending = await room.sender.until(() => room.sender.answers >= base + i - settings.window + 1, passDeadline);
    if (sending) room.sender.send(frame(`tp-${i}-${randomUUID().slice(0, 8)}`));
  }
  await room.sender.until(() => room.sender.answers >= base + messages, passDeadline);
  const answeredAt = now();
  const delivered = await room.pool.waitFor(expected, Math.max(0, passDeadline - Date.now()), (count) => progress.update(count));
  const complete = delivered.received >= expected;
  const end = complete && delivered.lastAt > 0 ? delivered.lastAt : now();
  const seconds = Math.max(1e-6, (end - startedAt) / 1000);
  const answered = room.sender.answers - base;
  const throughput = {
    messages,
    deliveries: Math.min(delivered.received, expected),
    expected,
    seconds: round(seconds, 3),
    perSecond: round(Math.min(delivered.received, expected) / seconds, 0),
    sentPerSecond: round(answered / Math.max(1e-6, (answeredAt - startedAt) / 1000), 0),
    complete,
  };
  progress.finish(`${throughput.perSecond.toLocaleString('en-US')} deliveries/s, ${throughput.sentPerSecond} sent/s`);
  return {
    n,
    delayMs,
    samples: taken,
    sentP50: round(percentile(sentTimes, 50), 2),
    sentP99: round(percentile(sentTimes, 99), 2),
    lastP50: round(percentile(lastTimes, 50), 2),
    lastP99: round(percentile(lastTimes, 99), 2),
    timeouts,
    errors: Object.fromEntries(room.sender.errors),
    throughput,
  };
}

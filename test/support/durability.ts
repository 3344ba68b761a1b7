import { createServer, request as httpRequest, type Server } from 'node:http';
import { createConnection, type AddressInfo } from 'node:net';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { CONVERSATION_INDEX } from '../../deploy/tables.js';
import type { LocalBackend } from '../../local/backend.js';
import type { ChatClient, Frame } from './chat.js';

/**
 * Helpers for the durability tests (a Redis restart, a cluster migration, membership changes, device inflation):
 * a document client on a backend's DynamoDB, connection ids, paging every `unacked` / `history` entry, and a
 * counting proxy in front of DynamoDB.
 */

/** A document client on the backend's DynamoDB (call `destroy()` when done). */
export function documentClientOf(backend: Pick<LocalBackend, 'dynamodbEndpoint'>): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint: backend.dynamodbEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }),
    { marshallOptions: { removeUndefinedValues: true } },
  );
}

/** The connection id the backend gave a (user, device) in a conversation, from the registry. */
export async function connectionIdOf(
  db: DynamoDBDocumentClient,
  backend: Pick<LocalBackend, 'tables'>,
  conversationId: string,
  userId: string,
  deviceId: string,
): Promise<string> {
  const result = await db.send(
    new QueryCommand({
      TableName: backend.tables.connections,
      IndexName: CONVERSATION_INDEX,
      KeyConditionExpression: 'conversationId = :c',
      ExpressionAttributeValues: { ':c': conversationId },
    }),
  );
  const row = (result.Items ?? []).find((item) => item.userId === userId && item.deviceId === deviceId);
  if (row === undefined || typeof row.connectionId !== 'string') {
    throw new Error(`no registered connection for ${userId}/${deviceId} in ${conversationId}`);
  }
  return row.connectionId;
}

/** One entry of an `unacked` / `history` page: a message, or an undecryptable one (no body, `error`). */
export interface PageItem {
  conversationId: string;
  messageId: string;
  seq: number;
  senderId?: string;
  clientMessageId?: string;
  body?: string;
  error?: string;
}

/** The entries of a page frame, checked field by field (never trusted blindly). */
export function entriesOf(frame: Frame): PageItem[] {
  if (frame.type !== 'unacked' && frame.type !== 'history') {
    throw new Error(`expected an unacked or history page, got ${JSON.stringify(frame).slice(0, 300)}`);
  }
  const messages: unknown = frame.messages;
  if (!Array.isArray(messages)) throw new Error('page without messages');
  return messages.map((raw: unknown) => {
    if (typeof raw !== 'object' || raw === null) throw new Error('page entry is not an object');
    const entry: Record<string, unknown> = { ...raw };
    const { conversationId, messageId, seq } = entry;
    if (typeof conversationId !== 'string' || typeof messageId !== 'string' || typeof seq !== 'number') {
      throw new Error(`malformed page entry ${JSON.stringify(entry).slice(0, 200)}`);
    }
    const item: PageItem = { conversationId, messageId, seq };
    for (const field of ['senderId', 'clientMessageId', 'body', 'error'] as const) {
      const value = entry[field];
      if (typeof value === 'string') item[field] = value;
    }
    return item;
  });
}

/** Every page of `getUnacked` (`afterSeq` = the last seq received, while `hasMore`), concatenated. */
export async function allUnacked(client: ChatClient, conversationId: string, limit = 10): Promise<{ items: PageItem[]; pages: number }> {
  return await allPages(client, conversationId, 'getUnacked', 'unacked', limit);
}

/** The whole history, oldest first, paged with `afterSeq`. */
export async function allHistory(client: ChatClient, conversationId: string, limit = 10): Promise<{ items: PageItem[]; pages: number }> {
  return await allPages(client, conversationId, 'getHistory', 'history', limit);
}

async function allPages(
  client: ChatClient,
  conversationId: string,
  action: 'getUnacked' | 'getHistory',
  type: 'unacked' | 'history',
  limit: number,
): Promise<{ items: PageItem[]; pages: number }> {
  const items: PageItem[] = [];
  let afterSeq = 0;
  for (let pages = 1; pages <= 1000; pages += 1) {
    const page = await client.request({ action, conversationId, limit, afterSeq }, type);
    if (page.type !== type) throw new Error(`${action} answered ${JSON.stringify(page).slice(0, 300)}`);
    const entries = entriesOf(page);
    items.push(...entries);
    const last = entries[entries.length - 1];
    if (page.hasMore !== true) return { items, pages };
    if (last === undefined) throw new Error(`${action} answered hasMore with an empty page`);
    afterSeq = last.seq;
  }
  throw new Error(`${action} never ended`);
}

/** Frames of one type a client received so far. */
export function framesOf(client: ChatClient, type: string): Frame[] {
  return client.frames().filter((frame) => frame.type === type);
}

/** Every `error` frame of these clients, with who got it (for a readable failure). */
export function errorFrames(clients: readonly ChatClient[]): { who: string; frame: Frame }[] {
  return clients.flatMap((client) => framesOf(client, 'error').map((frame) => ({ who: `${client.userId}/${client.deviceId}`, frame })));
}

/** The `sent` answer of one clientMessageId, as a checked record. */
export interface Sent {
  clientMessageId: string;
  messageId: string;
  seq: number;
  duplicate: boolean;
  senderId: string;
  body: string;
}

function sentOf(frame: Frame): Omit<Sent, 'senderId' | 'body'> | undefined {
  const { clientMessageId, messageId, seq, duplicate } = frame;
  if (frame.type !== 'sent' || typeof clientMessageId !== 'string' || typeof messageId !== 'string' || typeof seq !== 'number') {
    return undefined;
  }
  return { clientMessageId, messageId, seq, duplicate: duplicate === true };
}

/**
 * Waits for the `sent` answer of `clientMessageId` (scanning every frame, so answers to a burst can arrive in
 * any order); fails at once if an `error` frame arrives that was not there when the wait began.
 */
export async function awaitSent(client: ChatClient, clientMessageId: string, body: string, errorsBefore: number, timeoutMs = 10_000): Promise<Sent> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const frame of client.frames()) {
      const sent = sentOf(frame);
      if (sent !== undefined && sent.clientMessageId === clientMessageId) return { ...sent, senderId: client.userId, body };
    }
    const errors = framesOf(client, 'error');
    if (errors.length > errorsBefore) {
      throw new Error(`sendMessage ${clientMessageId} answered ${JSON.stringify(errors.slice(errorsBefore))}`);
    }
    if (Date.now() > deadline) throw new Error(`no sent for ${clientMessageId}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Sends one message and waits for its `sent`. */
export async function sendOne(client: ChatClient, conversationId: string, clientMessageId: string, body: string): Promise<Sent> {
  const errorsBefore = framesOf(client, 'error').length;
  await client.send({ action: 'sendMessage', conversationId, clientMessageId, body });
  return await awaitSent(client, clientMessageId, body, errorsBefore);
}

/** Sends several messages without waiting between them, then waits for every `sent`. */
export async function sendBurst(
  client: ChatClient,
  conversationId: string,
  messages: readonly { clientMessageId: string; body: string }[],
  timeoutMs = 20_000,
): Promise<Sent[]> {
  const errorsBefore = framesOf(client, 'error').length;
  await Promise.all(messages.map(({ clientMessageId, body }) => client.send({ action: 'sendMessage', conversationId, clientMessageId, body })));
  return await Promise.all(messages.map(({ clientMessageId, body }) => awaitSent(client, clientMessageId, body, errorsBefore, timeoutMs)));
}

/** The ids of the live `message` frames a client received. */
export function liveMessageIds(client: ChatClient): string[] {
  return framesOf(client, 'message').flatMap((frame) => (typeof frame.messageId === 'string' ? [frame.messageId] : []));
}

/** 1, 2, …, n. */
export function oneTo(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1);
}

/** Ascending copy. */
export function ascending(values: readonly number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

/** What a counting proxy saw: every request's `X-Amz-Target` operation (`PutItem`, `Query`, …) with its table. */
export interface CountedRequest {
  operation: string;
  table: string | undefined;
}

export interface CountingProxy {
  endpoint: string;
  /** Every request forwarded so far, in arrival order. */
  readonly requests: CountedRequest[];
  close(): Promise<void>;
}

/**
 * An HTTP proxy on loopback in front of a DynamoDB endpoint that records each request's operation (from
 * `X-Amz-Target: DynamoDB_20120810.<Operation>`) and table, and forwards it unchanged: the count of what a
 * handler really sends, retries included, whatever client or adapter it uses.
 */
export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const upstream = new URL(target);
  const requests: CountedRequest[] = [];
  const server: Server = createServer((incoming, outgoing) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      const body = Buffer.concat(chunks);
      const header = incoming.headers['x-amz-target'];
      const operation = (Array.isArray(header) ? header[0] : header)?.split('.').pop() ?? 'unknown';
      let table: string | undefined;
      try {
        const parsed: unknown = JSON.parse(body.toString('utf8'));
        if (typeof parsed === 'object' && parsed !== null && 'TableName' in parsed && typeof parsed.TableName === 'string') {
          table = parsed.TableName;
        }
      } catch {
        table = undefined;
      }
      requests.push({ operation, table });
      const forward = httpRequest(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: incoming.method,
          path: incoming.url,
          headers: { ...incoming.headers, host: upstream.host },
        },
        (answer) => {
          outgoing.writeHead(answer.statusCode ?? 500, answer.headers);
          answer.pipe(outgoing);
        },
      );
      forward.on('error', () => {
        outgoing.destroy();
      });
      forward.end(body);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Counts by key, sorted by key, for a readable comparison. */
export function tally(keys: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const key of [...keys].sort()) counts[key] = (counts[key] ?? 0) + 1;
  return counts;
}

/** One command MONITOR reported. */
export interface MonitoredCommand {
  /** The command and its arguments, unquoted (escapes left as Redis prints them). */
  args: string[];
  /** `lua` for a command a script ran, else the client's address. */
  source: string;
}

/**
 * MONITOR over a plain socket (a client library's monitor mode can mistake the first lines for replies): every
 * command the server runs, scripts' commands included, in the order it ran them.
 */
export async function monitorRedis(url: string): Promise<{ commands: MonitoredCommand[]; close(): void }> {
  const { hostname, port } = new URL(url);
  const socket = createConnection({ host: hostname, port: Number(port) });
  const commands: MonitoredCommand[] = [];
  let buffered = '';
  let ok: () => void = () => undefined;
  const started = new Promise<void>((resolve, reject) => {
    ok = resolve;
    socket.once('error', reject);
  });
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    let newline = buffered.indexOf('\r\n');
    while (newline !== -1) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 2);
      newline = buffered.indexOf('\r\n');
      if (line === '+OK') {
        ok();
        continue;
      }
      const parsed = /^\+\d+\.\d+ \[\d+ ([^\]]+)\] (.*)$/.exec(line);
      if (parsed === null) continue;
      const args = [...(parsed[2] ?? '').matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1] ?? '');
      commands.push({ args, source: parsed[1] ?? '' });
    }
  });
  socket.on('error', () => undefined);
  socket.write('MONITOR\r\n');
  await started;
  return { commands, close: () => socket.destroy() };
}

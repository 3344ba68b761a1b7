import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendError, sendJson, splitTarget } from './http.js';

/** What the Management API needs from a live connection. */
export interface ManagedConnection {
  readonly connectedAt: number;
  readonly lastActiveAt: number;
  readonly sourceIp: string;
  readonly userAgent: string | undefined;
  /** False once the connection is closing or closed: it is gone for the Management API. */
  isOpen(): boolean;
  /** Sends bytes as one text frame; resolves false when the connection went away first. */
  sendText(data: Buffer): Promise<boolean>;
  /** Server-side close, as `DELETE @connections/{id}` does. */
  closeFromServer(): void;
}

export interface ManagementDeps {
  stage: string;
  maxPostBytes: number;
  /** Each request waits this long (ms) before it is acted on and answered; 0 answers at once. */
  delayMs: number;
  lookup(connectionId: string): ManagedConnection | undefined;
  log(event: string, fields: { method?: string; statusCode: number; connectionId?: string; bytes?: number }): void;
}

const GONE_MESSAGE = 'Connection is gone or does not exist';

type BodyResult = { ok: true; body: Buffer } | { ok: false; tooLarge: true } | { ok: false; tooLarge: false };

/** Reads a request body, keeping at most `limit` bytes; the rest is drained so the connection stays usable. */
function readBody(req: IncomingMessage, limit: number): Promise<BodyResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) tooLarge = true;
      if (!tooLarge) chunks.push(chunk);
    });
    req.once('end', () => resolve(tooLarge ? { ok: false, tooLarge: true } : { ok: true, body: Buffer.concat(chunks) }));
    req.once('error', () => resolve({ ok: false, tooLarge: false }));
  });
}

function decodeId(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

/**
 * Serves `POST|GET|DELETE /{stage}/@connections/{connectionId}` like the API Gateway Management API, answering with the
 * status codes, `x-amzn-ErrorType` names and JSON field names the AWS SDK v3 client deserialises. SigV4 is not checked.
 */
export async function handleManagementRequest(
  req: IncomingMessage,
  res: ServerResponse,
  deps: ManagementDeps,
): Promise<void> {
  if (deps.delayMs > 0) await new Promise<void>((resolve) => setTimeout(resolve, deps.delayMs));
  const method = req.method ?? 'GET';
  const { pathname } = splitTarget(req.url ?? '/');
  const stagePath = `/${deps.stage}`;
  const prefix = `${stagePath}/@connections/`;
  const answer = (statusCode: number, connectionId?: string, bytes?: number): void => {
    const fields: { method: string; statusCode: number; connectionId?: string; bytes?: number } = { method, statusCode };
    if (connectionId !== undefined) fields.connectionId = connectionId;
    if (bytes !== undefined) fields.bytes = bytes;
    deps.log('management_request', fields);
  };

  if (!pathname.startsWith(prefix)) {
    req.resume();
    if (pathname === stagePath || pathname === `${stagePath}/`) {
      sendError(res, 426, 'UpgradeRequiredException', 'Upgrade Required', { Upgrade: 'websocket' });
      answer(426);
      return;
    }
    sendError(res, 404, 'NotFoundException', 'Not Found');
    answer(404);
    return;
  }

  const rawId = pathname.slice(prefix.length);
  const connectionId = rawId === '' || rawId.includes('/') ? undefined : decodeId(rawId);
  if (connectionId === undefined || connectionId === '') {
    req.resume();
    sendError(res, 404, 'NotFoundException', 'Not Found');
    answer(404);
    return;
  }

  if (method !== 'POST' && method !== 'GET' && method !== 'DELETE') {
    req.resume();
    sendError(res, 405, 'MethodNotAllowedException', 'Method Not Allowed', { Allow: 'DELETE, GET, POST' });
    answer(405, connectionId);
    return;
  }

  if (method === 'POST') {
    const read = await readBody(req, deps.maxPostBytes);
    if (!read.ok) {
      if (read.tooLarge) {
        sendError(res, 413, 'PayloadTooLargeException', 'Request entity too large');
        answer(413, connectionId);
      } else {
        res.destroy();
      }
      return;
    }
    const connection = deps.lookup(connectionId);
    if (connection === undefined || !connection.isOpen() || !(await connection.sendText(read.body))) {
      sendError(res, 410, 'GoneException', GONE_MESSAGE);
      answer(410, connectionId);
      return;
    }
    sendJson(res, 200, undefined);
    answer(200, connectionId, read.body.length);
    return;
  }

  req.resume();
  const connection = deps.lookup(connectionId);
  if (connection === undefined || !connection.isOpen()) {
    sendError(res, 410, 'GoneException', GONE_MESSAGE);
    answer(410, connectionId);
    return;
  }

  if (method === 'GET') {
    const identity: { sourceIp: string; userAgent?: string } = { sourceIp: connection.sourceIp };
    if (connection.userAgent !== undefined) identity.userAgent = connection.userAgent;
    sendJson(res, 200, {
      connectedAt: new Date(connection.connectedAt).toISOString(),
      identity,
      lastActiveAt: new Date(connection.lastActiveAt).toISOString(),
    });
    answer(200, connectionId);
    return;
  }

  connection.closeFromServer();
  sendJson(res, 204, undefined);
  answer(204, connectionId);
}

import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { build } from 'esbuild';
import { sendError, sendJson, splitTarget } from '../gateway/http.js';
import { signToken } from '../tokens.js';
import { ConversationFullError } from '../../lambdas/errors.js';
import type { LocalPushService } from '../push-service.js';

/**
 * The chat page of `npm start` and the two endpoints it signs in with. Local emulator only: nothing here is
 * deployed, so `/dev/token` minting a token for any user id is a convenience, never a hole in a stage.
 */
export interface WebPageDeps {
  jwtSecret: Uint8Array;
  /** The gateway's WebSocket URL, handed to the page with its token. */
  url: () => string;
  /** Makes `userId` a member of `conversationId` unless it is one already. */
  join(conversationId: string, userId: string): Promise<void>;
  /**
   * The local push service, standing in for the browser's PushManager (Chromium's push service is FCM, out of
   * reach offline): the page gets its subscription from `POST /dev/push/subscribe` and reads what arrived for it
   * from `GET /dev/push/received`. Without it those paths are not served.
   */
  push?: WebPagePush;
}

export interface WebPagePush {
  service: Pick<LocalPushService, 'url' | 'subscribe' | 'received'>;
  /** The backend's VAPID public key: subscriptions are bound to it, as `PushManager.subscribe` binds them. */
  applicationServerKey?: string;
}

const HERE = fileURLToPath(new URL('.', import.meta.url));
const ID = /^[A-Za-z0-9_-]{1,64}$/;
const TOKEN_TTL_SECONDS = 24 * 3600;

/** The page's script: bundled from local/web/app.ts (with the client library) on first request, then kept. */
let bundle: Promise<string> | undefined;
function appBundle(): Promise<string> {
  bundle ??= build({
    entryPoints: [`${HERE}app.ts`],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  }).then((result) => result.outputFiles.map((file) => file.text).join('\n'));
  // A failed build is not kept: the next request tries again (after the file was fixed).
  bundle.catch(() => {
    bundle = undefined;
  });
  return bundle;
}

const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
};

function sendText(res: ServerResponse, type: string, text: string): void {
  res.writeHead(200, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  res.end(text);
}

function idParam(query: URLSearchParams, name: string): string | undefined {
  const value = query.get(name);
  return value !== null && ID.test(value) ? value : undefined;
}

/** Answers the page's requests; resolves false for anything else (the Management API's paths). */
export function webPage(deps: WebPageDeps): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  return async (req, res) => {
    const { pathname, rawQuery } = splitTarget(req.url ?? '/');
    const query = new URLSearchParams(rawQuery);
    const asset = Object.prototype.hasOwnProperty.call(STATIC, pathname) ? STATIC[pathname] : undefined;
    if (req.method === 'GET' && asset !== undefined) {
      sendText(res, asset.type, await readFile(`${HERE}${asset.file}`, 'utf8'));
      return true;
    }
    if (req.method === 'GET' && pathname === '/app.js') {
      sendText(res, 'text/javascript; charset=utf-8', await appBundle());
      return true;
    }
    if (pathname.startsWith('/dev/push/')) return deps.push === undefined ? false : pushEndpoint(deps.push, req, res, pathname, query);
    if (pathname !== '/dev/token' && pathname !== '/dev/join') return false;
    req.resume();
    const userId = idParam(query, 'user');
    if (userId === undefined) {
      sendError(res, 400, 'BadRequestException', 'user must be 1–64 of A-Z a-z 0-9 _ -');
      return true;
    }
    if (req.method === 'GET' && pathname === '/dev/token') {
      const token = await signToken(deps.jwtSecret, userId, { ttlSeconds: TOKEN_TTL_SECONDS });
      sendJson(res, 200, { userId, token, url: deps.url() }, undefined, { 'Cache-Control': 'no-store' });
      return true;
    }
    if (req.method === 'POST' && pathname === '/dev/join') {
      const conversationId = idParam(query, 'conversation');
      if (conversationId === undefined) {
        sendError(res, 400, 'BadRequestException', 'conversation must be 1–64 of A-Z a-z 0-9 _ -');
        return true;
      }
      try {
        await deps.join(conversationId, userId);
      } catch (error) {
        if (!(error instanceof ConversationFullError)) throw error;
        sendError(res, 403, 'ForbiddenException', error.message);
        return true;
      }
      sendJson(res, 200, { userId, conversationId });
      return true;
    }
    sendError(res, 405, 'MethodNotAllowedException', 'GET /dev/token or POST /dev/join');
    return true;
  };
}

/** Newest pushes a `received` answer carries at most (the page polls; older ones are of no use to it). */
const MAX_PUSHES_SHOWN = 50;

async function pushEndpoint(push: WebPagePush, req: IncomingMessage, res: ServerResponse, pathname: string, query: URLSearchParams): Promise<boolean> {
  req.resume();
  if (req.method === 'POST' && pathname === '/dev/push/subscribe') {
    let subscription: Awaited<ReturnType<WebPagePush['service']['subscribe']>>;
    try {
      subscription = await push.service.subscribe(push.applicationServerKey === undefined ? {} : { applicationServerKey: push.applicationServerKey });
    } catch (error) {
      // The service holds a bounded number of subscriptions.
      sendError(res, 503, 'ServiceUnavailableException', error instanceof Error ? error.message : 'no subscription');
      return true;
    }
    sendJson(res, 200, subscription, undefined, { 'Cache-Control': 'no-store' });
    return true;
  }
  if (req.method === 'GET' && pathname === '/dev/push/received') {
    const endpoint = query.get('endpoint');
    if (endpoint === null || !endpoint.startsWith(`${push.service.url}/push/`)) {
      sendError(res, 400, 'BadRequestException', 'endpoint must be a subscription of the local push service');
      return true;
    }
    const pushes = push.service.received(endpoint).slice(-MAX_PUSHES_SHOWN);
    sendJson(res, 200, { pushes: pushes.map(({ payload, at, ttl, urgency, topic }) => ({ payload, at, ttl, urgency, topic })) }, undefined, { 'Cache-Control': 'no-store' });
    return true;
  }
  sendError(res, 405, 'MethodNotAllowedException', 'POST /dev/push/subscribe or GET /dev/push/received');
  return true;
}

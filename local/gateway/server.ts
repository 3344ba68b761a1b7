import { createServer, STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { Connection, GOING_AWAY, type CloseInfo, type ConnectionLimits } from './connection.js';
import {
  connectEvent,
  disconnectEvent,
  headerMaps,
  messageEvent,
  queryMaps,
  type ConnectionFacts,
} from './events.js';
import { rejectUpgrade, sendError, splitTarget } from './http.js';
import { newApiId, newAwsStyleId, newTraceId } from './ids.js';
import { invokeHandler } from './lambda.js';
import { handleManagementRequest } from './management.js';
import { compileSelectionExpression, selectRoute } from './routing.js';
import type {
  GatewayLogEntry,
  LocalGateway,
  LocalGatewayOptions,
  RouteDefinition,
  RouteTable,
} from './types.js';

const MINUTE = 60_000;
const DEFAULTS = {
  host: '127.0.0.1',
  stage: 'local',
  routeSelectionExpression: '$request.body.action',
  idleTimeoutMs: 10 * MINUTE,
  maxConnectionMs: 120 * MINUTE,
  maxFrameBytes: 32 * 1024,
  maxMessageBytes: 128 * 1024,
  maxPostBytes: 128 * 1024,
  // A client gets this long to send its request headers (an upgrade's too), then this long for a whole request;
  // Node's own defaults (60 s, 300 s, checked every 30 s) let a few hundred slow clients hold sockets for minutes.
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  // API Gateway gives a `$connect` integration 29 s; a handshake still undecided then answers 504.
  handshakeTimeoutMs: 29_000,
} as const;

const STAGE_NAME = /^[A-Za-z0-9_-]+$/;

/** Headers API Gateway sets itself on `$connect`; a client's own copies are replaced (X-Forwarded-For is extended). */
const GATEWAY_SET_HEADERS = new Set(['x-forwarded-for', 'x-forwarded-port', 'x-forwarded-proto', 'x-amzn-trace-id']);

/** API Gateway's error frames, byte for byte, including their uneven spacing. */
function errorFrame(message: 'Forbidden' | 'Internal server error', connectionId: string, requestId: string): string {
  return `{"message": "${message}", "connectionId":${JSON.stringify(connectionId)}, "requestId":${JSON.stringify(requestId)}}`;
}

function hasRoute(routes: RouteTable, key: string): RouteDefinition | undefined {
  return Object.prototype.hasOwnProperty.call(routes, key) ? routes[key] : undefined;
}

function sourceIpOf(req: IncomingMessage): string {
  const address = req.socket.remoteAddress ?? '127.0.0.1';
  return address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address;
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

interface PendingUpgrade {
  facts: ConnectionFacts;
  socket: Duplex;
  rawQuery: string;
  requestTimeEpoch: number;
  requestId: string;
  /** The subprotocol the `$connect` integration returned, if any. */
  protocol: string | undefined;
}

type ConnectDecision = { accept: true; protocol: string | undefined } | { accept: false; status: number; message: string };

export async function startLocalGateway(options: LocalGatewayOptions = {}): Promise<LocalGateway> {
  const host = options.host ?? DEFAULTS.host;
  const stage = options.stage ?? DEFAULTS.stage;
  if (!STAGE_NAME.test(stage)) throw new Error(`invalid stage name ${JSON.stringify(stage)}`);
  const routes: RouteTable = options.routes ?? {};
  const selectionPath = compileSelectionExpression(options.routeSelectionExpression ?? DEFAULTS.routeSelectionExpression);
  const apiId = options.apiId ?? newApiId();
  const limits: ConnectionLimits = {
    idleTimeoutMs: positive('idleTimeoutMs', options.idleTimeoutMs ?? DEFAULTS.idleTimeoutMs),
    maxConnectionMs: positive('maxConnectionMs', options.maxConnectionMs ?? DEFAULTS.maxConnectionMs),
    maxFrameBytes: positive('maxFrameBytes', options.maxFrameBytes ?? DEFAULTS.maxFrameBytes),
    maxMessageBytes: positive('maxMessageBytes', options.maxMessageBytes ?? DEFAULTS.maxMessageBytes),
  };
  const maxPostBytes = positive('maxPostBytes', options.maxPostBytes ?? DEFAULTS.maxPostBytes);
  const headersTimeoutMs = positive('headersTimeoutMs', options.headersTimeoutMs ?? DEFAULTS.headersTimeoutMs);
  const requestTimeoutMs = Math.max(headersTimeoutMs, positive('requestTimeoutMs', options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs));
  const handshakeTimeoutMs = positive('handshakeTimeoutMs', options.handshakeTimeoutMs ?? DEFAULTS.handshakeTimeoutMs);
  const managementDelayMs = options.managementDelayMs ?? 0;
  if (!Number.isFinite(managementDelayMs) || managementDelayMs < 0) throw new Error('managementDelayMs must be a non-negative number');
  const newConnectionId = options.newConnectionId ?? newAwsStyleId;

  const log = (entry: Omit<GatewayLogEntry, 'apiId' | 'stage'>): void => {
    if (options.log === undefined) return;
    try {
      options.log({ ...entry, apiId, stage });
    } catch {
      // A failing log sink must not take the gateway down.
    }
  };

  const connections = new Map<string, Connection>();
  /** Connections dropped by `loseConnection`: their `$disconnect` is never run. */
  const lost = new Set<string>();
  const pendingUpgrades = new WeakMap<IncomingMessage, PendingUpgrade>();
  const pendingConnects = new Set<Promise<void>>();
  /** Handler invocations still running (messages and `$disconnect`), so `close()` can wait for them. */
  const inflight = new Set<Promise<unknown>>();
  let state: 'running' | 'closing' = 'running';
  let port = 0;

  const track = <T>(work: Promise<T>, set: Set<Promise<T>>): void => {
    set.add(work);
    const forget = (): void => {
      set.delete(work);
    };
    // Both branches, so a rejection is observed here rather than reported as unhandled.
    work.then(forget, (error: unknown) => {
      forget();
      log({ level: 'error', event: 'internal_error', errorName: error instanceof Error ? error.name : typeof error });
    });
  };

  const runDisconnect = (facts: ConnectionFacts, close: CloseInfo): void => {
    log({ level: 'info', event: 'disconnect', connectionId: facts.connectionId, closeCode: close.code });
    const route = hasRoute(routes, '$disconnect');
    if (route === undefined) return;
    const requestId = newAwsStyleId();
    const event = disconnectEvent(facts, requestId, Date.now(), close.code, close.reason);
    const work = invokeHandler(route.handler, event, '$disconnect').catch((error: unknown) => {
      log({
        level: 'error',
        event: 'handler_error',
        connectionId: facts.connectionId,
        routeKey: '$disconnect',
        requestId,
        errorName: error instanceof Error ? error.name : typeof error,
      });
    });
    track(work, inflight);
  };

  const onText = (connection: Connection, text: string): void => {
    const requestId = newAwsStyleId();
    const connectionId = connection.connectionId;
    const routeKey = selectRoute(routes, text, selectionPath);
    const route = routeKey === undefined ? undefined : hasRoute(routes, routeKey);
    if (routeKey === undefined || route === undefined) {
      log({ level: 'warn', event: 'no_route', connectionId, requestId, bytes: Buffer.byteLength(text) });
      void connection.sendText(errorFrame('Forbidden', connectionId, requestId));
      return;
    }
    log({ level: 'debug', event: 'message', connectionId, routeKey, requestId, bytes: Buffer.byteLength(text) });
    const event = messageEvent(connection.facts, routeKey, requestId, newAwsStyleId(), Date.now(), text);
    const work = invokeHandler(route.handler, event, routeKey).then(
      async (result) => {
        const body = result?.body;
        if (route.twoWay === true && typeof body === 'string' && body !== '') await connection.sendText(body);
      },
      async (error: unknown) => {
        log({
          level: 'error',
          event: 'handler_error',
          connectionId,
          routeKey,
          requestId,
          errorName: error instanceof Error ? error.name : typeof error,
        });
        await connection.sendText(errorFrame('Internal server error', connectionId, requestId));
      },
    );
    track(work, inflight);
  };

  const hooks = {
    onText,
    onClosed(connection: Connection, close: CloseInfo): void {
      connections.delete(connection.connectionId);
      if (lost.delete(connection.connectionId)) {
        log({ level: 'info', event: 'lost', connectionId: connection.connectionId });
        return;
      }
      runDisconnect(connection.facts, close);
    },
  };

  const runConnect = async (req: IncomingMessage, pending: PendingUpgrade): Promise<ConnectDecision> => {
    const route = hasRoute(routes, '$connect');
    if (route === undefined) return { accept: true, protocol: undefined };
    const forwardedFor = req.headers['x-forwarded-for'];
    const ip = pending.facts.identity.sourceIp;
    const extra: [string, string][] = [
      ['X-Amzn-Trace-Id', newTraceId(pending.requestTimeEpoch)],
      ['X-Forwarded-For', typeof forwardedFor === 'string' && forwardedFor !== '' ? `${forwardedFor}, ${ip}` : ip],
      ['X-Forwarded-Port', String(port)],
      ['X-Forwarded-Proto', 'http'],
    ];
    const raw: string[] = [];
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i];
      const value = req.rawHeaders[i + 1];
      if (name === undefined || value === undefined || GATEWAY_SET_HEADERS.has(name.toLowerCase())) continue;
      raw.push(name, value);
    }
    const event = connectEvent(
      pending.facts,
      pending.requestId,
      pending.requestTimeEpoch,
      headerMaps(raw, extra),
      queryMaps(pending.rawQuery),
    );
    let result;
    try {
      result = await invokeHandler(route.handler, event, '$connect');
    } catch (error) {
      log({
        level: 'error',
        event: 'handler_error',
        connectionId: pending.facts.connectionId,
        routeKey: '$connect',
        requestId: pending.requestId,
        errorName: error instanceof Error ? error.name : typeof error,
      });
      return { accept: false, status: 500, message: 'Internal server error' };
    }
    const status = result?.statusCode ?? 200;
    if (!Number.isInteger(status) || status < 100 || status > 599) {
      return { accept: false, status: 502, message: 'Internal server error' };
    }
    if (status < 200 || status > 299) return { accept: false, status, message: STATUS_CODES[status] ?? 'Error' };
    let protocol: string | undefined;
    for (const [name, value] of Object.entries(result?.headers ?? {})) {
      if (name.toLowerCase() === 'sec-websocket-protocol') protocol = String(value);
    }
    return { accept: true, protocol };
  };

  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    // The frame monitor enforces maxMessageBytes first with the same result; this bounds what `ws` buffers.
    maxPayload: limits.maxMessageBytes,
    // Without a subprotocol from `$connect`, API Gateway answers without one even if the client asked.
    handleProtocols: (_protocols, req) => pendingUpgrades.get(req)?.protocol ?? false,
    verifyClient: (info, done) => {
      const req = info.req;
      const pending = pendingUpgrades.get(req);
      if (pending === undefined) {
        done(false, 500);
        return;
      }
      // A `$connect` that takes too long: the client is told 504 and its socket closed; if the integration says yes
      // later, the socket is gone and the branch below tells it with a `$disconnect`.
      const timer = setTimeout(() => {
        log({ level: 'warn', event: 'connect_timeout', connectionId: pending.facts.connectionId });
        rejectUpgrade(pending.socket, 504, 'Gateway Timeout');
      }, handshakeTimeoutMs);
      const work = runConnect(req, pending).then((decision) => {
        clearTimeout(timer);
        if (!decision.accept) {
          pendingUpgrades.delete(req);
          log({
            level: 'info',
            event: 'connect_refused',
            connectionId: pending.facts.connectionId,
            statusCode: decision.status,
          });
          done(false, decision.status, JSON.stringify({ message: decision.message }), {
            'Content-Type': 'application/json',
          });
          return;
        }
        pending.protocol = decision.protocol;
        const socket = pending.socket;
        if (socket.destroyed || !socket.readable || !socket.writable) {
          // `$connect` said yes but the client is gone; the integration may have stored the id, so tell it.
          pendingUpgrades.delete(req);
          runDisconnect(pending.facts, { code: 1006, reason: '' });
        }
        done(true);
      });
      track(work, pendingConnects);
    },
  });

  const onOpen = (ws: WebSocket, req: IncomingMessage): void => {
    const pending = pendingUpgrades.get(req);
    pendingUpgrades.delete(req);
    if (pending === undefined) {
      ws.terminate();
      return;
    }
    const connection = new Connection(pending.facts, ws, pending.socket, limits, hooks);
    connections.set(connection.connectionId, connection);
    log({ level: 'info', event: 'connect', connectionId: connection.connectionId });
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // Errors on a socket being refused must not reach the process; `ws` installs its own once it takes over.
    socket.on('error', () => socket.destroy());
    if (state !== 'running') {
      rejectUpgrade(socket, 503, 'Service Unavailable');
      return;
    }
    const { pathname, rawQuery } = splitTarget(req.url ?? '/');
    if (pathname !== `/${stage}`) {
      rejectUpgrade(socket, 404, 'Not Found');
      return;
    }
    const now = Date.now();
    const userAgent = req.headers['user-agent'];
    const facts: ConnectionFacts = {
      connectionId: newConnectionId(),
      connectedAt: now,
      identity: userAgent === undefined ? { sourceIp: sourceIpOf(req) } : { sourceIp: sourceIpOf(req), userAgent },
      domainName: req.headers.host ?? `${hostForUrl(host)}:${port}`,
      stage,
      apiId,
    };
    pendingUpgrades.set(req, { facts, socket, rawQuery, requestTimeEpoch: now, requestId: newAwsStyleId(), protocol: undefined });
    wss.handleUpgrade(req, socket, head, onOpen);
  };

  const server: Server = createServer({
    headersTimeout: headersTimeoutMs,
    requestTimeout: requestTimeoutMs,
    // How often Node looks for requests past those timeouts (30 s by default, longer than the timeouts here).
    connectionsCheckingInterval: Math.min(1000, Math.ceil(headersTimeoutMs / 2)),
  }, (req, res) => {
    const answered = options.http === undefined ? Promise.resolve(false) : options.http(req, res);
    answered.then((done) =>
      done
        ? undefined
        : handleManagementRequest(req, res, {
            stage,
            maxPostBytes,
            delayMs: managementDelayMs,
            lookup: (id) => connections.get(id),
            log: (event, fields) => log({ level: 'debug', event, ...fields }),
          }),
    ).catch((error: unknown) => {
      log({ level: 'error', event: 'management_error', errorName: error instanceof Error ? error.name : typeof error });
      if (!res.headersSent) sendError(res, 500, 'InternalServerErrorException', 'Internal server error');
      else res.destroy();
    });
  });
  server.on('upgrade', onUpgrade);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const address: AddressInfo | string | null = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('gateway server has no TCP address');
  port = address.port;
  const base = `${hostForUrl(host)}:${port}/${stage}`;
  log({ level: 'info', event: 'listening', address: base });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      state = 'closing';
      while (pendingConnects.size > 0) await Promise.allSettled([...pendingConnects]);
      const open = [...connections.values()];
      for (const connection of open) connection.shutdown(GOING_AWAY.code, GOING_AWAY.reason);
      await Promise.all(open.map((connection) => connection.closed));
      while (inflight.size > 0) await Promise.allSettled([...inflight]);
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      log({ level: 'info', event: 'closed' });
    })();
    return closing;
  };

  return {
    url: `ws://${base}`,
    managementEndpoint: `http://${base}`,
    apiId,
    stage,
    port,
    connectionIds: () => [...connections.keys()],
    loseConnection: (connectionId) => {
      const connection = connections.get(connectionId);
      if (connection === undefined) return false;
      lost.add(connectionId);
      connection.drop();
      return true;
    },
    close,
  };
}

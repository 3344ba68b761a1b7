// A local Web Push service (RFC 8030) for `npm start` and the tests: it hands out subscriptions the way a browser's
// PushManager does, accepts real Web Push requests (RFC 8291 aes128gcm payloads, RFC 8292 VAPID), decrypts them with
// the subscription's private key and keeps what arrived, so the backend's real push path can be exercised offline.
//
// The endpoints are plain http on loopback. `web-push`'s `sendNotification` always speaks https, so a sender that
// must reach these endpoints builds the request with `webpush.generateRequestDetails()` (the same VAPID signing and
// encryption) and sends it with `fetch`; that works for real https push services too.
import { createECDH, randomBytes, randomUUID, timingSafeEqual, type ECDH } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import ece from 'http_ece';
import { importJWK, jwtVerify } from 'jose';

export interface LocalPushServiceOptions {
  /** Loopback only: 127.0.0.1 (default), ::1 or localhost. */
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Put the decrypted payload text in the log lines too (default false: logs carry sizes and headers only). */
  showPayloads?: boolean;
  /** Where the one-line-per-push entries go; nothing is logged without it (see `pushJsonLineLog`). */
  log?: (entry: PushLogEntry) => void;
  /** Subscriptions kept at most (default 1000); `subscribe()` beyond it throws. */
  maxSubscriptions?: number;
  /** Pushes kept at most, oldest dropped first (default 1000). */
  maxReceived?: number;
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
}

export interface PushSubscriptionJson {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

export interface SubscribeOptions {
  /**
   * The application server's VAPID public key (base64url, uncompressed P-256), as a page passes it to
   * `PushManager.subscribe`; pushes signed with any other key are then refused with 403.
   */
  applicationServerKey?: string;
}

export interface ReceivedPush {
  endpoint: string;
  /** The decrypted payload as UTF-8 text; undefined for a push without a body. */
  payload: string | undefined;
  ttl: number | undefined;
  urgency: string | undefined;
  /** A later push with the same topic replaces this one (RFC 8030 §5.4). */
  topic: string | undefined;
  /** The VAPID JWT's `sub` (a mailto: or https: contact of the sender). */
  vapidSubject: string | undefined;
  at: number;
}

export interface PushLogEntry {
  level: 'info' | 'warn';
  event: 'push_received' | 'push_rejected';
  /** The first characters of the subscription id: enough to tell them apart, not enough to post to one. */
  subscription: string;
  status: number;
  reason?: string;
  bytes: number;
  ttl?: number;
  urgency?: string;
  topic?: string;
  vapidSubject?: string;
  /** Only with `showPayloads`. */
  payload?: string;
}

export interface LocalPushService {
  /** The service's origin, e.g. http://127.0.0.1:43123 (the VAPID audience). */
  readonly url: string;
  subscribe(options?: SubscribeOptions): Promise<PushSubscriptionJson>;
  /** Pushes received, oldest first; only those for `endpoint` when given. */
  received(endpoint?: string): ReceivedPush[];
  /** The subscription is gone from now on: pushes to it answer 410 Gone. */
  expire(endpoint: string): void;
  /** Called after each accepted push; returns a function that removes the listener. */
  onPush(listener: (push: ReceivedPush) => void): () => void;
  close(): Promise<void>;
}

/** A `log` option that writes each entry as one JSON line. */
export function pushJsonLineLog(
  write: (line: string) => void = (line) => {
    process.stderr.write(line);
  },
): (entry: PushLogEntry) => void {
  return (entry) => write(`${JSON.stringify({ time: new Date().toISOString(), source: 'local-push', ...entry })}\n`);
}

const DEFAULTS = {
  host: '127.0.0.1',
  maxSubscriptions: 1000,
  maxReceived: 1000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
} as const;

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
/** RFC 8030 §7.2 / RFC 8291 §4: push services accept at least 4096 bytes of encrypted payload; this one no more. */
export const MAX_PUSH_BODY_BYTES = 4096;
const URGENCIES = new Set(['very-low', 'low', 'normal', 'high']);
const TOPIC = /^[A-Za-z0-9_-]{1,32}$/;
const TTL = /^\d{1,10}$/;
/** RFC 8292 §2: a VAPID token's `exp` is at most 24 hours ahead; a minute of clock skew is forgiven. */
const MAX_VAPID_LIFETIME_S = 24 * 60 * 60 + 60;
const PUSH_PATH = /^\/push\/([A-Za-z0-9_-]{16,64})$/;

interface Subscription {
  id: string;
  endpoint: string;
  ecdh: ECDH;
  auth: Buffer;
  applicationServerKey: Buffer | undefined;
  expired: boolean;
}

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
  ) {
    super(reason);
  }
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
}

function single(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** `vapid t=<jwt>, k=<key>` (RFC 8292 §3) → its parameters. */
function vapidParams(header: string): { t: string; k: string } {
  const match = /^vapid\s+(.+)$/i.exec(header.trim());
  if (match?.[1] === undefined) throw new Refusal(401, 'authorization is not a vapid credential');
  const params = new Map<string, string>();
  for (const part of match[1].split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) params.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  const t = params.get('t');
  const k = params.get('k');
  if (t === undefined || k === undefined) throw new Refusal(401, 'vapid credential lacks t or k');
  return { t, k };
}

async function verifyVapid(header: string | undefined, audience: string, restrictedTo: Buffer | undefined): Promise<string | undefined> {
  if (header === undefined) throw new Refusal(401, 'missing vapid authorization');
  const { t, k } = vapidParams(header);
  const point = Buffer.from(k, 'base64url');
  if (point.length !== 65 || point[0] !== 0x04) throw new Refusal(401, 'vapid key is not an uncompressed P-256 point');
  if (restrictedTo !== undefined && !(restrictedTo.length === point.length && timingSafeEqual(restrictedTo, point))) {
    throw new Refusal(403, 'vapid key does not match the subscription');
  }
  let subject: unknown;
  try {
    const key = await importJWK(
      { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') },
      'ES256',
    );
    const { payload } = await jwtVerify(t, key, { algorithms: ['ES256'], audience, requiredClaims: ['exp'] });
    if (typeof payload.exp !== 'number' || payload.exp > Date.now() / 1000 + MAX_VAPID_LIFETIME_S) {
      throw new Refusal(401, 'vapid token lives longer than 24 hours');
    }
    subject = payload.sub;
  } catch (error) {
    if (error instanceof Refusal) throw error;
    throw new Refusal(401, `vapid token rejected (${error instanceof Error ? error.name : 'error'})`);
  }
  return typeof subject === 'string' ? subject : undefined;
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = single(req, 'content-length');
  if (declared !== undefined && Number(declared) > limit) throw new Refusal(413, 'payload too large');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > limit) throw new Refusal(413, 'payload too large');
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

export async function startLocalPushService(options: LocalPushServiceOptions = {}): Promise<LocalPushService> {
  const host = options.host ?? DEFAULTS.host;
  if (!LOOPBACK.has(host)) throw new Error(`the local push service listens on loopback only, not ${JSON.stringify(host)}`);
  const maxSubscriptions = positive('maxSubscriptions', options.maxSubscriptions ?? DEFAULTS.maxSubscriptions);
  const maxReceived = positive('maxReceived', options.maxReceived ?? DEFAULTS.maxReceived);
  const headersTimeoutMs = positive('headersTimeoutMs', options.headersTimeoutMs ?? DEFAULTS.headersTimeoutMs);
  const requestTimeoutMs = Math.max(headersTimeoutMs, positive('requestTimeoutMs', options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs));
  const showPayloads = options.showPayloads === true;

  const subscriptions = new Map<string, Subscription>();
  const byEndpoint = new Map<string, Subscription>();
  let received: ReceivedPush[] = [];
  const listeners = new Set<(push: ReceivedPush) => void>();
  let origin = '';

  const log = (entry: PushLogEntry): void => {
    if (options.log === undefined) return;
    try {
      options.log(entry);
    } catch {
      // A failing log sink must not take the service down.
    }
  };

  const accept = async (req: IncomingMessage, subscription: Subscription): Promise<{ push: ReceivedPush; bytes: number }> => {
    const ttlHeader = single(req, 'ttl');
    // RFC 8030 §5.2: TTL is required.
    if (ttlHeader === undefined || !TTL.test(ttlHeader)) throw new Refusal(400, 'missing or invalid TTL');
    const urgency = single(req, 'urgency');
    if (urgency !== undefined && !URGENCIES.has(urgency)) throw new Refusal(400, 'invalid Urgency');
    const topic = single(req, 'topic');
    if (topic !== undefined && !TOPIC.test(topic)) throw new Refusal(400, 'invalid Topic');
    const vapidSubject = await verifyVapid(single(req, 'authorization'), origin, subscription.applicationServerKey);
    const body = await readBody(req, MAX_PUSH_BODY_BYTES);
    let payload: string | undefined;
    if (body.length > 0) {
      if (single(req, 'content-encoding')?.toLowerCase() !== 'aes128gcm') throw new Refusal(415, 'content encoding must be aes128gcm');
      try {
        payload = ece
          .decrypt(body, { version: 'aes128gcm', privateKey: subscription.ecdh, authSecret: subscription.auth })
          .toString('utf8');
      } catch {
        throw new Refusal(400, 'payload does not decrypt with the subscription keys');
      }
    }
    const push: ReceivedPush = {
      endpoint: subscription.endpoint,
      payload,
      ttl: Number(ttlHeader),
      urgency,
      topic,
      vapidSubject,
      at: Date.now(),
    };
    return { push, bytes: body.length };
  };

  const store = (push: ReceivedPush): void => {
    if (push.topic !== undefined) {
      received = received.filter((earlier) => earlier.endpoint !== push.endpoint || earlier.topic !== push.topic);
    }
    received.push(push);
    if (received.length > maxReceived) received.splice(0, received.length - maxReceived);
    for (const listener of listeners) {
      try {
        listener(push);
      } catch {
        // One failing listener must not stop the others or the answer.
      }
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const id = PUSH_PATH.exec(path)?.[1];
    const subscription = id === undefined ? undefined : subscriptions.get(id);
    const short = id === undefined ? '-' : id.slice(0, 6);
    const refuse = (status: number, reason: string): void => {
      log({ level: 'warn', event: 'push_rejected', subscription: short, status, reason, bytes: Number(single(req, 'content-length') ?? 0) || 0 });
      // The body may be unread (refused on its headers): close rather than drain it.
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' }).end(`${reason}\n`);
    };
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      refuse(405, 'method not allowed');
      return;
    }
    if (subscription === undefined) {
      refuse(404, 'no such subscription');
      return;
    }
    if (subscription.expired) {
      refuse(410, 'subscription expired');
      return;
    }
    try {
      const { push, bytes } = await accept(req, subscription);
      store(push);
      log({
        level: 'info',
        event: 'push_received',
        subscription: short,
        status: 201,
        bytes,
        ...(push.ttl === undefined ? {} : { ttl: push.ttl }),
        ...(push.urgency === undefined ? {} : { urgency: push.urgency }),
        ...(push.topic === undefined ? {} : { topic: push.topic }),
        ...(push.vapidSubject === undefined ? {} : { vapidSubject: push.vapidSubject }),
        ...(showPayloads && push.payload !== undefined ? { payload: push.payload } : {}),
      });
      res
        .writeHead(201, { location: `${origin}/message/${randomUUID()}`, ttl: String(push.ttl ?? 0) })
        .end();
    } catch (error) {
      if (error instanceof Refusal) refuse(error.status, error.reason);
      else refuse(500, 'internal error');
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  server.headersTimeout = headersTimeoutMs;
  server.requestTimeout = requestTimeoutMs;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  return {
    url: origin,
    async subscribe(subscribeOptions: SubscribeOptions = {}): Promise<PushSubscriptionJson> {
      if (subscriptions.size >= maxSubscriptions) throw new Error(`the local push service holds ${maxSubscriptions} subscriptions already`);
      let applicationServerKey: Buffer | undefined;
      if (subscribeOptions.applicationServerKey !== undefined) {
        applicationServerKey = Buffer.from(subscribeOptions.applicationServerKey, 'base64url');
        if (applicationServerKey.length !== 65 || applicationServerKey[0] !== 0x04) {
          throw new Error('applicationServerKey must be an uncompressed P-256 public key (base64url)');
        }
      }
      const ecdh = createECDH('prime256v1');
      ecdh.generateKeys();
      const auth = randomBytes(16);
      const id = randomBytes(24).toString('base64url');
      const endpoint = `${origin}/push/${id}`;
      const subscription: Subscription = { id, endpoint, ecdh, auth, applicationServerKey, expired: false };
      subscriptions.set(id, subscription);
      byEndpoint.set(endpoint, subscription);
      return {
        endpoint,
        keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: auth.toString('base64url') },
      };
    },
    received(endpoint?: string): ReceivedPush[] {
      return received.filter((push) => endpoint === undefined || push.endpoint === endpoint).map((push) => ({ ...push }));
    },
    expire(endpoint: string): void {
      const subscription = byEndpoint.get(endpoint);
      if (subscription === undefined) throw new Error('no such subscription');
      subscription.expired = true;
    },
    onPush(listener: (push: ReceivedPush) => void): () => void {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    async close(): Promise<void> {
      listeners.clear();
      await new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      });
    },
  };
}

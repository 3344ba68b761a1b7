// The local push service against the real Web Push stack: `web-push` signs (VAPID) and encrypts (aes128gcm), the
// service verifies and decrypts with the subscription's own keys.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import webpush, { type RequestOptions } from 'web-push';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_PUSH_BODY_BYTES, startLocalPushService, type LocalPushService, type PushLogEntry } from '../../local/push-service.js';
import { webPage, type WebPagePush } from '../../local/web/server.js';

const SUBJECT = 'mailto:dev@relay-ws.test';
const vapid = webpush.generateVAPIDKeys();
const vapidDetails = { subject: SUBJECT, publicKey: vapid.publicKey, privateKey: vapid.privateKey };

let service: LocalPushService;
const logs: PushLogEntry[] = [];

beforeAll(async () => {
  service = await startLocalPushService({ log: (entry) => logs.push(entry) });
});

afterAll(async () => {
  await service.close();
});

type Subscription = Awaited<ReturnType<LocalPushService['subscribe']>>;

/**
 * What a backend does for these http endpoints: `sendNotification` only speaks https, so the request web-push
 * builds (signed and encrypted exactly as `sendNotification` would send it) goes out with fetch.
 */
async function send(subscription: Subscription, payload?: string | Buffer, options: RequestOptions = {}): Promise<Response> {
  const details = webpush.generateRequestDetails(subscription, payload, { vapidDetails, ...options });
  return fetch(details.endpoint, {
    method: details.method,
    headers: details.headers as Record<string, string>,
    ...(details.body === null ? {} : { body: details.body }),
  });
}

describe('local push service', () => {
  it('decrypts a real aes128gcm push with the subscription keys and answers 201 with a Location', async () => {
    const subscription = await service.subscribe();
    expect(subscription.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/push\/[A-Za-z0-9_-]+$/);
    expect(Buffer.from(subscription.keys.p256dh, 'base64url')).toHaveLength(65);
    expect(Buffer.from(subscription.keys.auth, 'base64url')).toHaveLength(16);
    const heard: string[] = [];
    const off = service.onPush((push) => heard.push(push.endpoint));

    const payload = JSON.stringify({ conversationId: 'c1', senderId: 'alice', seq: 3, count: 1 });
    const response = await send(subscription, payload, { TTL: 60, urgency: 'high' });
    off();

    expect(response.status).toBe(201);
    expect(response.headers.get('location')).toMatch(new RegExp(`^${service.url}/message/`));
    expect(response.headers.get('ttl')).toBe('60');
    const [push, ...rest] = service.received(subscription.endpoint);
    expect(rest).toEqual([]);
    expect(push).toMatchObject({ endpoint: subscription.endpoint, payload, ttl: 60, urgency: 'high', vapidSubject: SUBJECT });
    expect(heard).toEqual([subscription.endpoint]);
  });

  it('takes a push without a payload', async () => {
    const subscription = await service.subscribe();
    const response = await send(subscription);
    expect(response.status).toBe(201);
    expect(service.received(subscription.endpoint)).toMatchObject([{ payload: undefined, urgency: 'normal' }]);
  });

  it('replaces an earlier push with the same Topic', async () => {
    const subscription = await service.subscribe();
    expect((await send(subscription, 'first', { topic: 'conv-c1' })).status).toBe(201);
    expect((await send(subscription, 'second', { topic: 'conv-c1' })).status).toBe(201);
    expect((await send(subscription, 'other')).status).toBe(201);
    expect(service.received(subscription.endpoint).map((push) => push.payload)).toEqual(['second', 'other']);
  });

  it('refuses a push whose VAPID token is not signed by the key it names', async () => {
    const subscription = await service.subscribe();
    const details = webpush.generateRequestDetails(subscription, 'hello', { vapidDetails });
    const other = webpush.generateVAPIDKeys();
    const headers = details.headers as Record<string, string>;
    const authorization = String(headers.Authorization).replace(/k=[A-Za-z0-9_-]+/, `k=${other.publicKey}`);
    const response = await fetch(details.endpoint, { method: 'POST', headers: { ...headers, Authorization: authorization }, body: details.body });
    expect(response.status).toBe(401);
    expect(service.received(subscription.endpoint)).toEqual([]);
  });

  it('refuses a push without VAPID, or with a token for another audience', async () => {
    const subscription = await service.subscribe();
    const details = webpush.generateRequestDetails(subscription, 'hello', { vapidDetails });
    const { Authorization: _authorization, ...unsigned } = details.headers as Record<string, string>;
    expect((await fetch(details.endpoint, { method: 'POST', headers: unsigned, body: details.body })).status).toBe(401);

    const elsewhere = webpush.getVapidHeaders('https://push.example.net', SUBJECT, vapid.publicKey, vapid.privateKey, 'aes128gcm');
    const response = await fetch(details.endpoint, { method: 'POST', headers: { ...unsigned, Authorization: elsewhere.Authorization }, body: details.body });
    expect(response.status).toBe(401);
    expect(service.received(subscription.endpoint)).toEqual([]);
  });

  it('answers 403 when a subscription is bound to another application server key', async () => {
    const subscription = await service.subscribe({ applicationServerKey: webpush.generateVAPIDKeys().publicKey });
    expect((await send(subscription, 'hello')).status).toBe(403);
    const bound = await service.subscribe({ applicationServerKey: vapid.publicKey });
    expect((await send(bound, 'hello')).status).toBe(201);
  });

  it('answers 404 for an unknown subscription and 410 for an expired one', async () => {
    const subscription = await service.subscribe();
    const unknown = { ...subscription, endpoint: `${service.url}/push/${'A'.repeat(32)}` };
    expect((await send(unknown, 'hello')).status).toBe(404);

    service.expire(subscription.endpoint);
    expect((await send(subscription, 'hello')).status).toBe(410);
    expect(service.received(subscription.endpoint)).toEqual([]);
  });

  it(`answers 413 for a body over ${MAX_PUSH_BODY_BYTES} bytes`, async () => {
    const subscription = await service.subscribe();
    const response = await send(subscription, 'x'.repeat(MAX_PUSH_BODY_BYTES));
    expect(response.status).toBe(413);
    expect((await send(subscription, 'x'.repeat(3000))).status).toBe(201);
  });

  it('refuses a body that does not decrypt with the subscription keys', async () => {
    const subscription = await service.subscribe();
    const stranger = await service.subscribe();
    // Encrypted for another subscription's keys, posted to this one.
    const details = webpush.generateRequestDetails({ ...stranger, endpoint: subscription.endpoint }, 'hello', { vapidDetails });
    const response = await fetch(details.endpoint, { method: 'POST', headers: details.headers as Record<string, string>, body: details.body });
    expect(response.status).toBe(400);
  });

  it('logs one line per push without the payload unless showPayloads is set', async () => {
    const subscription = await service.subscribe();
    logs.length = 0;
    await send(subscription, 'secret preview text');
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatchObject({ event: 'push_received', status: 201, vapidSubject: SUBJECT });
    expect(JSON.stringify(logs)).not.toContain('secret preview text');
    expect(JSON.stringify(logs)).not.toContain(subscription.endpoint.split('/').pop());

    const shown: PushLogEntry[] = [];
    const verbose = await startLocalPushService({ showPayloads: true, log: (entry) => shown.push(entry) });
    try {
      await send(await verbose.subscribe(), 'visible text');
      expect(shown).toMatchObject([{ event: 'push_received', payload: 'visible text' }]);
    } finally {
      await verbose.close();
    }
  });

  it('listens on loopback only', async () => {
    await expect(startLocalPushService({ host: '0.0.0.0' })).rejects.toThrow(/loopback/);
  });
});

describe('the web page’s push endpoints (the local stand-in for PushManager)', () => {
  async function pageServer(push: WebPagePush | undefined): Promise<{ base: string; close: () => Promise<void> }> {
    const handle = webPage({ jwtSecret: new Uint8Array(32), url: () => 'ws://127.0.0.1:1/local', join: async () => undefined, ...(push === undefined ? {} : { push }) });
    const server = createServer((req, res) => {
      handle(req, res).then(
        (served) => {
          if (!served) res.writeHead(404).end();
        },
        () => res.writeHead(500).end(),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return { base: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
  }

  it('hands out a subscription of the local push service and shows what it received', async () => {
    const page = await pageServer({ service, applicationServerKey: vapid.publicKey });
    try {
      const answer = await fetch(`${page.base}/dev/push/subscribe`, { method: 'POST' });
      expect(answer.status).toBe(200);
      const subscription = (await answer.json()) as Subscription;
      expect(subscription.endpoint.startsWith(`${service.url}/push/`)).toBe(true);
      // Bound to the backend's VAPID key, as PushManager.subscribe({ applicationServerKey }) binds it.
      const stranger = webpush.generateVAPIDKeys();
      const foreign = webpush.generateRequestDetails(subscription, 'x', { vapidDetails: { ...vapidDetails, ...stranger } });
      expect((await fetch(foreign.endpoint, { method: 'POST', headers: foreign.headers as Record<string, string>, body: foreign.body })).status).toBe(403);
      expect((await send(subscription, '{"conversationId":"c1","seq":4}', { TTL: 30 })).status).toBe(201);

      const received = await fetch(`${page.base}/dev/push/received?${new URLSearchParams({ endpoint: subscription.endpoint }).toString()}`);
      expect(received.status).toBe(200);
      expect(await received.json()).toEqual({ pushes: [{ payload: '{"conversationId":"c1","seq":4}', at: expect.any(Number), ttl: 30, urgency: 'normal' }] });
      expect((await fetch(`${page.base}/dev/push/received?endpoint=${encodeURIComponent('https://elsewhere.test/push/x')}`)).status).toBe(400);
      expect((await fetch(`${page.base}/dev/push/subscribe`)).status).toBe(405);
    } finally {
      await page.close();
    }
  });

  it('serves no push endpoints without a push service', async () => {
    const page = await pageServer(undefined);
    try {
      expect((await fetch(`${page.base}/dev/push/subscribe`, { method: 'POST' })).status).toBe(404);
    } finally {
      await page.close();
    }
  });
});

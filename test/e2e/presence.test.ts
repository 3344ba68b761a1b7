import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoMembershipStore } from '../../lambdas/adapters/dynamo-members.js';
import { startLocalBackend, type LocalBackend } from '../../local/backend.js';
import { closedPort } from '../integration/net.js';
import { ChatClient, type Frame } from '../support/chat.js';
import { documentClientOf } from '../support/durability.js';
import { uniqueId } from '../support/env.js';

/**
 * Presence end to end through the emulator, with short timings (TTL 2 s, grace 1 s, a sweep every second):
 * a socket lost without `$disconnect` goes offline after TTL + grace, a quick reconnect does not flap, `ping`
 * keeps a connection online, `getPresence` lists who is online; and with Redis down presence alone is gone.
 */
const TTL_MS = 2000;
const GRACE_MS = 1000;
const SWEEP_MS = 1000;
const PRESENCE_ENV = {
  PRESENCE_TTL_SECONDS: String(TTL_MS / 1000),
  PRESENCE_GRACE_SECONDS: String(GRACE_MS / 1000),
  PRESENCE_SWEEP_SECONDS: String(SWEEP_MS / 1000),
};
const LIMITS = { RATE_LIMIT_PER_SECOND: '200', RATE_LIMIT_BURST: '400', RATE_LIMIT_USER_PER_SECOND: '200', RATE_LIMIT_USER_BURST: '400' };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let backend: LocalBackend;
const open: ChatClient[] = [];

beforeAll(async () => {
  backend = await startLocalBackend({ redisUrl: inject('redisUrl'), env: { LOG_LEVEL: 'SILENT', ...LIMITS, ...PRESENCE_ENV } });
});

afterAll(async () => {
  await Promise.all(open.splice(0).map((c) => c.close().catch(() => undefined)));
  await backend.close();
});

async function conversationWith(on: LocalBackend, ...userIds: string[]): Promise<string> {
  const db = documentClientOf(on);
  const members = new DynamoMembershipStore(db, on.tables.members);
  const conversationId = uniqueId('presence');
  for (const userId of userIds) await members.add(conversationId, userId, 0);
  db.destroy();
  return conversationId;
}

/** A device connected and subscribed to `conversationId`, and the gateway's id of its connection. */
async function subscribedDevice(on: LocalBackend, conversationId: string, userId: string, deviceId: string): Promise<{ client: ChatClient; connectionId: string }> {
  const before = new Set(on.connectionIds());
  const client = await ChatClient.connectDevice(on, userId, deviceId);
  open.push(client);
  const connectionId = on.connectionIds().find((id) => !before.has(id)) ?? '';
  const answer = await client.request({ action: 'subscribe', conversationIds: [conversationId] }, 'subscribed');
  expect(answer).toMatchObject({ type: 'subscribed', conversations: [{ conversationId, status: 'ok' }] });
  return { client, connectionId };
}

/** Sends a frame with a requestId and waits for its answer (a pushed `presence` has none). */
async function ask(client: ChatClient, frame: Record<string, unknown>, requestId: string): Promise<Frame> {
  await client.send({ ...frame, requestId });
  return await client.waitFor((f) => f.requestId === requestId);
}

const presenceOf = (client: ChatClient, userId: string) => client.allFrames().filter((f) => f.type === 'presence' && f.userId === userId);
const isPresence = (userId: string, state: string) => (f: Frame) => f.type === 'presence' && f.userId === userId && f.state === state;

describe('presence through the emulator', () => {
  it('a socket dropped without $disconnect goes offline after the TTL and the grace, not before', async () => {
    const conversationId = await conversationWith(backend, 'ann', 'bob');
    const { client: bob } = await subscribedDevice(backend, conversationId, 'bob', 'laptop');
    const lastActive = Date.now();
    const { connectionId } = await subscribedDevice(backend, conversationId, 'ann', 'phone');
    const online = await bob.waitFor(isPresence('ann', 'online'));

    expect(backend.loseConnection(connectionId)).toBe(true);
    const offline = await bob.waitFor(isPresence('ann', 'offline'), TTL_MS + GRACE_MS + 3 * SWEEP_MS + 2000);
    const arrived = Date.now();

    expect(online).toMatchObject({ conversationId, userId: 'ann', state: 'online' });
    expect(arrived - lastActive).toBeGreaterThanOrEqual(TTL_MS + GRACE_MS);
    expect(Number(offline.at)).toBeGreaterThanOrEqual(lastActive + TTL_MS);
    expect(presenceOf(bob, 'ann').map((f) => f.state)).toEqual(['online', 'offline']);
  });

  it('a quick reconnect within the grace sends neither offline nor online', async () => {
    const conversationId = await conversationWith(backend, 'cat', 'dan');
    const { client: dan } = await subscribedDevice(backend, conversationId, 'dan', 'laptop');
    const first = await subscribedDevice(backend, conversationId, 'cat', 'phone');
    await dan.waitFor(isPresence('cat', 'online'));

    await first.client.close();
    const { client: again } = await subscribedDevice(backend, conversationId, 'cat', 'phone');
    // Longer than TTL + grace + a sweep: only the new connection's pings keep cat online meanwhile.
    for (let waited = 0; waited < TTL_MS + GRACE_MS + 2 * SWEEP_MS; waited += 500) {
      await again.request({ action: 'ping' }, 'pong');
      await sleep(500);
    }

    expect(presenceOf(dan, 'cat').map((f) => f.state)).toEqual(['online']);
  });

  it('getPresence lists the members online; ping keeps one online past the TTL, and silence then takes it offline', async () => {
    const conversationId = await conversationWith(backend, 'eve', 'fay', 'gus');
    const { client: eve } = await subscribedDevice(backend, conversationId, 'eve', 'phone');
    const { client: fay } = await subscribedDevice(backend, conversationId, 'fay', 'phone');
    const listed = await ask(eve, { action: 'getPresence', conversationId }, 'gp-1');

    for (let waited = 0; waited < TTL_MS + GRACE_MS + 2 * SWEEP_MS; waited += 500) {
      await eve.request({ action: 'ping' }, 'pong');
      await fay.request({ action: 'ping' }, 'pong');
      await sleep(500);
    }
    const stillListed = await ask(eve, { action: 'getPresence', conversationId }, 'gp-2');
    const pingedOffline = presenceOf(eve, 'fay').filter((f) => f.state === 'offline');
    const offline = await eve.waitFor(isPresence('fay', 'offline'), TTL_MS + GRACE_MS + 3 * SWEEP_MS + 2000);

    expect(listed).toEqual({ type: 'presence', conversationId, online: ['eve', 'fay'], requestId: 'gp-1' });
    expect(stillListed).toMatchObject({ online: ['eve', 'fay'] });
    expect(pingedOffline).toEqual([]);
    expect(offline).toMatchObject({ conversationId, userId: 'fay', state: 'offline' });
  });
});

describe('presence with Redis down', () => {
  it('getPresence answers unavailable; subscribe and sendMessage still work', async () => {
    const down = await startLocalBackend({ redisUrl: `redis://127.0.0.1:${await closedPort()}`, env: { LOG_LEVEL: 'SILENT', ...LIMITS } });
    try {
      const conversationId = await conversationWith(down, 'hal', 'ida');
      const { client: hal } = await subscribedDevice(down, conversationId, 'hal', 'phone');
      const { client: ida } = await subscribedDevice(down, conversationId, 'ida', 'phone');

      const presence = await ask(hal, { action: 'getPresence', conversationId }, 'p');
      const sent = await hal.request({ action: 'sendMessage', conversationId, clientMessageId: 'm1', body: 'hello' }, 'sent');
      const delivered = await ida.waitFor((f) => f.type === 'message' && f.clientMessageId === 'm1');
      const pong = await hal.request({ action: 'ping', requestId: 'q' }, 'pong');

      expect(presence).toMatchObject({ type: 'error', code: 'unavailable', action: 'getPresence', requestId: 'p' });
      expect(sent).toMatchObject({ type: 'sent', conversationId, duplicate: false });
      expect(delivered).toMatchObject({ body: 'hello', senderId: 'hal' });
      expect(pong).toMatchObject({ type: 'pong', requestId: 'q' });
    } finally {
      await Promise.all(open.splice(0).map((c) => c.close().catch(() => undefined)));
      await down.close();
    }
  });
});

import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoConnectionRegistry } from '../../lambdas/adapters/dynamo-registry.js';
import { DynamoMembershipStore } from '../../lambdas/adapters/dynamo-members.js';
import { removeMember } from '../../lambdas/domain/membership.js';
import type { ConnectionPoster } from '../../lambdas/ports.js';
import { startLocalBackend, type LocalBackend } from '../../local/backend.js';
import { openClient, refusedStatus } from '../../local/gateway/testing.js';
import { ChatClient, connectUrl, eventually, tokenFor, type Frame } from '../support/chat.js';
import { documentClientOf } from '../support/durability.js';
import { uniqueId } from '../support/env.js';
import { DeleteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * Protocol v2 connections end to end through the emulator: one connection per device for many conversations,
 * subscribe / unsubscribe, resume after a reconnect, requestId, per-user limits and revocation.
 */
let backend: LocalBackend;
let db: DynamoDBDocumentClient;
let members: DynamoMembershipStore;
const open: ChatClient[] = [];

/** How long a container keeps a conversation's roster here (the bound on a removal by other means). */
const ROSTER_SECONDS = 1;

beforeAll(async () => {
  backend = await startLocalBackend({
    redisUrl: inject('redisUrl'),
    env: {
      LOG_LEVEL: 'SILENT',
      RATE_LIMIT_PER_SECOND: '200',
      RATE_LIMIT_BURST: '400',
      RATE_LIMIT_USER_PER_SECOND: '200',
      RATE_LIMIT_USER_BURST: '400',
      MEMBERSHIP_CACHE_SECONDS: String(ROSTER_SECONDS),
    },
  });
  db = documentClientOf(backend);
  members = new DynamoMembershipStore(db, backend.tables.members);
});

afterAll(async () => {
  await Promise.all(open.splice(0).map((c) => c.close().catch(() => undefined)));
  db.destroy();
  await backend.close();
});

async function conversationWith(...userIds: string[]): Promise<string> {
  const conversationId = uniqueId('v2');
  for (const userId of userIds) await members.add(conversationId, userId, 0);
  return conversationId;
}

async function device(userId: string, deviceId: string): Promise<ChatClient> {
  const client = await ChatClient.connectDevice(backend, userId, deviceId);
  open.push(client);
  return client;
}

async function subscribed(client: ChatClient, conversationIds: string[], extra: Record<string, unknown> = {}): Promise<Frame> {
  const answer = await client.request({ action: 'subscribe', conversationIds, ...extra }, 'subscribed');
  if (answer.type !== 'subscribed') throw new Error(`subscribe answered ${JSON.stringify(answer)}`);
  return answer;
}

async function send(client: ChatClient, conversationId: string, clientMessageId: string): Promise<Frame> {
  const sent = await client.request({ action: 'sendMessage', conversationId, clientMessageId, body: `body of ${clientMessageId}` }, 'sent');
  if (sent.type !== 'sent') throw new Error(`sendMessage answered ${JSON.stringify(sent)}`);
  return sent;
}

const messagesOf = (frames: Frame[], conversationId: string) =>
  frames.filter((f) => f.type === 'message' && f.conversationId === conversationId).map((f) => f.messageId);

describe('one connection per device', () => {
  it('receives the messages of three conversations; a conversation the user is not in is forbidden, the others ok', async () => {
    const [c1, c2, c3, notMine] = [await conversationWith('ann', 'ben'), await conversationWith('ann', 'ben'), await conversationWith('ann', 'ben'), await conversationWith('ben')];
    const ann = await device('ann', 'phone');
    const ben = await device('ben', 'laptop');
    await subscribed(ben, [c1, c2, c3, notMine]);
    const answer = await subscribed(ann, [c1, notMine, c2, c3], { requestId: 'sub-1' });
    expect(answer).toEqual({
      type: 'subscribed',
      requestId: 'sub-1',
      conversations: [
        { conversationId: c1, status: 'ok', lastSeq: 0 },
        { conversationId: notMine, status: 'forbidden' },
        { conversationId: c2, status: 'ok', lastSeq: 0 },
        { conversationId: c3, status: 'ok', lastSeq: 0 },
      ],
    });
    const sent = [await send(ben, c1, 'a'), await send(ben, c2, 'b'), await send(ben, c3, 'c'), await send(ben, notMine, 'd')];
    await ann.waitFor((f) => f.type === 'message' && f.messageId === sent[2]?.messageId);
    const frames = ann.frames();
    expect([c1, c2, c3].map((c) => messagesOf(frames, c))).toEqual([[sent[0]?.messageId], [sent[1]?.messageId], [sent[2]?.messageId]]);
    expect(messagesOf(frames, notMine)).toEqual([]);
    // A frame for the conversation the user is not in, and one she never subscribed to, are refused and store nothing.
    expect(await ann.request({ action: 'sendMessage', conversationId: notMine, clientMessageId: 'x', body: 'no', requestId: 'r2' }, 'sent')).toMatchObject({
      type: 'error',
      code: 'forbidden',
      requestId: 'r2',
    });
    const fourth = await conversationWith('ann');
    expect(await ann.request({ action: 'getHistory', conversationId: fourth }, 'history')).toMatchObject({ type: 'error', code: 'forbidden' });
  });

  it('an unsubscribed conversation stops arriving and its frames are forbidden; the others go on', async () => {
    const [c1, c2] = [await conversationWith('cat', 'dan'), await conversationWith('cat', 'dan')];
    const cat = await device('cat', 'phone');
    const dan = await device('dan', 'phone');
    await subscribed(cat, [c1, c2]);
    await subscribed(dan, [c1, c2]);
    expect(await cat.request({ action: 'unsubscribe', conversationIds: [c1], requestId: 'u1' }, 'unsubscribed')).toEqual({
      type: 'unsubscribed',
      requestId: 'u1',
      conversations: [{ conversationId: c1, status: 'ok' }],
    });
    expect(await cat.request({ action: 'ack', conversationId: c1, upToSeq: 1 }, 'acked')).toMatchObject({ type: 'error', code: 'forbidden' });
    await send(dan, c1, 'gone-by');
    const live = await send(dan, c2, 'still-here');
    await cat.waitFor((f) => f.type === 'message' && f.messageId === live.messageId);
    expect(messagesOf(cat.frames(), c1)).toEqual([]);
  });

  it('the v1 URL (conversationId at connect) still subscribes that conversation at once', async () => {
    const c1 = await conversationWith('eve', 'fay');
    const eve = await ChatClient.connect(backend, c1, 'eve', 'phone');
    open.push(eve);
    const fay = await device('fay', 'phone');
    await subscribed(fay, [c1]);
    const sent = await send(fay, c1, 'v1');
    expect(await eve.waitFor((f) => f.type === 'message')).toMatchObject({ messageId: sent.messageId, conversationId: c1 });
    expect(await refusedStatus(connectUrl(backend, { token: await tokenFor(backend, 'eve'), clientId: 'tab', conversationId: await conversationWith('fay') }))).toBe(403);
  });
});

describe('resume', () => {
  it('a device that reconnects and resubscribes with its last seqs gets exactly what it missed, in order, then live ones', async () => {
    const [c1, c2] = [await conversationWith('gus', 'hal'), await conversationWith('gus', 'hal')];
    const gus = await device('gus', 'phone');
    await subscribed(gus, [c1, c2]);
    const hal = await device('hal', 'laptop');
    await subscribed(hal, [c1, c2]);
    const first = await send(hal, c1, 'seen');
    await gus.waitFor((f) => f.type === 'message' && f.messageId === first.messageId);
    await gus.close();

    const missed: Record<string, string[]> = { [c1]: [], [c2]: [] };
    for (let i = 0; i < 30; i += 1) {
      const conversationId = i % 3 === 0 ? c2 : c1;
      missed[conversationId]?.push(String((await send(hal, conversationId, `missed-${i}`)).messageId));
    }

    const back = await device('gus', 'phone');
    const answer = await subscribed(back, [c1, c2], { afterSeq: { [c1]: 1, [c2]: 0 }, requestId: 'resume' });
    expect(answer.conversations).toEqual([
      { conversationId: c1, status: 'ok', lastSeq: 21 },
      { conversationId: c2, status: 'ok', lastSeq: 10 },
    ]);
    // The resume pages follow the answer; a page with hasMore is continued with getUnacked from its last seq.
    const received: Record<string, { messageId: string; seq: number }[]> = { [c1]: [], [c2]: [] };
    for (const conversationId of [c1, c2]) {
      let page = await back.waitFor((f) => f.type === 'unacked' && f.conversationId === conversationId);
      expect(page.requestId).toBe('resume');
      for (;;) {
        const entries = page.messages as { messageId: string; seq: number }[];
        received[conversationId]?.push(...entries);
        if (page.hasMore !== true) break;
        const last = entries[entries.length - 1]?.seq ?? 0;
        page = await back.request({ action: 'getUnacked', conversationId, afterSeq: last, limit: 7 }, 'unacked');
      }
    }
    for (const conversationId of [c1, c2]) {
      const got = received[conversationId] ?? [];
      const unique = [...new Map(got.map((m) => [m.messageId, m])).values()];
      expect(unique.map((m) => m.messageId)).toEqual(missed[conversationId]);
      expect(unique.map((m) => m.seq)).toEqual([...unique.map((m) => m.seq)].sort((a, b) => a - b));
    }
    expect(Object.values(received).flat()).toHaveLength(30);
    // Then live traffic.
    const live = await send(hal, c2, 'live');
    expect(await back.waitFor((f) => f.type === 'message')).toMatchObject({ messageId: live.messageId, conversationId: c2 });
    expect(back.frames().filter((f) => f.type === 'error')).toEqual([]);
  });
});

describe('token expiry', () => {
  it('a connection is served until its token expires, then every frame is refused with token_expired; a fresh token reconnects', async () => {
    const conversationId = await conversationWith('tess');
    const token = await tokenFor(backend, 'tess', 2);
    const socket = await openClient(connectUrl(backend, { token, clientId: 'phone' }));
    try {
      const send = async (frame: Record<string, unknown>) => {
        const before = socket.received.length;
        await socket.send(JSON.stringify(frame));
        await eventually(() => socket.received.length > before);
        return JSON.parse(socket.received[socket.received.length - 1] ?? '{}') as Frame;
      };
      expect(await send({ action: 'subscribe', conversationIds: [conversationId], requestId: 'r1' })).toMatchObject({ type: 'subscribed' });
      // The token's exp is in whole seconds: past it for sure after 3 s.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      for (const frame of [
        { action: 'getUnacked', conversationId, requestId: 'r2' },
        { action: 'sendMessage', conversationId, clientMessageId: 'late', body: 'too late', requestId: 'r3' },
        { action: 'ping', requestId: 'r4' },
      ]) {
        expect(await send(frame)).toEqual({ type: 'error', code: 'token_expired', message: expect.stringMatching(/reconnect with a fresh token/), action: frame.action, requestId: frame.requestId });
      }
    } finally {
      await socket.close();
    }
    const fresh = await device('tess', 'phone');
    expect(await subscribed(fresh, [conversationId])).toMatchObject({ conversations: [{ conversationId, status: 'ok' }] });
    expect((await fresh.request({ action: 'getUnacked', conversationId }, 'unacked')).messages).toEqual([]);
  });
});

describe('per-user limits', () => {
  it('refuses the 11th open connection of a user with 429, and accepts one again once a connection closed', async () => {
    const user = uniqueId('many');
    const clients: ChatClient[] = [];
    for (let i = 0; i < 10; i += 1) clients.push(await device(user, `d${i}`));
    const url = connectUrl(backend, { token: await tokenFor(backend, user), clientId: 'd10' });
    expect(await refusedStatus(url)).toBe(429);
    // Another user is not affected.
    await device(uniqueId('other'), 'd0');
    await clients[0]?.close();
    // Its $disconnect frees the slot.
    let again: ChatClient | undefined;
    await eventually(async () => {
      again = await device(user, 'd10').catch(() => undefined);
      return again !== undefined;
    });
    if (again === undefined) throw new Error('no connection after a slot was freed');
    expect(await again.request({ action: 'subscribe', conversationIds: [await conversationWith(user)] }, 'subscribed')).toMatchObject({ type: 'subscribed' });
  });
});

describe('revocation', () => {
  it('remove-member cuts the removed user off at once: told with unsubscribed, gets and sends nothing more there', async () => {
    const [shared, other] = [await conversationWith('ian', 'jo'), await conversationWith('ian', 'jo')];
    const ian = await device('ian', 'phone');
    const jo = await device('jo', 'phone');
    await subscribed(ian, [shared, other]);
    await subscribed(jo, [shared, other]);
    const registry = new DynamoConnectionRegistry(db, backend.tables.connections, { now: () => Date.now() });
    const poster = await managementPoster(backend);
    expect(await removeMember({ members, registry, posterFor: () => poster }, backend.managementEndpoint, shared, 'ian')).toBe(1);
    expect(await ian.waitFor((f) => f.type === 'unsubscribed')).toEqual({ type: 'unsubscribed', conversations: [{ conversationId: shared, status: 'forbidden' }] });
    await send(jo, shared, 'after-removal');
    const stillThere = await send(jo, other, 'other-conversation');
    await ian.waitFor((f) => f.type === 'message' && f.messageId === stillThere.messageId);
    expect(messagesOf(ian.frames(), shared)).toEqual([]);
    expect(await ian.request({ action: 'sendMessage', conversationId: shared, clientMessageId: 'z', body: 'z' }, 'sent')).toMatchObject({ code: 'forbidden' });
  });

  it('a membership row deleted by any other means cuts the user off within MEMBERSHIP_CACHE_SECONDS', async () => {
    const conversationId = await conversationWith('kim', 'lee');
    const kim = await device('kim', 'phone');
    const lee = await device('lee', 'phone');
    await subscribed(kim, [conversationId]);
    await subscribed(lee, [conversationId]);
    // Warm every container's roster with kim in it.
    const before = await send(lee, conversationId, 'before');
    await kim.waitFor((f) => f.type === 'message' && f.messageId === before.messageId);
    expect(await send(kim, conversationId, 'kim-before')).toMatchObject({ type: 'sent' });

    await db.send(new DeleteCommand({ TableName: backend.tables.members, Key: { conversationId, userId: 'kim' } }));
    const removedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, ROSTER_SECONDS * 1000 + 100));
    const after = await send(lee, conversationId, 'after');
    expect(await kim.waitFor((f) => f.type === 'unsubscribed')).toMatchObject({ conversations: [{ conversationId, status: 'forbidden' }] });
    expect(messagesOf(kim.frames(), conversationId)).not.toContain(after.messageId);
    expect(await kim.request({ action: 'sendMessage', conversationId, clientMessageId: 'kim-after', body: 'x' }, 'sent')).toMatchObject({ code: 'forbidden' });
    expect(Date.now() - removedAt).toBeLessThan(30_000);
  });
});

/** A Management API poster for the backend's gateway (what the admin CLI uses), over plain HTTP. */
async function managementPoster(target: LocalBackend): Promise<ConnectionPoster> {
  return {
    post: async (connectionId, data) => {
      const response = await fetch(`${target.managementEndpoint}/@connections/${encodeURIComponent(connectionId)}`, { method: 'POST', body: data });
      if (response.status === 410) return 'gone';
      return response.ok ? 'delivered' : 'failed';
    },
  };
}

describe('with tight per-user limits and a short idle timeout', () => {
  let tight: LocalBackend;
  let tightMembers: DynamoMembershipStore;
  let tightDb: DynamoDBDocumentClient;
  const clients: ChatClient[] = [];

  beforeAll(async () => {
    tight = await startLocalBackend({
      redisUrl: inject('redisUrl'),
      env: { LOG_LEVEL: 'SILENT', RATE_LIMIT_PER_SECOND: '100', RATE_LIMIT_BURST: '100', RATE_LIMIT_USER_PER_SECOND: '1', RATE_LIMIT_USER_BURST: '6' },
      gateway: { idleTimeoutMs: 1500 },
    });
    tightDb = documentClientOf(tight);
    tightMembers = new DynamoMembershipStore(tightDb, tight.tables.members);
  });

  afterAll(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
    tightDb.destroy();
    await tight.close();
  });

  it('the per-user rate limit holds across the user’s connections, and a refused sendMessage stores nothing', async () => {
    const conversationId = uniqueId('rl');
    await tightMembers.add(conversationId, 'mo', 0);
    const phone = await ChatClient.connectDevice(tight, 'mo', 'phone');
    const laptop = await ChatClient.connectDevice(tight, 'mo', 'laptop');
    clients.push(phone, laptop);
    // Each connection alone is far below its own limit (100/s); together they spend the user's burst of 6.
    const answers: Frame[] = [];
    answers.push(await subscribed(phone, [conversationId]), await subscribed(laptop, [conversationId]));
    for (let i = 0; i < 5; i += 1) {
      for (const [client, name] of [[phone, 'p'], [laptop, 'l']] as const) {
        answers.push(await client.request({ action: 'sendMessage', conversationId, clientMessageId: `${name}${i}`, body: 'hi' }, 'sent'));
      }
    }
    const admitted = answers.filter((a) => a.type !== 'error');
    const limited = answers.filter((a) => a.type === 'error');
    // 6 of burst, plus at most a token or two refilled at 1/s while the frames ran.
    expect(admitted.length).toBeGreaterThanOrEqual(6);
    expect(admitted.length).toBeLessThanOrEqual(8);
    expect(limited.every((a) => a.code === 'rate_limited')).toBe(true);
    expect(limited.length).toBe(answers.length - admitted.length);
    // Only the admitted sends are in the log: one seq per `sent` (read with a token refilled meanwhile).
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const history = await phone.request({ action: 'getHistory', conversationId, limit: 100 }, 'history');
    expect((history.messages as unknown[]).length).toBe(admitted.filter((a) => a.type === 'sent').length);
  });

  it('ping keeps a connection open past the idle timeout (a Lambda route, within the rate limits); an idle one is closed', async () => {
    const pinger = await ChatClient.connectDevice(tight, 'pia', 'phone');
    const idle = await ChatClient.connectDevice(tight, 'pia', 'tablet');
    clients.push(pinger, idle);
    const pong = await pinger.request({ action: 'ping', requestId: 'p-0' }, 'pong');
    expect(pong).toMatchObject({ type: 'pong', requestId: 'p-0' });
    expect(Math.abs(Number(pong.at) - Date.now())).toBeLessThan(5000);
    // Six frames in all: within this backend's per-user burst, as ping is rate limited like every frame.
    for (let i = 1; i <= 4; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 600));
      await pinger.send({ action: 'ping' });
    }
    expect((await idle.socket.closed).code).toBe(1001);
    await pinger.send({ action: 'ping', requestId: 'still' });
    expect(await pinger.waitFor((f) => f.requestId === 'still')).toMatchObject({ type: 'pong', requestId: 'still' });
  });
});

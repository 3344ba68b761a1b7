import fc from 'fast-check';
import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { MessageCipher } from '../../lambdas/encryption.js';
import { DecryptionError } from '../../lambdas/errors.js';
import { appKeysFrom } from '../../lambdas/secret.js';
import { startLocalBackend, type LocalBackend } from '../../local/backend.js';
import { jsonLineLog, type GatewayLogEntry } from '../../local/gateway.js';
import { openClient, refusedStatus, sendFragmented } from '../../local/gateway/testing.js';
import { signToken } from '../../local/tokens.js';
import { ChatClient, connectUrl, eventually, tokenFor, type Frame } from '../support/chat.js';
import { uniqueId } from '../support/env.js';
import { connectEvent, messageEvent } from '../support/events.js';
import { parseFrame } from './support/answers.js';
import { captureOutput } from './support/capture.js';
import { BackendProbe, switchEnv } from './support/probe.js';
import { badTokens } from './support/tokens.js';
import { testLambdas } from '../support/lambdas.js';
import { Scope } from '../../lambdas/context/lazy.js';
import { route as ackRoute } from '../../lambdas/handlers/ack.js';
import { route as getUnackedRoute } from '../../lambdas/handlers/get-unacked.js';

/** The handlers, built from the local backend's own environment (as the backend itself builds them). */
const lambdas = testLambdas(() => backend.env);
const getUnacked = lambdas.getUnacked;
const sendMessage = lambdas.sendMessage;
const typing = lambdas.typing;

/**
 * Security properties of the whole backend through the API Gateway emulator (real handlers, dynalite, fauxqs,
 * redis-server), one test per property. What a refusal must not do is checked in the real stores.
 */
let backend: LocalBackend;
let probe: BackendProbe;
let secret: { masterKeys: Buffer[]; jwtSecret: Uint8Array; masterKeyText: string };
const gatewayLog: GatewayLogEntry[] = [];
let echoGatewayLog: ((entry: GatewayLogEntry) => void) | undefined;
const open: ChatClient[] = [];

beforeAll(async () => {
  backend = await startLocalBackend({
    redisUrl: inject('redisUrl'),
    env: { LOG_LEVEL: 'SILENT', RATE_LIMIT_PER_SECOND: '1000', RATE_LIMIT_BURST: '1000' },
    gateway: {
      log: (entry) => {
        gatewayLog.push(entry);
        echoGatewayLog?.(entry);
      },
    },
  });
  probe = new BackendProbe(backend);
  const appSecret = backend.env.APP_SECRET_JSON ?? '';
  const keys = appKeysFrom(appSecret);
  secret = { ...keys, masterKeyText: (JSON.parse(appSecret) as { masterKey: string }).masterKey };
});

afterAll(async () => {
  await Promise.all(open.splice(0).map((c) => c.close().catch(() => undefined)));
  await probe.close();
  await backend.close();
});

async function join(conversationId: string, userId: string, deviceId: string): Promise<ChatClient> {
  const client = await ChatClient.connect(backend, conversationId, userId, deviceId);
  open.push(client);
  return client;
}

const ids = (frame: Frame) => (frame.messages as { messageId: string }[]).map((m) => m.messageId);
const posts = () => gatewayLog.filter((e) => e.event === 'management_request' && e.method === 'POST').length;

/** Everything a device has pending, paging with afterSeq while hasMore. */
async function allPending(client: ChatClient, conversationId: string): Promise<string[]> {
  const out: string[] = [];
  let afterSeq = 0;
  for (let page = 0; page < 100; page += 1) {
    const answer = await client.request({ action: 'getUnacked', conversationId, afterSeq, limit: 100 }, 'unacked');
    const messages = answer.messages as { messageId: string; seq: number }[];
    out.push(...messages.map((m) => m.messageId));
    if (answer.hasMore !== true || messages.length === 0) return out;
    afterSeq = messages[messages.length - 1]?.seq ?? afterSeq;
  }
  throw new Error('getUnacked kept answering hasMore');
}

/** Nothing of the conversation was written: no registry row, no member device, no message. */
async function expectNothingWritten(conversationId: string): Promise<void> {
  expect(await probe.rowsOf(conversationId)).toEqual([]);
  expect(await probe.storedKeys(conversationId)).toEqual([]);
}

describe('1. $connect with a bad token', () => {
  it('refuses a missing, malformed, expired, wrongly signed (or otherwise invalid) token with 401 and writes nothing', async () => {
    const conversationId = await probe.conversationWith('alice');
    const tokens: Record<string, string | undefined> = { missing: undefined, empty: '', ...(await badTokens(secret.jwtSecret, 'alice')) };
    const statuses: Record<string, number> = {};
    for (const [label, token] of Object.entries(tokens)) {
      const params: Record<string, string> = { conversationId, clientId: 'phone' };
      if (token !== undefined) params.token = token;
      statuses[label] = await refusedStatus(connectUrl(backend, params));
    }
    expect(statuses).toEqual(Object.fromEntries(Object.keys(tokens).map((label) => [label, 401])));
    await expectNothingWritten(conversationId);
    // The same parameters with a good token are accepted: the refusals were the token's.
    await join(conversationId, 'alice', 'phone');
    expect(await probe.rowsOf(conversationId)).toHaveLength(1);
  });

  describe('with JWT_ISSUER and JWT_AUDIENCE configured', () => {
    const ISSUER = 'https://issuer.example.test';
    const AUDIENCE = 'relay-ws-hardening';
    let restore: () => Promise<void>;
    beforeEach(async () => {
      restore = await switchEnv({ JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE }, backend, lambdas);
    });
    afterEach(async () => restore());

    it('refuses a wrong or missing issuer or audience with 401 and writes nothing; accepts the right ones', async () => {
      const conversationId = await probe.conversationWith('alice');
      const now = Math.floor(Date.now() / 1000);
      const token = (claims: { iss?: string; aud?: string }) =>
        new SignJWT({ ...claims }).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setIssuedAt(now).setExpirationTime(now + 600).sign(secret.jwtSecret);
      const refused = {
        'no issuer, no audience': await token({}),
        'wrong issuer': await token({ iss: 'https://evil.example.test', aud: AUDIENCE }),
        'no issuer': await token({ aud: AUDIENCE }),
        'wrong audience': await token({ iss: ISSUER, aud: 'another-service' }),
        'no audience': await token({ iss: ISSUER }),
      };
      for (const [label, jwt] of Object.entries(refused)) {
        expect([label, await refusedStatus(connectUrl(backend, { token: jwt, conversationId, clientId: 'phone' }))]).toEqual([label, 401]);
      }
      await expectNothingWritten(conversationId);
      const accepted = await openClient(connectUrl(backend, { token: await token({ iss: ISSUER, aud: AUDIENCE }), conversationId, clientId: 'phone' }));
      expect(await probe.rowsOf(conversationId)).toHaveLength(1);
      await accepted.close();
    });
  });
});

describe('2. $connect by a non-member', () => {
  it('is refused with 403 and writes nothing', async () => {
    const conversationId = await probe.conversationWith('alice');
    const token = await tokenFor(backend, 'mallory');
    expect(await refusedStatus(connectUrl(backend, { token, conversationId, clientId: 'phone' }))).toBe(403);
    await expectNothingWritten(conversationId);
  });
});

describe('3. frames that do not match the connection binding', () => {
  it('are refused with forbidden and post nothing, store nothing', async () => {
    const conversationId = await probe.conversationWith('alice', 'bob');
    const other = await probe.conversationWith('alice', 'carol');
    const alice = await join(conversationId, 'alice', 'phone');
    const bob = await join(conversationId, 'bob', 'phone');
    const carol = await join(other, 'carol', 'phone');
    const carolSent = await carol.request({ action: 'sendMessage', conversationId: other, clientMessageId: 'c1', body: 'carol only' }, 'sent');
    const before = posts();

    const spoofs: Record<string, unknown>[] = [
      { action: 'typing', conversationId, userId: 'bob' },
      { action: 'typing', conversationId: other },
      { action: 'typing', conversationId: other, userId: 'carol' },
      { action: 'sendMessage', conversationId: other, clientMessageId: 's1', body: 'into a conversation I am not connected to' },
      { action: 'ack', conversationId: other, messageIds: [carolSent.messageId] },
      { action: 'getUnacked', conversationId: other },
    ];
    for (const frame of spoofs) {
      expect(await alice.request(frame, 'no-such-type')).toMatchObject({ type: 'error', code: 'forbidden', action: frame.action });
    }
    // A connection that never registered (no $connect) is refused the same way, whatever it claims.
    for (const [route, frame] of [
      [typing, { action: 'typing', conversationId, userId: 'alice' }],
      [sendMessage, { action: 'sendMessage', conversationId, clientMessageId: 's2', body: 'unregistered' }],
      [getUnacked, { action: 'getUnacked', conversationId }],
    ] as const) {
      const answer = parseFrame((await route(messageEvent('NeverConnected0=', frame, frame.action))).body ?? '');
      expect(answer).toMatchObject({ type: 'error', code: 'forbidden' });
    }

    expect(posts()).toBe(before);
    expect(bob.frames()).toEqual([]);
    expect(await allPending(bob, conversationId)).toEqual([]);
    expect(carol.frames().map((f) => f.type)).toEqual(['sent']);
    expect(await probe.logItems(other)).toHaveLength(1);
    expect(await probe.logItems(conversationId)).toHaveLength(0);
  });

  it('ignores a spoofed senderId: the message is the connection user\'s', async () => {
    const conversationId = await probe.conversationWith('alice', 'bob');
    const alice = await join(conversationId, 'alice', 'phone');
    const bob = await join(conversationId, 'bob', 'phone');
    await alice.request({ action: 'sendMessage', conversationId, clientMessageId: 'x', body: 'hi', senderId: 'bob', userId: 'bob' }, 'sent');
    expect(await bob.waitFor((f) => f.type === 'message')).toMatchObject({ senderId: 'alice', body: 'hi' });
  });
});

describe('4. a device reads and acks only its own pending messages', () => {
  it('acking another device\'s message ids leaves that device\'s pending as it was (model-based)', async () => {
    const DEVICES = [
      ['alice', 'phone'],
      ['alice', 'laptop'],
      ['bob', 'phone'],
    ] as const;
    type Step = { op: 'send'; by: number } | { op: 'ack'; by: number; pick: number[]; spoof: boolean };
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.record({ op: fc.constant('send' as const), by: fc.integer({ min: 0, max: 2 }) }),
      fc.record({ op: fc.constant('ack' as const), by: fc.integer({ min: 0, max: 2 }), pick: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), spoof: fc.boolean() }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 3, maxLength: 10 }), async (steps) => {
        const conversationId = await probe.conversationWith('alice', 'bob');
        const clients = await Promise.all(DEVICES.map(([user, device]) => join(conversationId, user, device)));
        const pending = DEVICES.map(() => new Set<string>());
        const sent: string[] = [];
        for (const s of steps) {
          const client = clients[s.by];
          if (client === undefined) continue;
          if (s.op === 'send') {
            const answer = await client.request({ action: 'sendMessage', conversationId, clientMessageId: `m${sent.length}`, body: `b${sent.length}` }, 'sent');
            const messageId = String(answer.messageId);
            sent.push(messageId);
            pending.forEach((set, d) => d !== s.by && set.add(messageId));
          } else if (sent.length > 0) {
            const messageIds = s.pick.map((i) => sent[i % sent.length] ?? '');
            // Extra fields naming another device are not part of the frame: the binding decides whose pending it is.
            const extra = s.spoof ? { userId: 'bob', clientId: 'phone', deviceId: 'phone' } : {};
            await client.request({ action: 'ack', conversationId, messageIds, ...extra }, 'acked');
            for (const id of messageIds) pending[s.by]?.delete(id);
          }
        }
        for (const [d, client] of clients.entries()) {
          const extra = { userId: 'bob', clientId: 'laptop' };
          const answer = await client.request({ action: 'getUnacked', conversationId, limit: 100, ...extra }, 'unacked');
          expect(new Set(ids(answer))).toEqual(pending[d]);
        }
        await Promise.all(clients.map((c) => c.close()));
      }),
      { numRuns: 12 },
    );
  });
});

/** Registers a connection through the real $connect handler (subscribed to the conversation), as API Gateway would. */
async function registered(conversationId: string, userId: string, deviceId: string): Promise<string> {
  const connectionId = `${uniqueId('rl')}=`;
  const token = await signToken(secret.jwtSecret, userId);
  expect((await lambdas.connect(connectEvent(connectionId, { token, conversationId, clientId: deviceId }))).statusCode).toBe(200);
  return connectionId;
}

/**
 * Two containers, each with services of its own built from the backend's environment (plus `overrides`): one
 * running `ack`, one running `getUnacked`. `frame` sends one frame through the chosen container's route
 * handler (connection record → rate limits → subscription → domain) and says whether it was admitted.
 */
async function twoContainers(overrides: Record<string, string>) {
  const env = { ...backend.env, ...overrides };
  const scope = new Scope();
  const ackServices = await ackRoute.build(env, scope);
  const getUnackedServices = await getUnackedRoute.build(env, scope);
  expect(ackServices.limiter).not.toBe(getUnackedServices.limiter);
  const handlers = [ackRoute.create(() => Promise.resolve(ackServices)), getUnackedRoute.create(() => Promise.resolve(getUnackedServices))] as const;
  return {
    async frame(which: number, connectionId: string, conversationId: string, n: number): Promise<'admitted' | 'limited'> {
      const requestId = `rl-${n}`;
      const [action, answerType, handler] =
        which === 0 ? (['ack', 'acked', handlers[0]] as const) : (['getUnacked', 'unacked', handlers[1]] as const);
      const body = action === 'ack' ? { action, conversationId, messageIds: ['m'], requestId } : { action, conversationId, limit: 1, requestId };
      const result = await handler(messageEvent(connectionId, body, action));
      const answer = parseFrame(result.body ?? '');
      if (answer.type === 'error') {
        expect(answer).toMatchObject({ code: 'rate_limited', action, requestId });
        return 'limited';
      }
      expect(answer).toMatchObject({ type: answerType, conversationId, requestId });
      return 'admitted';
    },
    close: () => scope.close(),
  };
}

/** The rate-limit buckets Redis holds for a user (RedisRateLimiter: `{u:<user>}:rl:user` and its connections'). */
async function rateBucketsOf(userId: string): Promise<string[]> {
  const tag = `{u:${encodeURIComponent(userId)}}:rl:`;
  return (await probe.redis.keys(`${tag}*`)).map((key) => key.slice(tag.length)).sort();
}

describe('5. the rate limits, per connection and per user', () => {
  describe('at 1 frame/s with bursts of 3', () => {
    let restore: () => Promise<void>;
    beforeEach(async () => {
      restore = await switchEnv({ RATE_LIMIT_PER_SECOND: '1', RATE_LIMIT_BURST: '3' }, backend, lambdas);
    });
    afterEach(async () => restore());

    it('answers rate_limited beyond the burst and fans out nothing for those frames', async () => {
      const conversationId = await probe.conversationWith('alice', 'bob');
      const alice = await join(conversationId, 'alice', 'phone');
      const bob = await join(conversationId, 'bob', 'phone');
      const before = posts();
      const started = Date.now();
      const frames = Array.from({ length: 10 }, (_, i) => ({ action: 'sendMessage', conversationId, clientMessageId: `r${i}`, body: `burst ${i}` }));
      await Promise.all(frames.map((f) => alice.send(f)));
      await eventually(() => alice.frames().length >= 10, 10_000);
      const elapsedSeconds = (Date.now() - started) / 1000;
      const answers = alice.frames();
      const sent = answers.filter((f) => f.type === 'sent');
      const limited = answers.filter((f) => f.type === 'error' && f.code === 'rate_limited');
      expect(sent.length + limited.length).toBe(10);
      expect(sent.length).toBeGreaterThanOrEqual(1);
      // The burst, plus what refilled at 1/s while the frames were in flight.
      expect(sent.length).toBeLessThanOrEqual(3 + Math.ceil(elapsedSeconds));
      // bob's own connection has its own bucket: he can read what was stored — exactly the admitted messages.
      await eventually(() => bob.frames().filter((f) => f.type === 'message').length >= sent.length, 5_000);
      expect(new Set(await allPending(bob, conversationId))).toEqual(new Set(sent.map((f) => f.messageId)));
      expect(new Set(bob.frames().filter((f) => f.type === 'message').map((f) => f.messageId))).toEqual(new Set(sent.map((f) => f.messageId)));
      // Per admitted message: its `sent` to alice (posted before the fan-out) and the message to bob.
      expect(posts() - before).toBe(2 * sent.length);
      expect(await probe.logItems(conversationId)).toHaveLength(sent.length);
    });

    it('is one bucket in Redis shared by separately built contexts (Lambda instances)', async () => {
      // The user's own bucket is kept far from the limit (and slow to refill, so its key outlives the test):
      // only the connection's bucket can refuse here.
      const containers = await twoContainers({ RATE_LIMIT_USER_PER_SECOND: '1', RATE_LIMIT_USER_BURST: '1000' });
      try {
        const userId = uniqueId('shared');
        const conversationId = await probe.conversationWith(userId);
        const connectionId = await registered(conversationId, userId, 'phone');
        const admitted = [0, 0];
        let denied = [false, false];
        // Alternate the two instances until both are refused; a per-instance bucket would admit 3 on each.
        for (let i = 0; i < 20 && !(denied[0] === true && denied[1] === true); i += 1) {
          const which = i % 2;
          if ((await containers.frame(which, connectionId, conversationId, i)) === 'admitted') admitted[which] = (admitted[which] ?? 0) + 1;
          else denied = denied.map((d, j) => d || j === which);
        }
        expect(denied).toEqual([true, true]);
        const total = (admitted[0] ?? 0) + (admitted[1] ?? 0);
        expect(total).toBeGreaterThanOrEqual(3);
        expect(total).toBeLessThanOrEqual(4);
        expect(admitted[0]).toBeGreaterThan(0);
        expect(admitted[1]).toBeGreaterThan(0);
        // Each frame took from two buckets, both in Redis: the connection's and its user's.
        expect(await rateBucketsOf(userId)).toEqual([`conn:${connectionId}`, 'user']);
      } finally {
        await containers.close();
      }
    });
  });

  describe('per user, at 1 frame/s with bursts of 3', () => {
    it('is one bucket in Redis shared by all of the user\'s connections, across contexts; other users keep theirs', async () => {
      // Connections far from their own limit (and slow to refill, so their keys outlive the test): only the
      // user's bucket can refuse here.
      const containers = await twoContainers({
        RATE_LIMIT_PER_SECOND: '1',
        RATE_LIMIT_BURST: '1000',
        RATE_LIMIT_USER_PER_SECOND: '1',
        RATE_LIMIT_USER_BURST: '3',
      });
      try {
        const userId = uniqueId('shared-user');
        const otherUser = uniqueId('other-user');
        const conversationId = await probe.conversationWith(userId, otherUser);
        const connections = [await registered(conversationId, userId, 'phone'), await registered(conversationId, userId, 'laptop')];
        const admitted = [0, 0];
        let denied = [false, false];
        // Both connections, each through both instances, until both connections are refused. A bucket per
        // connection would refuse none of them here; a bucket per instance would admit 3 in each.
        for (let i = 0; i < 20 && !(denied[0] === true && denied[1] === true); i += 1) {
          const which = i % 2;
          const connectionId = connections[which] ?? '';
          if ((await containers.frame(Math.floor(i / 2) % 2, connectionId, conversationId, i)) === 'admitted') {
            admitted[which] = (admitted[which] ?? 0) + 1;
          } else {
            denied = denied.map((d, j) => d || j === which);
          }
        }
        expect(denied).toEqual([true, true]);
        const total = (admitted[0] ?? 0) + (admitted[1] ?? 0);
        expect(total).toBeGreaterThanOrEqual(3);
        expect(total).toBeLessThanOrEqual(4);
        expect(admitted[0]).toBeGreaterThan(0);
        expect(admitted[1]).toBeGreaterThan(0);
        // Another user of the same conversation, through the same instances, is not held back by this one.
        const other = await registered(conversationId, otherUser, 'phone');
        expect([await containers.frame(0, other, conversationId, 100), await containers.frame(1, other, conversationId, 101)]).toEqual(['admitted', 'admitted']);
        // In Redis: one bucket for the user, one for each of the user's connections.
        expect(await rateBucketsOf(userId)).toEqual([...connections.map((c) => `conn:${c}`).sort(), 'user']);
      } finally {
        await containers.close();
      }
    });
  });

  describe('with the defaults (20/s, burst 40)', () => {
    let restore: () => Promise<void>;
    beforeEach(async () => {
      // Every typing frame would go out but for the limits (no coalescing), so bob's count is what was admitted.
      restore = await switchEnv({ RATE_LIMIT_PER_SECOND: undefined, RATE_LIMIT_BURST: undefined, TYPING_COALESCE_MS: '0' }, backend, lambdas);
    });
    afterEach(async () => restore());

    it('answers rate_limited to a burst of typing beyond 40 and tells the other user only what was admitted', async () => {
      const conversationId = await probe.conversationWith('alice', 'bob');
      const alice = await join(conversationId, 'alice', 'phone');
      const bob = await join(conversationId, 'bob', 'phone');
      const started = Date.now();
      await Promise.all(Array.from({ length: 80 }, () => alice.send({ action: 'typing', conversationId })));
      await eventually(() => alice.frames().length + bob.frames().length >= 80, 10_000);
      const elapsedSeconds = (Date.now() - started) / 1000;
      const limited = alice.frames().filter((f) => f.type === 'error' && f.code === 'rate_limited').length;
      expect(alice.frames().every((f) => f.type === 'error' && f.code === 'rate_limited')).toBe(true);
      expect(bob.frames().length + limited).toBe(80);
      expect(bob.frames().length).toBeGreaterThanOrEqual(40);
      expect(bob.frames().length).toBeLessThanOrEqual(40 + Math.ceil(20 * elapsedSeconds));
    });
  });
});

describe('6. size limits', () => {
  it('refuses a body over 32 KiB of UTF-8 with bad_request and stores nothing; accepts exactly 32 KiB', async () => {
    const conversationId = await probe.conversationWith('alice', 'bob');
    const alice = await join(conversationId, 'alice', 'phone');
    const bob = await join(conversationId, 'bob', 'phone');
    // 32 KiB + 2 bytes of 2-byte characters: the frame is over 32 KB, so it goes in fragments (each under the frame limit).
    const tooBig = JSON.stringify({ action: 'sendMessage', conversationId, clientMessageId: 'big', body: 'é'.repeat(16 * 1024 + 1) });
    await sendFragmented(alice.socket, tooBig);
    const refused = await alice.waitFor((f) => f.type === 'error' || f.type === 'sent');
    expect(refused).toMatchObject({ type: 'error', code: 'bad_request', action: 'sendMessage' });
    expect(String(refused.message)).not.toContain('éé');
    expect(await probe.storedKeys(conversationId)).not.toContainEqual(expect.stringContaining('messages:'));
    expect(await probe.logItems(conversationId)).toHaveLength(0);

    const exact = JSON.stringify({ action: 'sendMessage', conversationId, clientMessageId: 'exact', body: 'é'.repeat(16 * 1024) });
    await sendFragmented(alice.socket, exact);
    expect(await alice.waitFor((f) => f.type === 'error' || f.type === 'sent')).toMatchObject({ type: 'sent', seq: 1 });
    expect(await allPending(bob, conversationId)).toHaveLength(1);
  });

  it('closes the connection with 1009 on a frame over 32 KB, stores nothing, and keeps serving', async () => {
    const conversationId = await probe.conversationWith('alice', 'bob');
    const alice = await join(conversationId, 'alice', 'phone');
    const bob = await join(conversationId, 'bob', 'phone');
    await alice.socket.send(JSON.stringify({ action: 'sendMessage', conversationId, clientMessageId: 'f', body: 'x'.repeat(33 * 1024) })).catch(() => undefined);
    expect((await alice.socket.closed).code).toBe(1009);
    expect(await allPending(bob, conversationId)).toEqual([]);
    const again = await join(conversationId, 'alice', 'phone');
    expect(await again.request({ action: 'getUnacked', conversationId }, 'unacked')).toMatchObject({ type: 'unacked' });
  });

  it('closes with 1009 on a message over 128 KB even when each fragment is small', async () => {
    const conversationId = await probe.conversationWith('alice');
    const alice = await join(conversationId, 'alice', 'phone');
    await sendFragmented(alice.socket, JSON.stringify({ action: 'typing', conversationId, pad: 'x'.repeat(130 * 1024) })).catch(() => undefined);
    expect((await alice.socket.closed).code).toBe(1009);
  });

  it('answers payload_too_large to a body whose delivered frame would exceed 128 KB, and stores nothing', async () => {
    const conversationId = await probe.conversationWith('alice', 'bob');
    const alice = await join(conversationId, 'alice', 'phone');
    const bob = await join(conversationId, 'bob', 'phone');
    // 21,700 bytes of UTF-8 (under the 32 KiB body limit), 130,200 bytes once JSON-escaped: the client frame
    // fits the 128 KB message limit, the delivered message frame (with ids and seq) would not.
    const body = '\u0001'.repeat(21_700);
    const text = JSON.stringify({ action: 'sendMessage', conversationId, clientMessageId: 'esc', body });
    expect(Buffer.byteLength(text)).toBeLessThan(128 * 1024);
    await sendFragmented(alice.socket, text);
    expect(await alice.waitFor((f) => f.type === 'error' || f.type === 'sent')).toMatchObject({ type: 'error', code: 'payload_too_large' });
    expect(await allPending(bob, conversationId)).toEqual([]);
    expect(await probe.logItems(conversationId)).toHaveLength(0);
  });
});

describe('7. logs', () => {
  let restore: () => Promise<void>;
  beforeEach(async () => {
    restore = await switchEnv({ LOG_LEVEL: 'DEBUG' }, backend, lambdas);
  });
  afterEach(async () => {
    echoGatewayLog = undefined;
    await restore();
  });

  it('never contain a token, a message body or a key, and are JSON lines', async () => {
    const conversationId = await probe.conversationWith('alice', 'bob');
    const other = await probe.conversationWith('carol');
    const marker = `${Date.now().toString(36)}${Math.random().toString(36).slice(2)}`;
    const bodies = [
      `the launch code is ${marker}-0451`,
      `Meet me at the old mill, ${marker}, bring the ledger`,
      `${'pässwörd '.repeat(20)}${marker}`,
      `forbidden body ${marker}`,
      `bad request body ${marker}`,
    ];
    const tokens = {
      alice: await tokenFor(backend, 'alice'),
      bob: await tokenFor(backend, 'bob'),
      expired: await signToken(secret.jwtSecret, 'alice', { ttlSeconds: -60 }),
      forged: await signToken(new TextEncoder().encode('forged-secret-forged-secret-forged!!'), 'alice'),
    };

    const capture = captureOutput();
    echoGatewayLog = jsonLineLog();
    try {
      const alice = await openClient(connectUrl(backend, { token: tokens.alice, conversationId, clientId: 'phone' }));
      const bob = await openClient(connectUrl(backend, { token: tokens.bob, conversationId, clientId: 'phone' }));
      await alice.send(JSON.stringify({ action: 'typing', conversationId }));
      const sentIds: string[] = [];
      for (const [i, body] of bodies.slice(0, 3).entries()) {
        await alice.send(JSON.stringify({ action: 'sendMessage', conversationId, clientMessageId: `log-${i}`, body }));
      }
      await eventually(() => alice.received.filter((t) => t.includes('"sent"')).length === 3);
      for (const text of alice.received) {
        const frame = JSON.parse(text) as Frame;
        if (frame.type === 'sent') sentIds.push(String(frame.messageId));
      }
      await bob.send(JSON.stringify({ action: 'ack', conversationId, messageIds: sentIds.slice(0, 2) }));
      await bob.send(JSON.stringify({ action: 'getUnacked', conversationId }));
      await alice.send(JSON.stringify({ action: 'sendMessage', conversationId: other, clientMessageId: 'x', body: bodies[3] }));
      await alice.send(JSON.stringify({ action: 'sendMessage', conversationId, clientMessageId: 7, body: bodies[4] }));
      await alice.send(`{"action":"sendMessage","body":"${bodies[4] ?? ''}"`);
      await eventually(() => bob.received.some((t) => t.includes('"unacked"')) && alice.received.filter((t) => t.includes('"error"')).length >= 3);
      expect(await refusedStatus(connectUrl(backend, { token: tokens.expired, conversationId, clientId: 'tablet' }))).toBe(401);
      expect(await refusedStatus(connectUrl(backend, { token: tokens.forged, conversationId, clientId: 'tablet' }))).toBe(401);
      await Promise.all([alice.close(), bob.close()]);
      await eventually(async () => (await probe.rowsOf(conversationId)).length === 0);
    } finally {
      capture.stop();
    }

    const text = capture.text();
    const lines = capture.lines();
    // There are logs to inspect: connections, frames and refusals were logged.
    expect(text).toContain('connected');
    expect(text).toContain('connect refused');
    expect(text).toContain('frame refused');
    for (const line of lines) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        parsed = undefined;
      }
      expect(typeof parsed === 'object' && parsed !== null ? 'json object' : line).toBe('json object');
    }
    const b64 = (value: string | Uint8Array) => Buffer.from(value).toString('base64');
    const b64url = (value: string | Uint8Array) => Buffer.from(value).toString('base64url');
    const hex = (value: string | Uint8Array) => Buffer.from(value).toString('hex');
    const forbidden: Record<string, string> = { marker };
    for (const [name, token] of Object.entries(tokens)) {
      forbidden[`${name} token`] = token;
      forbidden[`${name} token signature`] = token.split('.')[2] ?? token;
    }
    bodies.forEach((body, i) => {
      forbidden[`body ${i}`] = body;
      forbidden[`body ${i} base64`] = b64(body).slice(0, 24);
    });
    Object.assign(forbidden, {
      'master key': secret.masterKeyText,
      'master key base64': b64(secret.masterKeyText),
      'master key hex': hex(secret.masterKeyText),
      'jwt secret base64': b64(secret.jwtSecret),
      'jwt secret base64url': b64url(secret.jwtSecret),
      'jwt secret hex': hex(secret.jwtSecret),
      'jwt secret latin1': Buffer.from(secret.jwtSecret).toString('latin1'),
    });
    const leaks = Object.entries(forbidden).filter(([, value]) => value.length >= 8 && text.includes(value)).map(([name]) => name);
    expect(leaks).toEqual([]);
  });
});

describe('8. encryption at rest', () => {
  it('DynamoDB and Redis hold the body neither in clear nor in base64, and it opens with the right key only', async () => {
    const conversationId = await probe.conversationWith('alice', 'bob');
    const alice = await join(conversationId, 'alice', 'phone');
    await join(conversationId, 'bob', 'phone');
    const body = `Attack at dawn. The password is swordfish-${Date.now()}. ☂ über`;
    const sent = await alice.request({ action: 'sendMessage', conversationId, clientMessageId: 'enc', body }, 'sent');
    const [item] = await probe.logItems(conversationId);
    expect(item).toMatchObject({ messageId: sent.messageId, seq: 1 });
    const stored = JSON.stringify(item);

    const bytes = Buffer.from(body, 'utf8');
    const encodings = [body, body.slice(0, 16), bytes.toString('hex'), ...[0, 1, 2].flatMap((shift) => {
      const shifted = bytes.subarray(shift);
      // The middle of a base64 rendering at each alignment (its ends depend on the neighbouring bytes).
      return [shifted.toString('base64').slice(4, 28), shifted.toString('base64url').slice(4, 28)];
    })];
    for (const encoded of encodings) expect(stored).not.toContain(encoded);
    for (const other of await probe.redisKeys(conversationId)) {
      expect(await probe.dump(other)).not.toContain(body.slice(0, 16));
    }

    const fields = {
      conversationId,
      messageId: String(item?.messageId),
      seq: Number(item?.seq),
      senderId: String(item?.senderId),
      senderDevice: String(item?.senderDevice),
      clientMessageId: String(item?.clientMessageId),
      sentAt: Number(item?.sentAt),
    };
    const sealed = String(item?.sealed);
    expect(new MessageCipher(secret.masterKeys).open(fields, sealed)).toBe(body);
    const wrongKey = new MessageCipher([Buffer.from('another-master-key-of-at-least-32-bytes!!', 'utf8')]);
    expect(() => wrongKey.open(fields, sealed)).toThrow(DecryptionError);
    expect(() => new MessageCipher(secret.masterKeys).open({ ...fields, messageId: `${fields.messageId}x` }, sealed)).toThrow(DecryptionError);
    expect(() => new MessageCipher(secret.masterKeys).open({ ...fields, conversationId: `${conversationId}x` }, sealed)).toThrow(DecryptionError);
    expect(() => new MessageCipher(secret.masterKeys).open({ ...fields, senderId: 'mallory' }, sealed)).toThrow(DecryptionError);
    expect(() => new MessageCipher(secret.masterKeys).open({ ...fields, seq: fields.seq + 1 }, sealed)).toThrow(DecryptionError);
  });
});

describe('9. the Origin allow list', () => {
  let restore: () => Promise<void>;
  beforeEach(async () => {
    restore = await switchEnv({ ORIGIN_ALLOW_LIST: 'https://chat.example.test, https://app.example.test' }, backend, lambdas);
  });
  afterEach(async () => restore());

  it('refuses a missing or other Origin with 403 and writes nothing; accepts an allowed one', async () => {
    const conversationId = await probe.conversationWith('alice');
    const url = connectUrl(backend, { token: await tokenFor(backend, 'alice'), conversationId, clientId: 'phone' });
    const refused = ['https://evil.example.test', 'https://chat.example.test.evil.test', 'http://chat.example.test', 'https://chat.example.test/', 'null', ''];
    expect(await refusedStatus(url)).toBe(403);
    for (const origin of refused) expect([origin, await refusedStatus(url, { headers: { Origin: origin } })]).toEqual([origin, 403]);
    await expectNothingWritten(conversationId);
    for (const origin of ['https://chat.example.test', 'https://app.example.test']) {
      const client = await openClient(url, { headers: { Origin: origin } });
      await client.close();
    }
    await eventually(async () => (await probe.rowsOf(conversationId)).length === 0);
  });
});

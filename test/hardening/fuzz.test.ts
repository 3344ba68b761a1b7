import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { sqsRecord } from '../support/sqs-record.js';
import { DynamoMembershipStore } from '../../lambdas/adapters/dynamo-members.js';
import { handler as defaultRoute } from '../../lambdas/handlers/default.js';
import { connectParamsSchema, isWellFormed } from '../../lambdas/protocol.js';
import { appKeysFrom } from '../../lambdas/secret.js';
import { startLocalBackend, type LocalBackend } from '../../local/backend.js';
import { openClient, type TestClient } from '../../local/gateway/testing.js';
import { signToken } from '../../local/tokens.js';
import { connectUrl } from '../support/chat.js';
import { uniqueId } from '../support/env.js';
import { connectEvent, disconnectEvent, messageEvent } from '../support/events.js';
import {
  answerCount,
  answerProblems,
  applyExpected,
  errorFrameProblems,
  expectedAnswer,
  parseFrame,
  pushedFrameProblems,
  routeOf,
  ROUTES,
  type Expected,
  type Route,
  type Session,
} from './support/answers.js';
import { Entries, edgeString, edgeUnit, loneSurrogate, encode, fuzzFrame, fuzzValue, nastyString, runsFor, TOTAL_RUNS, type FuzzFrame, type FuzzValue } from './support/fuzz-values.js';
import { BackendProbe, CONNECTION_ENTRY, SUBSCRIPTION_PREFIX } from './support/probe.js';
import { badTokens } from './support/tokens.js';
import { testLambdas } from '../support/lambdas.js';

/** The handlers, built from the local backend's own environment (as the backend itself builds them). */
const lambdas = testLambdas(() => backend.env);
const ack = lambdas.ack;
const connect = lambdas.connect;
const disconnect = lambdas.disconnect;
const fanoutWorker = lambdas.fanoutWorker;
const getUnacked = lambdas.getUnacked;
const sendMessage = lambdas.sendMessage;
const typing = lambdas.typing;

/**
 * Bad input, property-based: arbitrary frames into every route handler (called directly, as Lambda would) and through the API Gateway emulator with real `ws` clients, arbitrary $connect
 * parameters and headers, arbitrary $disconnect events and arbitrary SQS records for the fan-out worker. The
 * frames are of every v2 action (subscribe, unsubscribe, ping and getPresence included), carry valid and malformed
 * requestIds, and change what the connection is subscribed to as they go: the expected answers follow that
 * (answers.ts, `Session`). The whole backend is real (dynalite, fauxqs, redis-server); the rate limit is set high
 * so it never masks behaviour.
 *
 * `npm test` runs about 3,000 cases in total (at least 2,400); `npm run fuzz` (FUZZ_RUNS=10000) runs 10,000+.
 */
let backend: LocalBackend;
let probe: BackendProbe;
let jwtSecret: Uint8Array;
let cases = 0;
const unhandled: unknown[] = [];
const recordUnhandled = (reason: unknown) => unhandled.push(reason);
const sockets: TestClient[] = [];

const routes: Record<Route, (event: unknown) => Promise<{ statusCode: number; body?: string }>> = {
  subscribe: lambdas.subscribe,
  unsubscribe: lambdas.unsubscribe,
  ping: lambdas.ping,
  typing,
  sendMessage,
  editMessage: lambdas.editMessage,
  deleteMessage: lambdas.deleteMessage,
  ack,
  getUnacked,
  getHistory: lambdas.getHistory,
  markRead: lambdas.markRead,
  getConversations: lambdas.getConversations,
  getPresence: lambdas.getPresence,
  registerPush: lambdas.registerPush,
  unregisterPush: lambdas.unregisterPush,
  $default: defaultRoute,
};
/** Every route runs a handler (`ping` too: it keeps presence, so it is no MOCK route). */
const HANDLER_ROUTES = ROUTES;
/**
 * Conversations the fuzzed user (alice) is a member of besides the one the connection starts in, named like
 * Object.prototype's properties: valid ids (1–128 of A-Z a-z 0-9 _ -) like any other.
 */
const HOSTILE_MEMBERSHIPS = ['constructor', '__proto__'];

beforeAll(async () => {
  process.on('unhandledRejection', recordUnhandled);
  process.on('uncaughtException', recordUnhandled);
  backend = await startLocalBackend({
    redisUrl: inject('redisUrl'),
    env: {
      LOG_LEVEL: 'SILENT',
      RATE_LIMIT_PER_SECOND: '1000000',
      RATE_LIMIT_BURST: '1000000',
      RATE_LIMIT_USER_PER_SECOND: '1000000',
      RATE_LIMIT_USER_BURST: '1000000',
      // No connection lapses while the suite runs: the only presence frames are those the fuzzed frames cause.
      PRESENCE_TTL_SECONDS: '3600',
    },
  });
  probe = new BackendProbe(backend);
  jwtSecret = appKeysFrom(backend.env.APP_SECRET_JSON ?? '').jwtSecret;
  const members = new DynamoMembershipStore(probe.db, backend.tables.members);
  for (const conversationId of HOSTILE_MEMBERSHIPS) await members.add(conversationId, 'alice', 0);
});

afterAll(async () => {
  console.log(`fuzz: ${cases} cases (at least ${TOTAL_RUNS} planned${process.env.FUZZ_RUNS === undefined ? '' : ', from FUZZ_RUNS'})`);
  await Promise.all(sockets.map((s) => s.close().catch(() => undefined)));
  await probe.close();
  await lambdas.reset();
  await backend.close();
  process.off('unhandledRejection', recordUnhandled);
  process.off('uncaughtException', recordUnhandled);
});

async function conversationWith(...userIds: string[]): Promise<string> {
  const conversationId = uniqueId('fuzz');
  const members = new DynamoMembershipStore(probe.db, backend.tables.members);
  for (const userId of userIds) await members.add(conversationId, userId, 0);
  return conversationId;
}

async function live(conversationId: string, userId: string, deviceId: string): Promise<TestClient> {
  const token = await signToken(jwtSecret, userId);
  const socket = await openClient(connectUrl(backend, { token, conversationId, clientId: deviceId }));
  sockets.push(socket);
  return socket;
}

/** The connection id the registry has for a user's (only) socket subscribed to a conversation. */
async function connectionIdOf(conversationId: string, userId: string): Promise<string> {
  const row = (await probe.rowsOf(conversationId)).find((item) => item.userId === userId);
  if (typeof row?.connectionId !== 'string') throw new Error(`${userId} has no connection in ${conversationId}`);
  return row.connectionId;
}

/** Registers a connection through the real $connect handler, as API Gateway would for a socket. */
async function connectDirect(connectionId: string, conversationId: string, userId: string, deviceId: string): Promise<void> {
  const token = await signToken(jwtSecret, userId);
  const result = await connect(connectEvent(connectionId, { token, conversationId, clientId: deviceId }));
  expect(result.statusCode).toBe(200);
}

/** alice's session on a connection subscribed (at $connect) to `conversationId`: also a member of `others`. */
function sessionOf(conversationId: string, others: string[]): Session {
  return {
    conversationId,
    userId: 'alice',
    alsoMemberOf: [...others, ...HOSTILE_MEMBERSHIPS],
    subscribed: new Set([conversationId]),
    maxSubscriptions: Number(backend.env.MAX_SUBSCRIPTIONS_PER_CONNECTION ?? '') || 100,
  };
}

/** After a failure (or a shrink step), what the connection is really subscribed to, from the registry. */
async function resync(session: Session, connectionId: string): Promise<void> {
  const entries = await probe.entriesOf(connectionId);
  session.subscribed = new Set(entries.filter((e) => e.startsWith(SUBSCRIPTION_PREFIX)).map((e) => e.slice(SUBSCRIPTION_PREFIX.length)));
}

/** The frames a socket received from index `from` on, once there are `count` (or `timeoutMs` passed). */
async function framesFrom(socket: TestClient, from: number, count: number, timeoutMs = 5_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  while (socket.received.length < from + count && Date.now() < deadline) {
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        socket.ws.off('message', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, deadline - Date.now()));
      socket.ws.on('message', done);
    });
  }
  return socket.received.slice(from);
}

/**
 * Frames this suite found answered against the contract (minimal forms of fast-check's counterexamples), tried
 * first on every run so each stays fixed once it is: a member conversation named like an Object.prototype
 * property resumed without an afterSeq for it; a seq at Number.MAX_SAFE_INTEGER; an afterSeq key echoed in the
 * error message; and `ping` requestIds a MOCK template once mishandled (a quote, an object with its own toString,
 * deep nesting).
 */
function foundFrames(session: Session): FuzzFrame[] {
  const frames: unknown[] = [
    { action: 'subscribe', conversationIds: ['constructor'], afterSeq: {} },
    { action: 'getUnacked', conversationId: session.conversationId, afterSeq: Number.MAX_SAFE_INTEGER },
    { action: 'subscribe', conversationIds: ['someone-elses'], afterSeq: { '<script>alert(1)</script>': 1 } },
    { action: 'ping', requestId: "it's" },
    { action: 'ping', requestId: { toString: 'x' } },
  ];
  return [
    ...frames.map((frame) => ({ kind: 'found', text: JSON.stringify(frame) })),
    { kind: 'found', text: `{"action":"ping","requestId":${'['.repeat(2500)}1${']'.repeat(2500)}}` },
  ];
}

function checkPassive(socket: TestClient, conversationId: string): void {
  const problems = socket.received.flatMap((text) => pushedFrameProblems(parseFrame(text), conversationId));
  expect(problems).toEqual([]);
  expect(socket.ws.readyState).toBe(socket.ws.OPEN);
}

describe('every route handler, called directly', () => {
  let binding: Session;
  let bob: TestClient;
  let alice: TestClient;
  // alice's real socket: `sent` (and a resuming `subscribe`'s frames) are posted to it (a connection without a
  // socket would be pruned on that 410).
  let CONNECTION = '';

  beforeAll(async () => {
    const conversationId = await conversationWith('alice', 'bob');
    binding = sessionOf(conversationId, [await conversationWith('alice')]);
    // bob first: alice's own stream then holds only what her frames cause (bob's `presence` online came before).
    bob = await live(conversationId, 'bob', 'phone');
    alice = await live(conversationId, 'alice', 'phone');
    CONNECTION = await connectionIdOf(conversationId, 'alice');
  });

  it('answers any frame by contract: a valid error frame, or the normal answer of a valid frame; never throws', async () => {
    const routeChoice = fc.oneof(fc.constant<'natural'>('natural'), fc.constantFrom(...ROUTES));
    let seen = alice.received.length;
    try {
      await fc.assert(
        fc.asyncProperty(routeChoice, fuzzFrame(binding, 200 * 1024, 5000), async (choice, frame) => {
          cases += 1;
          const route = choice === 'natural' ? routeOf(frame.text) : choice;
          const strays = alice.received.slice(seen);
          seen = alice.received.length;
          expect(strays, 'frames posted to alice that no frame asked for').toEqual([]);
          const expected = expectedAnswer(route, frame.text, binding);
          applyExpected(binding, expected);
          try {
            const result = await routes[route](messageEvent(CONNECTION, frame.text, route));
            expect(result.statusCode).toBe(200);
            // What was posted to the connection comes first; the route's own answer (its body) last.
            const posted = await framesFrom(alice, seen, answerCount(expected) - (result.body === undefined ? 0 : 1));
            seen += posted.length;
            expect(answerProblems(expected, [...posted, ...(result.body === undefined ? [] : [result.body])], frame.text)).toEqual([]);
          } catch (error) {
            // What the failed frame still posts is its own, not a stray of the next; the registry says what the
            // connection is subscribed to now (fast-check goes on shrinking from there).
            await framesFrom(alice, alice.received.length, 1, 50);
            seen = alice.received.length;
            await resync(binding, CONNECTION);
            throw error;
          }
        }),
        { numRuns: runsFor(0.6), examples: foundFrames(binding).map((frame): ['natural', FuzzFrame] => ['natural', frame]) },
      );
    } finally {
      // The next tests send on the bound conversation, whatever the fuzzed frames unsubscribed.
      const again = await lambdas.subscribe(messageEvent(CONNECTION, { action: 'subscribe', conversationIds: [binding.conversationId] }, 'subscribe'));
      expect(parseFrame(again.body ?? '{}')).toMatchObject({ type: 'subscribed', conversations: [{ conversationId: binding.conversationId, status: 'ok' }] });
    }
    checkPassive(bob, binding.conversationId);
    expect(unhandled).toEqual([]);
  }, 120_000);

  it('answers anything that is not an API Gateway event with bad_request, and $connect/$disconnect never throw on it', async () => {
    const notAnEvent = fc.oneof(
      fc.anything(),
      fc.record({ requestContext: fc.anything(), body: fc.anything() }),
      fc.record({ requestContext: fc.record({ connectionId: fc.oneof(fc.constant(''), fc.string({ minLength: 129, maxLength: 300 }), fc.integer()) }) }),
    );
    await fc.assert(
      fc.asyncProperty(notAnEvent, async (event) => {
        cases += 1;
        for (const route of HANDLER_ROUTES) {
          const result = await routes[route](event);
          expect(result.statusCode).toBe(200);
          const answer = parseFrame(result.body ?? '');
          expect(errorFrameProblems(answer, '')).toEqual([]);
          expect(answer.code).toBe('bad_request');
        }
        expect((await connect(event)).statusCode).toBe(400);
        expect(await disconnect(event)).toEqual({ statusCode: 200 });
      }),
      { numRuns: runsFor(0.05) },
    );
  });

  it('never merges two distinct clientMessageIds into one message (unicode edge cases)', async () => {
    const id = fc.string({ unit: edgeUnit, minLength: 1, maxLength: 8 });
    // Either two unrelated ids, or two that differ only in one lone surrogate half.
    const pair = fc.oneof(
      fc.tuple(id, id),
      fc.tuple(edgeString(4), loneSurrogate, loneSurrogate, edgeString(4)).map(([p, x, y, q]) => [p + x + q, p + y + q] as const),
    );
    await fc.assert(
      fc.asyncProperty(pair.filter(([a, b]) => a !== b), async ([a, b]) => {
        cases += 1;
        const prefix = `${cases}:`;
        const send = async (clientMessageId: string, body: string) => {
          const result = await sendMessage(messageEvent(CONNECTION, { action: 'sendMessage', conversationId: binding.conversationId, clientMessageId, body }, 'sendMessage'));
          if (result.body !== undefined) return parseFrame(result.body);
          // Posted to alice's socket before the fan-out: the newest `sent` for this clientMessageId.
          const posted = alice.received.map(parseFrame).filter((f) => f.type === 'sent' && f.clientMessageId === clientMessageId);
          return posted[posted.length - 1] ?? {};
        };
        const first = await send(prefix + a, 'first');
        const second = await send(prefix + b, 'second');
        // An id that UTF-8 cannot carry (a lone surrogate) is refused, never merged with another.
        for (const [id, answer] of [[a, first], [b, second]] as const) {
          if (isWellFormed(id)) expect(answer).toMatchObject({ type: 'sent', duplicate: false });
          else expect(answer).toMatchObject({ type: 'error', code: 'bad_request' });
        }
        if (first.type === 'sent' && second.type === 'sent') expect(second.messageId).not.toBe(first.messageId);
        if (first.type === 'sent') {
          expect(await send(prefix + a, 'first')).toMatchObject({ type: 'sent', duplicate: true, messageId: first.messageId });
        }
      }),
      { numRuns: runsFor(0.05) },
    );
  });
});

describe('$connect with arbitrary parameters and headers, and $disconnect', () => {
  it('answers 200, 400, 401 or 403 as the contract says, writes the connection\'s items only on 200, and never echoes the token', async () => {
    const conversationId = await conversationWith('alice');
    const tokens: Record<string, string> = {
      alice: await signToken(jwtSecret, 'alice'),
      mallory: await signToken(jwtSecret, 'mallory'),
      ...(await badTokens(jwtSecret, 'alice')),
    };
    const tokenArb = fc.oneof(
      { arbitrary: fc.constant({ kind: 'alice', token: tokens.alice ?? '' }), weight: 4 },
      { arbitrary: fc.constantFrom(...Object.keys(tokens)).map((kind) => ({ kind, token: tokens[kind] ?? '' })), weight: 6 },
      {
        // One character of a valid token changed: usually refused, valid only if the signature still verifies.
        arbitrary: fc.tuple(fc.constantFrom('alice', 'mallory'), fc.nat(), fc.constantFrom('A', '_', '-', '.', '%', '\u0000')).map(([kind, at, c]) => {
          const token = tokens[kind] ?? '';
          const i = at % token.length;
          return { kind: `mutated ${kind}`, token: token.slice(0, i) + c + token.slice(i + 1) };
        }),
        weight: 2,
      },
      { arbitrary: nastyString(10_000).map((token) => ({ kind: 'nasty', token })), weight: 1 },
    );
    const idArb = (valid: string) =>
      fc.oneof({ arbitrary: fc.constant(valid), weight: 8 }, { arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,130}$/), weight: 1 }, { arbitrary: nastyString(1000), weight: 1 });
    const sometimesMissing = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { freq: 10, nil: undefined });
    const queryArb = fc.record({
      token: sometimesMissing(tokenArb),
      conversationId: sometimesMissing(idArb(conversationId)),
      clientId: sometimesMissing(idArb('device-1')),
      extra: fc.array(fc.tuple(fc.oneof(fc.constantFrom('__proto__', 'constructor', 'token', 'userId'), edgeString(10)), edgeString(20)), { maxLength: 3 }),
    });
    const headerArb = fc.array(
      fc.tuple(fc.oneof(fc.constantFrom('Origin', 'origin', 'Authorization', 'Cookie', 'X-Forwarded-For', '__proto__', 'Sec-WebSocket-Protocol'), edgeString(12)), nastyString(2000)),
      { maxLength: 4 },
    );
    const connectionIdArb = fc.oneof({ arbitrary: fc.constant(''), weight: 8 }, { arbitrary: fc.string({ unit: edgeUnit, minLength: 1, maxLength: 20 }), weight: 1 });

    await fc.assert(
      fc.asyncProperty(queryArb, headerArb, connectionIdArb, async (q, headers, idSuffix) => {
        cases += 1;
        const connectionId = `fzc${cases}${idSuffix}`.slice(0, 128);
        const query: Record<string, string> = Object.fromEntries([
          ...q.extra,
          ...(q.token === undefined ? [] : [['token', q.token.token]]),
          ...(q.conversationId === undefined ? [] : [['conversationId', q.conversationId]]),
          ...(q.clientId === undefined ? [] : [['clientId', q.clientId]]),
        ]);
        const event = connectEvent(connectionId, query, Object.fromEntries(headers));
        const result = await connect(event);

        const params = connectParamsSchema.safeParse(query);
        // API Gateway's connection ids never hold `#` (the registry's keys use it): such an event is malformed, a
        // 400 before anything else. No token at all is a 401 whatever else is wrong; otherwise malformed
        // parameters are a 400.
        const missingToken = query.token === undefined || query.token === '';
        const kind = connectionId.includes('#') ? 'params' : missingToken ? 'missing' : params.success ? (q.token?.kind ?? '') : 'params';
        // v2: conversationId is optional. Without it no membership is asked (any valid user connects); with
        // it, the user must be a member of it (only alice is, and of HOSTILE_MEMBERSHIPS too).
        const named = params.success ? params.data.conversationId : undefined;
        const aliceIn = (c: string) => c === conversationId || HOSTILE_MEMBERSHIPS.includes(c);
        const admits = (userId: string) => (named === undefined || (userId === 'alice' && aliceIn(named)) ? 200 : 403);
        const allowed =
          kind === 'params' ? [400]
          : kind === 'alice' ? [admits('alice')]
          : kind === 'mallory' ? [admits('mallory')]
          : kind === 'mutated alice' ? [401, admits('alice')]
          : kind === 'mutated mallory' ? [401, admits('mallory')]
          : [401];
        expect(allowed).toContain(result.statusCode);
        const token = params.success ? params.data.token : '';
        if (token.length >= 8) expect(result.body ?? '').not.toContain(token);
        const subscribed = async () => (await probe.rowsOf(conversationId)).some((row) => row.connectionId === connectionId);
        if (result.statusCode !== 200) {
          // A refusal writes nothing: no record, no subscription, no claim on a user's connection slots.
          expect(await probe.entriesOf(connectionId)).toEqual([]);
          expect(await subscribed()).toBe(false);
          for (const userId of ['alice', 'mallory']) expect(await probe.openConnectionsOf(userId)).not.toContain(connectionId);
          return;
        }
        const userId = kind.endsWith('mallory') ? 'mallory' : 'alice';
        const deviceId = params.success ? params.data.clientId : '';
        // The record says who the connection is and nothing else: no conversationId, so the index never holds it.
        expect(await probe.record(connectionId)).toEqual({
          connectionId,
          entry: CONNECTION_ENTRY,
          userId,
          deviceId,
          connectedAt: expect.any(Number),
          expiresAt: expect.any(Number),
          // When the token expires: frames after it answer token_expired.
          tokenExpiresAt: expect.any(Number),
        });
        // Subscribed at once to the conversation it named, and to nothing else.
        expect(await probe.entriesOf(connectionId)).toEqual(
          named === undefined ? [CONNECTION_ENTRY] : [CONNECTION_ENTRY, `${SUBSCRIPTION_PREFIX}${named}`].sort(),
        );
        if (named !== undefined) {
          expect(await probe.subscription(connectionId, named)).toMatchObject({ connectionId, conversationId: named, userId, deviceId });
        }
        expect(await subscribed()).toBe(named === conversationId);
        expect(await probe.openConnectionsOf(userId)).toContain(connectionId);
        expect(await disconnect(disconnectEvent(connectionId))).toEqual({ statusCode: 200 });
        expect(await probe.entriesOf(connectionId)).toEqual([]);
        expect(await subscribed()).toBe(false);
        expect(await probe.openConnectionsOf(userId)).not.toContain(connectionId);
      }),
      { numRuns: runsFor(0.15) },
    );
  });

  it('$disconnect answers 200 to any event and removes only its own connection\'s items', async () => {
    const conversationId = await conversationWith('alice');
    const KEEP = 'FuzzKeepMe=';
    const LEAVER = 'FuzzLeaveMe=';
    await connectDirect(KEEP, conversationId, 'alice', 'keeper');
    await connectDirect(LEAVER, conversationId, 'alice', 'leaver');
    const eventArb = fc.oneof(
      fc.anything(),
      fc.string({ unit: edgeUnit, minLength: 1, maxLength: 128 }).filter((id) => id !== KEEP && id !== LEAVER).map((id) => disconnectEvent(id)),
      fc.record({ requestContext: fc.record({ connectionId: fc.anything(), routeKey: fc.anything() }) }),
    );
    await fc.assert(
      fc.asyncProperty(eventArb, async (event) => {
        cases += 1;
        expect(await disconnect(event)).toEqual({ statusCode: 200 });
      }),
      { numRuns: runsFor(0.05) },
    );
    // After all that, a real $disconnect of LEAVER still removes exactly LEAVER's items and slot.
    expect(await disconnect(disconnectEvent(LEAVER))).toEqual({ statusCode: 200 });
    expect(await probe.entriesOf(LEAVER)).toEqual([]);
    expect(await probe.openConnectionsOf('alice')).not.toContain(LEAVER);
    // KEEP is as it was: its record, its subscription (in the index too) and its place among alice's connections.
    expect(await probe.record(KEEP)).toMatchObject({ connectionId: KEEP, userId: 'alice', deviceId: 'keeper' });
    expect(await probe.entriesOf(KEEP)).toEqual([CONNECTION_ENTRY, `${SUBSCRIPTION_PREFIX}${conversationId}`].sort());
    expect((await probe.rowsOf(conversationId)).map((row) => row.connectionId)).toEqual([KEEP]);
    expect(await probe.openConnectionsOf('alice')).toContain(KEEP);
  });
});

describe('the fan-out worker with arbitrary SQS records', () => {
  it('reports exactly the records that are not fan-out jobs, processes the rest, and never throws', async () => {
    const conversationId = await conversationWith('alice', 'bob');
    const bob = await live(conversationId, 'bob', 'phone');
    const endpoint = backend.managementEndpoint;
    // Valid jobs carry ids shaped like API Gateway's; hostile ids come in through replaceField below.
    const ids = fc.array(fc.stringMatching(/^[A-Za-z0-9+/=_-]{1,40}$/).map((s) => `gone-${s}`), { minLength: 1, maxLength: 2 });
    const validJob: fc.Arbitrary<[string, FuzzValue][]> = fc.oneof(
      ids.map((connectionIds): [string, FuzzValue][] => [
        ['kind', 'typing'],
        ['conversationId', conversationId],
        ['userId', 'alice'],
        ['state', 'start'],
        ['at', 1],
        ['connectionIds', connectionIds],
      ]),
      fc.tuple(fc.uuid(), fc.integer({ min: 1, max: 1_000_000 }), ids).map(([messageId, seq, connectionIds]): [string, FuzzValue][] => [
        ['kind', 'message'],
        ['endpoint', endpoint],
        ['conversationId', conversationId],
        ['seq', seq],
        ['messageId', messageId],
        ['connectionIds', connectionIds],
      ]),
    );
    type Classified = { body: string; valid: boolean | undefined };
    // One field replaced by a hostile value: may or may not still be a job, so only "never throws" is asserted.
    const replaceField = fc
      .tuple(validJob, fc.constantFrom('kind', 'endpoint', 'conversationId', 'seq', 'messageId', 'connectionIds', 'userId', 'state', 'at', 'frame'), fuzzValue(2000, 2))
      .map(([entries, field, value]): Classified => ({
        body: encode(new Entries(entries.map(([k, v]): [string, FuzzValue] => [k, k === field ? value : v]))),
        valid: undefined,
      }));
    const recordArb: fc.Arbitrary<Classified> = fc.oneof(
      { arbitrary: validJob.map((entries) => ({ body: encode(new Entries(entries)), valid: true })), weight: 3 },
      { arbitrary: replaceField, weight: 3 },
      { arbitrary: edgeString(100).map((body) => ({ body, valid: false })), weight: 1 },
      {
        arbitrary: fc.oneof(
          fc.constant('null'),
          fc.constant('[]'),
          fc.constant('{}'),
          fc.constant('{"kind":"other"}'),
          fc.constant('{"kind":"frame","connectionIds":[]}'),
          // A prebuilt frame is no job of this version: poison, never posted.
          fc.constant(JSON.stringify({ kind: 'frame', endpoint, frame: '{"type":"typing"}', connectionIds: ['gone-x'] })),
        ).map((body) => ({ body, valid: false })),
        weight: 1,
      },
      // Another stage's endpoint: dropped as not ours (not a failure to retry), nothing posted.
      { arbitrary: validJob.map((entries) => ({ body: encode(new Entries([...entries, ['endpoint', 'https://elsewhere.example/prod']])), valid: true })), weight: 1 },
      { arbitrary: fuzzValue(2000, 3).map((value) => ({ body: encode(value), valid: undefined })), weight: 1 },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(recordArb, { minLength: 1, maxLength: 4 }), async (records) => {
        cases += 1;
        const event = { Records: records.map((r, i) => sqsRecord(`r${cases}-${i}`, r.body)) };
        const result = await fanoutWorker(event);
        const failed = new Set(result.batchItemFailures.map((f) => f.itemIdentifier));
        for (const id of failed) expect(event.Records.map((r) => r.messageId)).toContain(id);
        records.forEach((r, i) => {
          const id = `r${cases}-${i}`;
          if (r.valid === true) expect(failed.has(id), `valid job ${r.body} was reported failed`).toBe(false);
          if (r.valid === false) expect(failed.has(id), `poison ${JSON.stringify(r.body)} was not reported`).toBe(true);
        });
      }),
      { numRuns: runsFor(0.1) },
    );
    checkPassive(bob, conversationId);
  });
});

describe('through the API Gateway emulator with real ws clients', () => {
  it('answers every frame by contract, keeps the connection open and the process up', async () => {
    const conversationId = await conversationWith('alice', 'bob');
    const binding = sessionOf(conversationId, [await conversationWith('alice')]);
    // bob first, so that alice's stream holds only answers (bob's `presence` online went out before she came).
    const bob = await live(conversationId, 'bob', 'phone');
    const alice = await live(conversationId, 'alice', 'phone');
    const aliceConnection = await connectionIdOf(conversationId, 'alice');
    // Answered `unacked` while the connection is subscribed to the conversation, `forbidden` once it is not.
    const probeFrame = JSON.stringify({ action: 'getUnacked', conversationId, limit: 1 });
    const answersTo = async (expected: Expected): Promise<string[]> => {
      const answers: string[] = [];
      // The first may wait for a cold start; the frames that follow it are already on their way.
      for (let i = 0; i < answerCount(expected); i += 1) answers.push(await alice.next(i === 0 ? 10_000 : 3_000));
      return answers;
    };
    // Frames over 32 KB close the socket by design (security suite); stay under it here.
    await fc.assert(
      fc.asyncProperty(fuzzFrame(binding, 32 * 1000, 3000), async (frame) => {
        cases += 1;
        // What the handler sees: the socket carries UTF-8, so lone surrogates arrive as U+FFFD.
        const wire = Buffer.from(frame.text, 'utf8').toString('utf8');
        const expected = expectedAnswer(routeOf(wire), wire, binding);
        applyExpected(binding, expected);
        try {
          await alice.send(frame.text);
          expect(answerProblems(expected, await answersTo(expected), wire)).toEqual([]);
          const probeExpected = expectedAnswer('getUnacked', probeFrame, binding);
          await alice.send(probeFrame);
          expect(answerProblems(probeExpected, await answersTo(probeExpected), probeFrame)).toEqual([]);
        } catch (error) {
          // Whatever is still on its way belongs to this frame; the registry says what the connection has now.
          await framesFrom(alice, alice.received.length, 1, 50);
          let draining = true;
          while (draining) draining = await alice.next(1).then(() => true, () => false);
          await resync(binding, aliceConnection);
          throw error;
        }
      }),
      { numRuns: runsFor(0.25), examples: foundFrames(binding).map((frame): [FuzzFrame] => [frame]) },
    );
    expect(alice.ws.readyState).toBe(alice.ws.OPEN);
    checkPassive(bob, conversationId);
    expect(unhandled).toEqual([]);
  }, 120_000);
});

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { sqsRecord } from '../support/sqs-record.js';
import { DynamoMembershipStore } from '../../lambdas/adapters/dynamo-members.js';
import { CONVERSATION_INDEX } from '../../deploy/tables.js';
import { handler as defaultRoute } from '../../lambdas/handlers/default.js';
import { connectParamsSchema, isWellFormed } from '../../lambdas/protocol.js';
import { appKeysFrom } from '../../lambdas/secret.js';
import { startLocalBackend, type LocalBackend } from '../../local/backend.js';
import { openClient, type TestClient } from '../../local/gateway/testing.js';
import { signToken } from '../../local/tokens.js';
import { connectUrl } from '../support/chat.js';
import { uniqueId } from '../support/env.js';
import { connectEvent, disconnectEvent, messageEvent } from '../support/events.js';
import { answerProblems, errorFrameProblems, expectedAnswer, parseFrame, pushedFrameProblems, routeOf, type Route } from './support/answers.js';
import { Entries, edgeString, edgeUnit, loneSurrogate, encode, fuzzFrame, fuzzValue, nastyString, runsFor, TOTAL_RUNS, type Binding, type FuzzValue } from './support/fuzz-values.js';
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
 * Bad input, property-based: arbitrary frames into every route handler (called directly, as Lambda would) and
 * through the API Gateway emulator with real `ws` clients, arbitrary $connect parameters and headers,
 * arbitrary $disconnect events and arbitrary SQS records for the fan-out worker. The whole backend is real
 * (dynalite, fauxqs, redis-server); the rate limit is set high so it never masks behaviour.
 *
 * `npm test` runs about 3,000 cases in total (at least 2,400); `npm run fuzz` (FUZZ_RUNS=10000) runs 10,000+.
 */
let backend: LocalBackend;
let db: DynamoDBDocumentClient;
let jwtSecret: Uint8Array;
let cases = 0;
const unhandled: unknown[] = [];
const recordUnhandled = (reason: unknown) => unhandled.push(reason);
const sockets: TestClient[] = [];

const routes: Record<Route, (event: unknown) => Promise<{ statusCode: number; body?: string }>> = {
  typing,
  sendMessage,
  ack,
  getUnacked,
  getHistory: lambdas.getHistory,
  $default: defaultRoute,
};
const ROUTES = Object.keys(routes) as Route[];

beforeAll(async () => {
  process.on('unhandledRejection', recordUnhandled);
  process.on('uncaughtException', recordUnhandled);
  backend = await startLocalBackend({
    redisUrl: inject('redisUrl'),
    env: { LOG_LEVEL: 'SILENT', RATE_LIMIT_PER_SECOND: '1000000', RATE_LIMIT_BURST: '1000000' },
  });
  db = DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint: backend.dynamodbEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }),
  );
  jwtSecret = appKeysFrom(backend.env.APP_SECRET_JSON ?? '').jwtSecret;
});

afterAll(async () => {
  console.log(`fuzz: ${cases} cases (at least ${TOTAL_RUNS} planned${process.env.FUZZ_RUNS === undefined ? '' : ', from FUZZ_RUNS'})`);
  await Promise.all(sockets.map((s) => s.close().catch(() => undefined)));
  db.destroy();
  await lambdas.reset();
  await backend.close();
  process.off('unhandledRejection', recordUnhandled);
  process.off('uncaughtException', recordUnhandled);
});

async function conversationWith(...userIds: string[]): Promise<string> {
  const conversationId = uniqueId('fuzz');
  const members = new DynamoMembershipStore(db, backend.tables.members);
  for (const userId of userIds) await members.add(conversationId, userId, 0);
  return conversationId;
}

async function rowOf(connectionId: string): Promise<Record<string, unknown> | undefined> {
  const result = await db.send(new GetCommand({ TableName: backend.tables.connections, Key: { connectionId }, ConsistentRead: true }));
  return result.Item;
}

async function live(conversationId: string, userId: string, deviceId: string): Promise<TestClient> {
  const token = await signToken(jwtSecret, userId);
  const socket = await openClient(connectUrl(backend, { token, conversationId, clientId: deviceId }));
  sockets.push(socket);
  return socket;
}

/** The connection id the registry has for a user's (only) socket in a conversation. */
async function connectionIdOf(conversationId: string, userId: string): Promise<string> {
  const result = await db.send(
    new QueryCommand({
      TableName: backend.tables.connections,
      IndexName: CONVERSATION_INDEX,
      KeyConditionExpression: 'conversationId = :c',
      ExpressionAttributeValues: { ':c': conversationId },
    }),
  );
  const row = (result.Items ?? []).find((item) => item.userId === userId);
  if (typeof row?.connectionId !== 'string') throw new Error(`${userId} has no connection in ${conversationId}`);
  return row.connectionId;
}

/** Registers a connection through the real $connect handler, as API Gateway would for a socket. */
async function connectDirect(connectionId: string, conversationId: string, userId: string, deviceId: string): Promise<void> {
  const token = await signToken(jwtSecret, userId);
  const result = await connect(connectEvent(connectionId, { token, conversationId, clientId: deviceId }));
  expect(result.statusCode).toBe(200);
}

function checkPassive(socket: TestClient, conversationId: string): void {
  const problems = socket.received.flatMap((text) => pushedFrameProblems(parseFrame(text), conversationId));
  expect(problems).toEqual([]);
  expect(socket.ws.readyState).toBe(socket.ws.OPEN);
}

describe('every route handler, called directly', () => {
  let binding: Binding;
  let bob: TestClient;
  let alice: TestClient;
  // alice's real socket: `sent` is posted to it (a connection without a socket would be pruned on that 410).
  let CONNECTION = '';

  beforeAll(async () => {
    const conversationId = await conversationWith('alice', 'bob');
    binding = { conversationId, userId: 'alice' };
    alice = await live(conversationId, 'alice', 'phone');
    CONNECTION = await connectionIdOf(conversationId, 'alice');
    bob = await live(conversationId, 'bob', 'phone');
  });

  it('answers any frame by contract: a valid error frame, or the normal answer of a valid frame; never throws', async () => {
    const routeChoice = fc.oneof(fc.constant<'natural'>('natural'), fc.constantFrom(...ROUTES));
    await fc.assert(
      fc.asyncProperty(routeChoice, fuzzFrame(binding, 200 * 1024, 5000), async (choice, frame) => {
        cases += 1;
        const route = choice === 'natural' ? routeOf(frame.text) : choice;
        const result = await routes[route](messageEvent(CONNECTION, frame.text, route));
        expect(result.statusCode).toBe(200);
        expect(answerProblems(expectedAnswer(route, frame.text, binding), result.body, frame.text, binding)).toEqual([]);
      }),
      { numRuns: runsFor(0.6) },
    );
    checkPassive(bob, binding.conversationId);
    expect(unhandled).toEqual([]);
  });

  it('answers anything that is not an API Gateway event with bad_request, and $connect/$disconnect never throw on it', async () => {
    const notAnEvent = fc.oneof(
      fc.anything(),
      fc.record({ requestContext: fc.anything(), body: fc.anything() }),
      fc.record({ requestContext: fc.record({ connectionId: fc.oneof(fc.constant(''), fc.string({ minLength: 129, maxLength: 300 }), fc.integer()) }) }),
    );
    await fc.assert(
      fc.asyncProperty(notAnEvent, async (event) => {
        cases += 1;
        for (const route of ROUTES) {
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
  it('answers 200, 400, 401 or 403 as the contract says, writes a row only on 200, and never echoes the token', async () => {
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
        // No token at all is a 401 whatever else is wrong; otherwise malformed parameters are a 400.
        const missingToken = query.token === undefined || query.token === '';
        const kind = missingToken ? 'missing' : params.success ? (q.token?.kind ?? '') : 'params';
        const member = params.success && params.data.conversationId === conversationId;
        const allowed =
          kind === 'params' ? [400]
          : kind === 'alice' ? [member ? 200 : 403]
          : kind === 'mallory' ? [403]
          : kind === 'mutated alice' ? [401, member ? 200 : 403]
          : kind === 'mutated mallory' ? [401, 403]
          : [401];
        expect(allowed).toContain(result.statusCode);
        const token = params.success ? params.data.token : '';
        if (token.length >= 8) expect(result.body ?? '').not.toContain(token);
        const row = await rowOf(connectionId);
        if (result.statusCode !== 200) {
          expect(row).toBeUndefined();
          return;
        }
        expect(row).toMatchObject({ connectionId, userId: 'alice', conversationId, deviceId: params.success ? params.data.clientId : '' });
        expect(await disconnect(disconnectEvent(connectionId))).toEqual({ statusCode: 200 });
        expect(await rowOf(connectionId)).toBeUndefined();
      }),
      { numRuns: runsFor(0.15) },
    );
  });

  it('$disconnect answers 200 to any event and removes only its own row', async () => {
    const conversationId = await conversationWith('alice');
    const KEEP = 'FuzzKeepMe=';
    await connectDirect(KEEP, conversationId, 'alice', 'keeper');
    const eventArb = fc.oneof(
      fc.anything(),
      fc.string({ unit: edgeUnit, minLength: 1, maxLength: 128 }).filter((id) => id !== KEEP).map((id) => disconnectEvent(id)),
      fc.record({ requestContext: fc.record({ connectionId: fc.anything(), routeKey: fc.anything() }) }),
    );
    await fc.assert(
      fc.asyncProperty(eventArb, async (event) => {
        cases += 1;
        expect(await disconnect(event)).toEqual({ statusCode: 200 });
      }),
      { numRuns: runsFor(0.05) },
    );
    expect(await rowOf(KEEP)).toMatchObject({ connectionId: KEEP });
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
        ['kind', 'frame'],
        ['endpoint', endpoint],
        ['frame', '{"type":"typing"}'],
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
      .tuple(validJob, fc.constantFrom('kind', 'endpoint', 'conversationId', 'seq', 'messageId', 'connectionIds', 'frame'), fuzzValue(2000, 2))
      .map(([entries, field, value]): Classified => ({
        body: encode(new Entries(entries.map(([k, v]): [string, FuzzValue] => [k, k === field ? value : v]))),
        valid: undefined,
      }));
    const recordArb: fc.Arbitrary<Classified> = fc.oneof(
      { arbitrary: validJob.map((entries) => ({ body: encode(new Entries(entries)), valid: true })), weight: 3 },
      { arbitrary: replaceField, weight: 3 },
      { arbitrary: edgeString(100).map((body) => ({ body, valid: false })), weight: 1 },
      {
        arbitrary: fc.oneof(fc.constant('null'), fc.constant('[]'), fc.constant('{}'), fc.constant('{"kind":"other"}'), fc.constant('{"kind":"frame","connectionIds":[]}'))
          .map((body) => ({ body, valid: false })),
        weight: 1,
      },
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
    const binding: Binding = { conversationId, userId: 'alice' };
    const alice = await live(conversationId, 'alice', 'phone');
    const bob = await live(conversationId, 'bob', 'phone');
    const probe = JSON.stringify({ action: 'getUnacked', conversationId, limit: 1 });
    // Frames over 32 KB close the socket by design (security suite); stay under it here.
    await fc.assert(
      fc.asyncProperty(fuzzFrame(binding, 32 * 1000, 3000), async (frame) => {
        cases += 1;
        // What the handler sees: the socket carries UTF-8, so lone surrogates arrive as U+FFFD.
        const wire = Buffer.from(frame.text, 'utf8').toString('utf8');
        const expected = expectedAnswer(routeOf(wire), wire, binding);
        await alice.send(frame.text);
        if (expected.kind !== 'silent') {
          expect(answerProblems(expected, await alice.next(10_000), wire, binding)).toEqual([]);
        }
        await alice.send(probe);
        expect(parseFrame(await alice.next(10_000))).toMatchObject({ type: 'unacked', conversationId });
      }),
      { numRuns: runsFor(0.25) },
    );
    expect(alice.ws.readyState).toBe(alice.ws.OPEN);
    checkPassive(bob, conversationId);
    expect(unhandled).toEqual([]);
  });
});

import { BatchWriteCommand, DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { signToken } from '../../../local/tokens.js';
import { mockAws, type AwsMocks } from '../../support/aws-mocks.js';
import { applyEnv, completeEnv, restoreEnv, TEST_KEYS, uniqueId } from '../../support/env.js';
import { connectEvent, disconnectEvent } from '../../support/events.js';
import { testLambdas } from '../../support/lambdas.js';
import { fakeDevicePositions, fakeMessageLog } from '../../support/fake-store.js';

/** The message log and positions the routes share, in memory: this file tests the handlers, not DynamoDB. */
const store = { messages: fakeMessageLog(), positions: fakeDevicePositions() };
const lambdas = testLambdas(() => process.env, store);

const connect = lambdas.connect;
const disconnect = lambdas.disconnect;

let aws: AwsMocks;

/** Every write the registry (or anything else) could make to DynamoDB. */
const writes = () => [
  ...aws.dynamo.commandCalls(PutCommand),
  ...aws.dynamo.commandCalls(UpdateCommand),
  ...aws.dynamo.commandCalls(BatchWriteCommand),
  ...aws.dynamo.commandCalls(DeleteCommand),
];
/** The registry's items of one connection (its record and its subscriptions). */
const itemsOf = (connectionId: string) => [...aws.connections.values()].filter((item) => item.connectionId === connectionId);
/** The ids in a user's set of open connections. */
const openOf = (userId: string) => {
  const open = aws.connections.get(`user#${userId}|#connections`)?.open;
  return open instanceof Set ? [...open] : [];
};
const MAX_CONNECTIONS_PER_USER = 2;

beforeAll(async () => {
  applyEnv(completeEnv(inject('redisUrl'), { ORIGIN_ALLOW_LIST: '', MAX_CONNECTIONS_PER_USER: String(MAX_CONNECTIONS_PER_USER) }));
  aws = await mockAws();
});
afterAll(async () => {
  await lambdas.reset();
  await aws.restore();
  restoreEnv();
});
beforeEach(() => aws.reset());

describe('$connect', () => {
  it('accepts a member with a valid token and registers the connection, its subscription and the device', async () => {
    // Prepare
    const conversationId = uniqueId('conv');
    aws.addMember(conversationId, 'alice');
    const token = await signToken(TEST_KEYS.jwtSecret, 'alice');
    // Act
    const result = await connect(connectEvent('CONN-a=', { token, conversationId, clientId: 'phone' }));
    // Assess
    expect(result.statusCode).toBe(200);
    const record = aws.connections.get('CONN-a=|#connection');
    expect(record).toMatchObject({ connectionId: 'CONN-a=', userId: 'alice', deviceId: 'phone' });
    expect(record).not.toHaveProperty('conversationId');
    expect(aws.subscriptions()).toEqual([
      expect.objectContaining({ connectionId: 'CONN-a=', entry: `c#${conversationId}`, conversationId, userId: 'alice', deviceId: 'phone' }),
    ]);
    expect(openOf('alice')).toEqual(['CONN-a=']);
    expect(await store.positions.get(conversationId, { userId: 'alice', deviceId: 'phone' })).toMatchObject({ ackedThrough: 0, acked: [] });
  });

  it('accepts a connection without a conversationId: its record only, no subscription, no membership read', async () => {
    // Prepare
    const token = await signToken(TEST_KEYS.jwtSecret, 'alice');
    // Act
    const result = await connect(connectEvent('CONN-bare', { token, clientId: 'laptop' }));
    // Assess
    expect(result.statusCode).toBe(200);
    expect(itemsOf('CONN-bare')).toEqual([expect.objectContaining({ entry: '#connection', userId: 'alice', deviceId: 'laptop' })]);
    expect(aws.subscriptions()).toEqual([]);
    expect(openOf('alice')).toEqual(['CONN-bare']);
    expect(aws.dynamo.commandCalls(GetCommand).filter((c) => c.args[0].input.TableName === 'members-test')).toHaveLength(0);
  });

  it('refuses with 429 a user who already has the most open connections allowed, and leaves nothing written', async () => {
    // Prepare: two live connections of alice, both in her set (which the conditional update finds full).
    const conversationId = uniqueId('conv');
    aws.addMember(conversationId, 'alice');
    aws.connect({ connectionId: 'OPEN-1', userId: 'alice', deviceId: 'phone', conversationId });
    aws.connect({ connectionId: 'OPEN-2', userId: 'alice', deviceId: 'laptop', conversationId });
    aws.connections.set('user#alice|#connections', { connectionId: 'user#alice', entry: '#connections', open: new Set(['OPEN-1', 'OPEN-2']) });
    aws.dynamo.on(UpdateCommand).rejects(Object.assign(new Error('The conditional request failed'), { name: 'ConditionalCheckFailedException', $metadata: { httpStatusCode: 400 } }));
    const token = await signToken(TEST_KEYS.jwtSecret, 'alice');
    // Act
    const result = await connect(connectEvent('CONN-3', { token, conversationId, clientId: 'tablet' }));
    // Assess
    expect(result.statusCode).toBe(429);
    expect(result.body).toMatch(new RegExp(`at most ${MAX_CONNECTIONS_PER_USER}`));
    // Nothing left behind (the registry may write the record before claiming the slot; a refusal removes it).
    expect(itemsOf('CONN-3')).toEqual([]);
    expect(openOf('alice').sort()).toEqual(['OPEN-1', 'OPEN-2']);
    expect(aws.dynamo.commandCalls(BatchWriteCommand)).toHaveLength(0);
    expect(await store.positions.get(conversationId, { userId: 'alice', deviceId: 'tablet' })).toBeUndefined();
  });

  it.each([
    ['a conversation id with a slash', { token: 't', conversationId: 'a/b', clientId: 'd1' }],
    ['an empty client id', { token: 't', conversationId: 'c1', clientId: '' }],
    ['a 65-character client id', { token: 't', conversationId: 'c1', clientId: 'x'.repeat(65) }],
    ['a 129-character conversation id', { token: 't', conversationId: 'c'.repeat(129), clientId: 'd' }],
  ])('refuses %s with 400 and writes nothing', async (_label, query) => {
    const result = await connect(connectEvent('CONN-b', query as Record<string, string>));
    expect(result.statusCode).toBe(400);
    expect(writes()).toHaveLength(0);
  });

  it('refuses a missing or empty token with 401 even when other parameters are bad too', async () => {
    for (const query of [{}, { conversationId: 'c1', clientId: 'd1' }, { token: '', conversationId: 'c1', clientId: 'd1' }, { conversationId: 'a/b' }] as Record<string, string>[]) {
      expect((await connect(connectEvent('CONN-t', query))).statusCode).toBe(401);
    }
    expect(writes()).toHaveLength(0);
  });

  it.each([
    ['a malformed token', async () => 'not.a.jwt'],
    ['a token signed with another secret', async () => signToken(new TextEncoder().encode('x'.repeat(40)), 'alice')],
    ['an expired token', async () => signToken(TEST_KEYS.jwtSecret, 'alice', { ttlSeconds: -60 })],
  ])('refuses %s with 401 and writes nothing', async (_label, makeToken) => {
    const conversationId = uniqueId('conv');
    aws.addMember(conversationId, 'alice');
    const result = await connect(connectEvent('CONN-c', { token: await makeToken(), conversationId, clientId: 'd1' }));
    expect(result.statusCode).toBe(401);
    expect(writes()).toHaveLength(0);
  });

  it('refuses a non-member with 403 and writes nothing', async () => {
    const conversationId = uniqueId('conv');
    const token = await signToken(TEST_KEYS.jwtSecret, 'mallory');
    const result = await connect(connectEvent('CONN-d', { token, conversationId, clientId: 'd1' }));
    expect(result.statusCode).toBe(403);
    expect(writes()).toHaveLength(0);
  });

  it('answers 400 to an event that is not an API Gateway event', async () => {
    for (const event of [undefined, null, 42, 'x', {}, { requestContext: {} }, { requestContext: { connectionId: 7 } }]) {
      const result = await connect(event);
      expect(result.statusCode).toBe(400);
    }
  });

  it('never puts the token in the refusal body', async () => {
    const token = await signToken(new TextEncoder().encode('y'.repeat(40)), 'alice');
    const result = await connect(connectEvent('CONN-e', { token, conversationId: 'c1', clientId: 'd1' }));
    expect(result.statusCode).toBe(401);
    expect(result.body ?? '').not.toContain(token);
  });
});

describe('$disconnect', () => {
  it('removes the connection\'s record and subscriptions (subscriptions first) and frees its slot', async () => {
    // Prepare
    aws.connect({ connectionId: 'CONN-x', userId: 'u', deviceId: 'd', conversationId: 'c' });
    aws.connect({ connectionId: 'CONN-keep', userId: 'u', deviceId: 'e', conversationId: 'c' });
    aws.connections.set('user#u|#connections', { connectionId: 'user#u', entry: '#connections', open: new Set(['CONN-x', 'CONN-keep']) });
    expect(itemsOf('CONN-x')).toHaveLength(2);
    // Act
    const result = await disconnect(disconnectEvent('CONN-x'));
    // Assess
    expect(result.statusCode).toBe(200);
    expect(itemsOf('CONN-x')).toEqual([]);
    expect(itemsOf('CONN-keep')).toHaveLength(2);
    expect(openOf('u')).toEqual(['CONN-keep']);
    const deleted = aws.dynamo
      .commandCalls(BatchWriteCommand)
      .flatMap((c) => Object.values(c.args[0].input.RequestItems ?? {}).flat())
      .map((request) => request.DeleteRequest?.Key?.entry);
    expect(deleted).toEqual(['c#c', '#connection']);
  });

  it('answers 200 even when the table is unavailable or the event is malformed', async () => {
    const throttled = Object.assign(new Error('throttled'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } });
    aws.connect({ connectionId: 'CONN-y', userId: 'u', deviceId: 'd', conversationId: 'c' });
    aws.dynamo.on(QueryCommand).rejects(throttled);
    aws.dynamo.on(BatchWriteCommand).rejects(throttled);
    await expect(disconnect(disconnectEvent('CONN-y'))).resolves.toEqual({ statusCode: 200 });
    expect(aws.dynamo.commandCalls(QueryCommand).length).toBeGreaterThan(0);
    await expect(disconnect({ nonsense: true })).resolves.toEqual({ statusCode: 200 });
  });
});

import { DeleteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
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

beforeAll(async () => {
  applyEnv(completeEnv(inject('redisUrl'), { ORIGIN_ALLOW_LIST: '' }));
  aws = await mockAws();
});
afterAll(async () => {
  await lambdas.reset();
  await aws.restore();
  restoreEnv();
});
beforeEach(() => aws.reset());

describe('$connect', () => {
  it('accepts a member with a valid token and registers the connection and device', async () => {
    // Prepare
    const conversationId = uniqueId('conv');
    aws.addMember(conversationId, 'alice');
    const token = await signToken(TEST_KEYS.jwtSecret, 'alice');
    // Act
    const result = await connect(connectEvent('CONN-a=', { token, conversationId, clientId: 'phone' }));
    // Assess
    expect(result.statusCode).toBe(200);
    expect(aws.connections.get('CONN-a=')).toMatchObject({ userId: 'alice', deviceId: 'phone', conversationId });
  });

  it.each([
    ['a conversation id with a slash', { token: 't', conversationId: 'a/b', clientId: 'd1' }],
    ['an empty client id', { token: 't', conversationId: 'c1', clientId: '' }],
    ['a 65-character client id', { token: 't', conversationId: 'c1', clientId: 'x'.repeat(65) }],
    ['a 129-character conversation id', { token: 't', conversationId: 'c'.repeat(129), clientId: 'd' }],
  ])('refuses %s with 400 and writes nothing', async (_label, query) => {
    const result = await connect(connectEvent('CONN-b', query as Record<string, string>));
    expect(result.statusCode).toBe(400);
    expect(aws.dynamo.commandCalls(PutCommand)).toHaveLength(0);
  });

  it('refuses a missing or empty token with 401 even when other parameters are bad too', async () => {
    for (const query of [{}, { conversationId: 'c1', clientId: 'd1' }, { token: '', conversationId: 'c1', clientId: 'd1' }, { conversationId: 'a/b' }] as Record<string, string>[]) {
      expect((await connect(connectEvent('CONN-t', query))).statusCode).toBe(401);
    }
    expect(aws.dynamo.commandCalls(PutCommand)).toHaveLength(0);
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
    expect(aws.dynamo.commandCalls(PutCommand)).toHaveLength(0);
  });

  it('refuses a non-member with 403 and writes nothing', async () => {
    const conversationId = uniqueId('conv');
    const token = await signToken(TEST_KEYS.jwtSecret, 'mallory');
    const result = await connect(connectEvent('CONN-d', { token, conversationId, clientId: 'd1' }));
    expect(result.statusCode).toBe(403);
    expect(aws.dynamo.commandCalls(PutCommand)).toHaveLength(0);
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
  it('removes the connection row', async () => {
    aws.connect({ connectionId: 'CONN-x', userId: 'u', deviceId: 'd', conversationId: 'c' });
    const result = await disconnect(disconnectEvent('CONN-x'));
    expect(result.statusCode).toBe(200);
    expect(aws.connections.has('CONN-x')).toBe(false);
    expect(aws.dynamo.commandCalls(DeleteCommand)).toHaveLength(1);
  });

  it('answers 200 even when the table is unavailable or the event is malformed', async () => {
    aws.dynamo.on(DeleteCommand).rejects(Object.assign(new Error('throttled'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } }));
    await expect(disconnect(disconnectEvent('CONN-y'))).resolves.toEqual({ statusCode: 200 });
    await expect(disconnect({ nonsense: true })).resolves.toEqual({ statusCode: 200 });
  });
});

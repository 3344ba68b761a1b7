import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { lazyServices, Scope } from '../../../lambdas/context/lazy.js';
import { handler as defaultRoute } from '../../../lambdas/handlers/default.js';
import { route as subscribeRoute } from '../../../lambdas/handlers/subscribe.js';
import { route as unsubscribeRoute } from '../../../lambdas/handlers/unsubscribe.js';
import { mockAws, type AwsMocks } from '../../support/aws-mocks.js';
import { applyEnv, completeEnv, restoreEnv } from '../../support/env.js';
import { answerOf, messageEvent } from '../../support/events.js';
import { testLambdas } from '../../support/lambdas.js';
import { fakeDevicePositions, fakeMessageLog } from '../../support/fake-store.js';

/** The message log and positions the routes share, in memory: this file tests the handlers, not DynamoDB. */
const store = { messages: fakeMessageLog(), positions: fakeDevicePositions() };
const lambdas = testLambdas(() => process.env, store);

const ack = lambdas.ack;
const getUnacked = lambdas.getUnacked;
const sendMessage = lambdas.sendMessage;
const typing = lambdas.typing;
const getHistory = lambdas.getHistory;
/** `subscribe` and `unsubscribe`, built like the others (test/support/lambdas.ts does not list them). */
const scope = new Scope();
const subscribe = subscribeRoute.create(lazyServices(() => subscribeRoute.build(process.env, scope, store)));
const unsubscribe = unsubscribeRoute.create(lazyServices(() => unsubscribeRoute.build(process.env, scope)));

let aws: AwsMocks;
const CONV = 'malformed-conv';

beforeAll(async () => {
  applyEnv(
    completeEnv(inject('redisUrl'), {
      RATE_LIMIT_PER_SECOND: '100000',
      RATE_LIMIT_BURST: '100000',
      RATE_LIMIT_USER_PER_SECOND: '100000',
      RATE_LIMIT_USER_BURST: '100000',
    }),
  );
  aws = await mockAws();
  // A member, subscribed: a well-formed frame reaches the domain (a non-member's subscription would be dropped).
  aws.addMember(CONV, 'alice');
  aws.connect({ connectionId: 'M1', userId: 'alice', deviceId: 'phone', conversationId: CONV });
});
afterAll(async () => {
  await lambdas.reset();
  await scope.close();
  await aws.restore();
  restoreEnv();
});

const routes = { typing, sendMessage, ack, getUnacked, getHistory, subscribe, unsubscribe } as const;
const ERROR_CODES = ['bad_request', 'forbidden', 'not_found', 'payload_too_large', 'rate_limited', 'unavailable', 'internal'];

const malformed: [string, unknown][] = [
  ['not JSON', 'not json'],
  ['empty', ''],
  ['null', 'null'],
  ['a number', '42'],
  ['an array', '[{"action":"typing"}]'],
  ['a string', '"typing"'],
  ['missing conversationId', { action: 'X' }],
  ['conversationId a number', { action: 'X', conversationId: 7 }],
  ['conversationId an object', { action: 'X', conversationId: { $ne: 1 } }],
  ['conversationId with spaces', { action: 'X', conversationId: 'a b' }],
  ['conversationId too long', { action: 'X', conversationId: 'c'.repeat(129) }],
  ['deeply nested', JSON.stringify({ action: 'X', conversationId: CONV, body: JSON.parse('['.repeat(500) + ']'.repeat(500)) })],
  ['spoofed conversation', { action: 'X', conversationId: 'someone-elses', clientMessageId: 'c', body: 'b', messageIds: ['m'] }],
];

describe.each(Object.entries(routes))('%s with a malformed frame', (action, route) => {
  it.each(malformed)('answers an error frame to %s and never throws', async (_label, frame) => {
    const body = typeof frame === 'string' ? frame : JSON.stringify(frame).replaceAll('"X"', JSON.stringify(action));
    const answer = answerOf(await route(messageEvent('M1', body, action)));
    expect(answer.type).toBe('error');
    expect(ERROR_CODES).toContain(answer.code);
    expect(['bad_request', 'forbidden']).toContain(answer.code);
  });

  it('ignores __proto__ and constructor keys: handled by contract, nothing polluted', async () => {
    for (const body of [
      `{"action":"${action}","conversationId":"${CONV}","__proto__":{"polluted":true}}`,
      `{"action":"${action}","conversationId":"${CONV}","constructor":{"prototype":{"polluted":true}}}`,
    ]) {
      const result = await route(messageEvent('M1', body, action));
      expect(result.statusCode).toBe(200);
      if (result.body !== undefined) expect(['error', 'unacked', 'history']).toContain(answerOf(result).type);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    }
  });

  it('answers wrong field types with bad_request naming the field', async () => {
    const wrong = {
      typing: { state: 'dancing' },
      sendMessage: { clientMessageId: 5, body: 'b' },
      ack: { messageIds: 'm1' },
      getUnacked: { limit: 1000 },
      getHistory: { limit: 0 },
      subscribe: { conversationIds: CONV },
      unsubscribe: { conversationIds: [] },
    }[action];
    const answer = answerOf(await route(messageEvent('M1', { action, conversationId: CONV, ...wrong }, action)));
    expect(answer).toMatchObject({ type: 'error', code: 'bad_request', action });
    expect(String(answer.message)).toMatch(/state|clientMessageId|messageIds|limit|conversationIds/);
  });

  it('answers every arbitrary JSON value with a valid frame (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (value) => {
        const result = await route(messageEvent('M1', JSON.stringify(value), action));
        expect(result.statusCode).toBe(200);
        if (result.body !== undefined) {
          const answer = answerOf(result);
          expect(['error', 'sent', 'acked', 'unacked', 'history', 'subscribed', 'unsubscribed']).toContain(answer.type);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('answers events that are not API Gateway events', async () => {
    for (const event of [undefined, null, 0, 'x', [], {}, { requestContext: null }, { requestContext: { connectionId: '' } }, { requestContext: { connectionId: 'M1' }, body: 5 }]) {
      const answer = answerOf(await route(event));
      expect(answer).toMatchObject({ type: 'error', code: 'bad_request' });
    }
  });
});

describe('$default with arbitrary input', () => {
  it('answers bad_request to any string (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'binary', maxLength: 200 }), async (text) => {
        const answer = answerOf(await defaultRoute(messageEvent('M1', text)));
        expect(answer).toMatchObject({ type: 'error', code: 'bad_request' });
      }),
      { numRuns: 200 },
    );
  });
});

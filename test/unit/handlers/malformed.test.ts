import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { handler as defaultRoute } from '../../../lambdas/handlers/default.js';
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

let aws: AwsMocks;
const CONV = 'malformed-conv';

beforeAll(async () => {
  applyEnv(completeEnv(inject('redisUrl'), { RATE_LIMIT_PER_SECOND: '100000', RATE_LIMIT_BURST: '100000' }));
  aws = await mockAws();
  aws.connect({ connectionId: 'M1', userId: 'alice', deviceId: 'phone', conversationId: CONV });
});
afterAll(async () => {
  await lambdas.reset();
  await aws.restore();
  restoreEnv();
});

const routes = { typing, sendMessage, ack, getUnacked } as const;
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
      if (result.body !== undefined) expect(['error', 'unacked']).toContain(answerOf(result).type);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    }
  });

  it('answers wrong field types with bad_request naming the field', async () => {
    const wrong = {
      typing: { state: 'dancing' },
      sendMessage: { clientMessageId: 5, body: 'b' },
      ack: { messageIds: 'm1' },
      getUnacked: { limit: 1000 },
    }[action];
    const answer = answerOf(await route(messageEvent('M1', { action, conversationId: CONV, ...wrong }, action)));
    expect(answer).toMatchObject({ type: 'error', code: 'bad_request', action });
    expect(String(answer.message)).toMatch(/state|clientMessageId|messageIds|limit/);
  });

  it('answers every arbitrary JSON value with a valid frame (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (value) => {
        const result = await route(messageEvent('M1', JSON.stringify(value), action));
        expect(result.statusCode).toBe(200);
        if (result.body !== undefined) {
          const answer = answerOf(result);
          expect(['error', 'sent', 'acked', 'unacked']).toContain(answer.type);
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

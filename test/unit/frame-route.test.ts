import { describe, expect, it } from 'vitest';
import { MemoryRateLimiter } from '../../lambdas/adapters/memory-rate-limiter.js';
import { ServicesBuildError, UnavailableError } from '../../lambdas/errors.js';
import type { FrameHandler } from '../../lambdas/frame-route.js';
import { route as ackRoute } from '../../lambdas/handlers/ack.js';
import { route as getHistoryRoute } from '../../lambdas/handlers/get-history.js';
import { route as getUnackedRoute } from '../../lambdas/handlers/get-unacked.js';
import { route as sendMessageRoute } from '../../lambdas/handlers/send-message.js';
import { route as subscribeRoute } from '../../lambdas/handlers/subscribe.js';
import { route as typingRoute } from '../../lambdas/handlers/typing.js';
import { route as unsubscribeRoute } from '../../lambdas/handlers/unsubscribe.js';
import type { RateLimiter } from '../../lambdas/ports.js';
import { answerOf, messageEvent } from '../support/events.js';
import { fakeServices } from '../support/fake-services.js';

type Fake = ReturnType<typeof fakeServices>;

/**
 * The client-frame routes as their handlers run them (frame-route.ts: the connection → the rate limits → the
 * subscription and membership → one domain call → the answer), over the fake services: every port is a spy,
 * so a test can say exactly which ones a frame touched.
 */
function routesOf(fake: Fake, limiter: RateLimiter = fake.services.limiter): Record<string, FrameHandler> {
  const services = { ...fake.services, limiter, callbackUrl: 'https://api.example/test' };
  const source = async () => services;
  return {
    typing: typingRoute.create(source),
    sendMessage: sendMessageRoute.create(source),
    ack: ackRoute.create(source),
    getUnacked: getUnackedRoute.create(source),
    getHistory: getHistoryRoute.create(source),
    subscribe: subscribeRoute.create(source),
    unsubscribe: unsubscribeRoute.create(source),
  };
}

/** One valid frame of each route, for the conversation `conv`. */
const FRAMES: Record<string, Record<string, unknown>> = {
  typing: { action: 'typing', conversationId: 'conv' },
  sendMessage: { action: 'sendMessage', conversationId: 'conv', clientMessageId: 'cm-1', body: 'hello' },
  ack: { action: 'ack', conversationId: 'conv', messageIds: ['m-1'], upToSeq: 1 },
  getUnacked: { action: 'getUnacked', conversationId: 'conv' },
  getHistory: { action: 'getHistory', conversationId: 'conv' },
  subscribe: { action: 'subscribe', conversationIds: ['conv', 'other'], afterSeq: { conv: 0 } },
  unsubscribe: { action: 'unsubscribe', conversationIds: ['conv'] },
};
const ACTIONS = Object.keys(FRAMES);

function frameOf(action: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const frame = FRAMES[action];
  if (frame === undefined) throw new RangeError(`no frame for ${action}`);
  return { ...frame, ...extra };
}

async function call(routes: Record<string, FrameHandler>, action: string, connectionId: string, body: unknown) {
  const handler = routes[action];
  if (handler === undefined) throw new RangeError(`no route ${action}`);
  return handler(messageEvent(connectionId, body, action));
}

/** The spies of every port a frame could touch (the limiter aside), by name, that were called. */
function touched(fake: Fake): string[] {
  const s = fake.services;
  const groups = { registry: s.registry, members: s.members, roster: s.roster, messages: s.messages, positions: s.positions, seqCache: s.seqCache, fanout: s.fanout };
  const called = Object.entries(groups).flatMap(([group, spies]) =>
    Object.entries(spies)
      .filter(([, spy]) => spy.mock.calls.length > 0)
      .map(([name]) => `${group}.${name}`),
  );
  return s.posterFor.mock.calls.length > 0 ? [...called, 'posterFor'] : called;
}

/** alice's phone, connected and subscribed to `conv`; bob too; a message from bob in the log. */
function chat(overrides: Parameters<typeof fakeServices>[0] = {}) {
  const fake = fakeServices(overrides);
  fake.connect('A1', 'alice', 'phone');
  fake.connect('B1', 'bob', 'phone');
  fake.addMessage({ senderId: 'bob', senderDevice: 'phone', body: 'earlier' });
  return fake;
}

describe('requestId', () => {
  it.each([
    ['sendMessage', 'sent'],
    ['ack', 'acked'],
    ['getUnacked', 'unacked'],
    ['getHistory', 'history'],
    ['subscribe', 'subscribed'],
    ['unsubscribe', 'unsubscribed'],
  ])('%s: the answer (or the posted answer) echoes the client\'s requestId, never the gateway\'s', async (action, type) => {
    // Prepare
    const fake = chat();
    const routes = routesOf(fake);
    // Act
    const result = await call(routes, action, 'A1', frameOf(action, { requestId: 'client-req-1' }));
    // Assess: sendMessage posts `sent` (and subscribe with afterSeq posts `subscribed`) before answering nothing.
    const answer = result.body === undefined ? JSON.parse(fake.posted.find((p) => p.connectionId === 'A1')?.data ?? '{}') : answerOf(result);
    expect(answer).toMatchObject({ type, requestId: 'client-req-1' });
    expect(JSON.stringify([result, fake.posted])).not.toMatch(/req-A1-/);
  });

  it('carries no requestId when the client sent none', async () => {
    // Prepare
    const fake = chat();
    // Act
    const answer = answerOf(await call(routesOf(fake), 'getUnacked', 'A1', frameOf('getUnacked')));
    // Assess
    expect(answer.type).toBe('unacked');
    expect(answer).not.toHaveProperty('requestId');
  });

  it('echoes it in the error frame of a refused frame (forbidden)', async () => {
    // Prepare
    const fake = chat();
    // Act
    const answer = answerOf(await call(routesOf(fake), 'getUnacked', 'A1', frameOf('getUnacked', { conversationId: 'other', requestId: 'r-forbidden' })));
    // Assess
    expect(answer).toEqual({ type: 'error', code: 'forbidden', message: expect.any(String), action: 'getUnacked', requestId: 'r-forbidden' });
  });

  it('echoes a well-formed requestId in the error frame of an invalid frame, which touches no service', async () => {
    // Prepare
    const fake = chat();
    // Act
    const answer = answerOf(await call(routesOf(fake), 'getUnacked', 'A1', frameOf('getUnacked', { limit: 1000, requestId: 'r-invalid' })));
    // Assess
    expect(answer).toMatchObject({ type: 'error', code: 'bad_request', action: 'getUnacked', requestId: 'r-invalid' });
    expect(touched(fake)).toEqual([]);
  });

  it.each([
    ['with a space', 'has space'],
    ['too long', 'r'.repeat(65)],
    ['empty', ''],
    ['a number', 42],
    ['an object', { id: 'x' }],
  ])('never echoes a malformed requestId (%s), and refuses the frame', async (_label, requestId) => {
    // Prepare
    const fake = chat();
    // Act
    const answer = answerOf(await call(routesOf(fake), 'getUnacked', 'A1', frameOf('getUnacked', { requestId })));
    // Assess
    expect(answer).toMatchObject({ type: 'error', code: 'bad_request', action: 'getUnacked' });
    expect(answer).not.toHaveProperty('requestId');
  });

  it('echoes it when the services cannot be built', async () => {
    // Prepare
    const handler = getUnackedRoute.create(async () => {
      throw new ServicesBuildError(new UnavailableError('redis down'));
    });
    // Act
    const answer = answerOf(await handler(messageEvent('A1', frameOf('getUnacked', { requestId: 'r-boot' }), 'getUnacked')));
    // Assess
    expect(answer).toMatchObject({ type: 'error', code: 'unavailable', requestId: 'r-boot' });
  });

  it('answers nothing to a typing frame that went out, requestId or not', async () => {
    // Prepare
    const fake = chat();
    // Act
    const result = await call(routesOf(fake), 'typing', 'A1', frameOf('typing', { requestId: 't-1' }));
    // Assess
    expect(result).toEqual({ statusCode: 200 });
    expect(fake.posted.map((p) => [p.connectionId, JSON.parse(p.data).type])).toEqual([['B1', 'typing']]);
    expect(JSON.parse(fake.posted[0]?.data ?? '{}')).not.toHaveProperty('requestId');
  });
});

describe('rate limits', () => {
  it.each(ACTIONS)('%s: a rate-limited frame answers rate_limited and writes, queries and posts nothing after the connection record', async (action) => {
    // Prepare
    const fake = chat();
    fake.services.limiter.admit.mockResolvedValue(false);
    const entriesBefore = fake.entries.length;
    // Act
    const answer = answerOf(await call(routesOf(fake), action, 'A1', frameOf(action, { requestId: 'rl-1' })));
    // Assess
    expect(answer).toEqual({ type: 'error', code: 'rate_limited', message: expect.any(String), action, requestId: 'rl-1' });
    expect(fake.services.limiter.admit).toHaveBeenCalledWith([
      { key: 'conn:A1', perSecond: 20, burst: 40 },
      { key: 'user:alice', perSecond: 40, burst: 80 },
    ]);
    expect(touched(fake)).toEqual(['registry.connection']);
    expect(fake.services.registry.connection).toHaveBeenCalledTimes(1);
    expect(fake.posted).toHaveLength(0);
    expect(fake.entries).toHaveLength(entriesBefore);
  });

  it('refuses an unregistered connection as forbidden before taking a token', async () => {
    // Prepare
    const fake = chat();
    // Act
    const answer = answerOf(await call(routesOf(fake), 'sendMessage', 'ZZ', frameOf('sendMessage')));
    // Assess
    expect(answer).toMatchObject({ type: 'error', code: 'forbidden' });
    expect(fake.services.limiter.admit).not.toHaveBeenCalled();
    expect(touched(fake)).toEqual(['registry.connection']);
  });

  it('takes the token before reading the subscription: an unsubscribed conversation still costs one', async () => {
    // Prepare
    const fake = chat();
    // Act
    const answer = answerOf(await call(routesOf(fake), 'getHistory', 'A1', frameOf('getHistory', { conversationId: 'other' })));
    // Assess
    expect(answer).toMatchObject({ code: 'forbidden' });
    expect(fake.services.limiter.admit).toHaveBeenCalledTimes(1);
    expect(fake.services.limiter.admit.mock.invocationCallOrder[0]).toBeLessThan(fake.services.registry.subscription.mock.invocationCallOrder[0] ?? 0);
  });

  it('shares the user\'s bucket across their connections: with a user burst of 3, the 4th frame across two connections is refused', async () => {
    // Prepare: the connection buckets are wide; the clock stands still, so nothing refills.
    const fake = chat({ ratePerSecond: 100, rateBurst: 100, userRatePerSecond: 1, userRateBurst: 3 });
    fake.connect('A2', 'alice', 'laptop');
    const routes = routesOf(fake, new MemoryRateLimiter({ clock: { now: () => 0 } }));
    // Act
    const codes: unknown[] = [];
    for (const connectionId of ['A1', 'A2', 'A1', 'A2']) {
      const answer = answerOf(await call(routes, 'getUnacked', connectionId, frameOf('getUnacked')));
      codes.push(answer.type === 'error' ? answer.code : answer.type);
    }
    const bob = answerOf(await call(routes, 'getUnacked', 'B1', frameOf('getUnacked')));
    // Assess
    expect(codes).toEqual(['unacked', 'unacked', 'unacked', 'rate_limited']);
    expect(bob.type).toBe('unacked');
  });

  it('limits each connection on its own: with a connection burst of 2, the 3rd frame of one connection is refused, not the other\'s', async () => {
    // Prepare
    const fake = chat({ ratePerSecond: 1, rateBurst: 2, userRatePerSecond: 100, userRateBurst: 100 });
    fake.connect('A2', 'alice', 'laptop');
    const routes = routesOf(fake, new MemoryRateLimiter({ clock: { now: () => 0 } }));
    // Act
    const codes: unknown[] = [];
    for (const connectionId of ['A1', 'A1', 'A1', 'A2']) {
      const answer = answerOf(await call(routes, 'getHistory', connectionId, frameOf('getHistory')));
      codes.push(answer.type === 'error' ? answer.code : answer.type);
    }
    // Assess
    expect(codes).toEqual(['history', 'history', 'rate_limited', 'history']);
  });
});

describe('membership on every frame', () => {
  it('refuses a subscribed user whom the roster no longer lists, and drops the subscription', async () => {
    // Prepare
    const fake = chat();
    fake.services.roster.isMember.mockImplementation(async (_conversationId, userId) => userId !== 'alice');
    // Act
    const answer = answerOf(await call(routesOf(fake), 'sendMessage', 'A1', frameOf('sendMessage', { requestId: 'gone-member' })));
    // Assess
    expect(answer).toMatchObject({ type: 'error', code: 'forbidden', requestId: 'gone-member' });
    expect(fake.services.messages.append).not.toHaveBeenCalled();
    expect(fake.connections.map((c) => c.connectionId)).toEqual(['B1']);
  });
});

describe('a connection whose token has expired', () => {
  it.each(ACTIONS)('%s: refused with token_expired (reconnect with a fresh token), touching nothing but the record', async (action) => {
    // Prepare: alice's token expired a moment ago (the fake clock's now); bob's is still good.
    const fake = chat();
    const now = fake.services.clock.now();
    const alice = fake.records.find((r) => r.connectionId === 'A1');
    if (alice === undefined) throw new RangeError('no record');
    alice.tokenExpiresAt = now;
    // Act
    const answer = answerOf(await call(routesOf(fake), action, 'A1', frameOf(action, { requestId: 'r-exp' })));
    // Assess
    expect(answer).toEqual({ type: 'error', code: 'token_expired', message: expect.stringMatching(/fresh token/), action, requestId: 'r-exp' });
    expect(touched(fake)).toEqual(['registry.connection']);
    expect(fake.posted).toEqual([]);
  });

  it('is served up to the moment its token expires', async () => {
    // Prepare
    const fake = chat();
    const alice = fake.records.find((r) => r.connectionId === 'A1');
    if (alice === undefined) throw new RangeError('no record');
    alice.tokenExpiresAt = fake.services.clock.now() + 1;
    // Act
    const answer = answerOf(await call(routesOf(fake), 'getUnacked', 'A1', frameOf('getUnacked')));
    // Assess
    expect(answer.type).toBe('unacked');
  });
});

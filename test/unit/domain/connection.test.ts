import { describe, expect, it } from 'vitest';
import {
  admitFrame,
  bindingFor,
  closeConnection,
  connectionFor,
  openConnection,
  subscribe,
  unsubscribe,
} from '../../../lambdas/domain/connection.js';
import { liveRecipients } from '../../../lambdas/domain/delivery.js';
import { getUnacked, pendingPage } from '../../../lambdas/domain/messaging.js';
import { BadRequestError, ForbiddenError, HandshakeError, RateLimitedError, UnavailableError } from '../../../lambdas/errors.js';
import type { Binding, ConnectionRecord, LogEntry, Membership } from '../../../lambdas/ports.js';
import type { SubscribeFrame } from '../../../lambdas/protocol.js';
import { fakeServices } from '../../support/fake-services.js';

type Fake = ReturnType<typeof fakeServices>;

const ENDPOINT = 'https://api.example/dev';
const NOW = 1_700_000_000_000;
/** The v2 URL: a connection of one device, subscribed to nothing yet. */
const bare = { token: 'good', clientId: 'phone' };
/** The v1 URL: subscribed to `conv` at once. */
const withConversation = { ...bare, conversationId: 'conv' };
const member = (conversationId: string, userId = 'alice', sinceSeq = 0): Membership => ({ conversationId, userId, sinceSeq });

/** An open connection of alice's phone with no subscription (as $connect without conversationId leaves it). */
function openRecord(fake: Fake, connectionId = 'c1', userId = 'alice', deviceId = 'phone'): ConnectionRecord {
  const record: ConnectionRecord = { connectionId, userId, deviceId, connectedAt: 0, expiresAt: 2_000_000_000 };
  fake.records.push(record);
  return record;
}

/** Seeds `count` messages from bob's phone in a conversation. */
function fromBob(fake: Fake, count: number, conversationId = 'conv'): LogEntry[] {
  return Array.from({ length: count }, (_, i) => fake.addMessage({ senderId: 'bob', senderDevice: 'phone', body: `bob ${i + 1}`, conversationId }));
}

/** Drops log entries as the history retention would (the log never renumbers: the seqs just go missing). */
function expire(fake: Fake, seqs: readonly number[], conversationId = 'conv'): void {
  for (let i = fake.entries.length - 1; i >= 0; i -= 1) {
    const entry = fake.entries[i];
    if (entry !== undefined && entry.conversationId === conversationId && seqs.includes(entry.seq)) fake.entries.splice(i, 1);
  }
}

const seqsOf = (messages: readonly { seq: number }[]) => messages.map((m) => m.seq);
const postedFrames = (fake: Fake, connectionId?: string) =>
  fake.posted.filter((p) => connectionId === undefined || p.connectionId === connectionId).map((p) => JSON.parse(p.data) as Record<string, unknown>);
const subscribeFrame = (conversationIds: string[], extra: Partial<SubscribeFrame> = {}): SubscribeFrame => ({ action: 'subscribe', conversationIds, ...extra });

describe('openConnection', () => {
  it('opens a connection without a conversationId: a record, no subscription, no position', async () => {
    // Prepare
    const fake = fakeServices({ maxConnectionsPerUser: 4 });
    // Act
    const record = await openConnection(fake.services, { connectionId: 'c1', query: bare, origin: undefined });
    // Assess
    const expected = { connectionId: 'c1', userId: 'alice', deviceId: 'phone', connectedAt: NOW, expiresAt: NOW / 1000 + 3600, tokenExpiresAt: NOW + 3_600_000 };
    expect(record).toEqual(expected);
    expect(fake.services.registry.open).toHaveBeenCalledWith(expected, 4);
    expect(fake.records).toEqual([expected]);
    expect(fake.services.registry.subscribe).not.toHaveBeenCalled();
    expect(fake.connections).toEqual([]);
    expect(fake.services.positions.register).not.toHaveBeenCalled();
    expect(fake.services.members.isMember).not.toHaveBeenCalled();
  });

  it('with a conversationId, opens, then registers the device position (from the seq cache), then subscribes', async () => {
    // Prepare
    const fake = fakeServices();
    fromBob(fake, 3);
    await fake.services.seqCache.raise('conv', 3);
    const order: string[] = [];
    fake.services.registry.open.mockImplementationOnce(async (record) => {
      order.push('open');
      fake.records.push(record);
      return true;
    });
    fake.services.positions.register.mockImplementationOnce(async (conversationId, device, startAfterSeq, now) => {
      order.push('position');
      return { conversationId, ...device, ackedThrough: startAfterSeq, acked: [], lastSeenAt: now, version: 1 };
    });
    fake.services.registry.subscribe.mockImplementationOnce(async () => void order.push('subscription'));
    // Act
    const record = await openConnection(fake.services, { connectionId: 'c1', query: withConversation, origin: undefined });
    // Assess
    expect(order).toEqual(['open', 'position', 'subscription']);
    expect(fake.services.members.isMember).toHaveBeenCalledWith('conv', 'alice');
    expect(fake.services.positions.register).toHaveBeenCalledWith('conv', { userId: 'alice', deviceId: 'phone' }, 3, NOW);
    expect(fake.services.registry.subscribe).toHaveBeenCalledWith(record, ['conv'], NOW);
    expect(fake.services.messages.lastSeq).not.toHaveBeenCalled();
    expect(record).toEqual({ connectionId: 'c1', userId: 'alice', deviceId: 'phone', connectedAt: NOW, expiresAt: NOW / 1000 + 3600, tokenExpiresAt: NOW + 3_600_000 });
  });

  it('with a conversationId, flags the new position for push when the device has a target', async () => {
    // Prepare
    const fake = fakeServices();
    fake.services.pushTargets.get.mockResolvedValue({
      userId: 'alice',
      deviceId: 'phone',
      target: { kind: 'fcm', token: 'f'.repeat(40) },
      registeredAt: 1,
    });
    // Act
    await openConnection(fake.services, { connectionId: 'c1', query: withConversation, origin: undefined });
    await openConnection(fake.services, { connectionId: 'c2', query: bare, origin: undefined });
    // Assess: once, for the conversation of the v1 URL; a bare connection registers no position to flag.
    expect(fake.services.pushTargets.get).toHaveBeenCalledTimes(1);
    expect(fake.services.pushMarks.setPushable.mock.calls).toEqual([['conv', { userId: 'alice', deviceId: 'phone' }, true]]);
  });

  it('starts the position at the log\'s last seq when the seq cache has none, and subscribes the connection', async () => {
    // Prepare
    const fake = fakeServices();
    fromBob(fake, 2);
    // Act
    await openConnection(fake.services, { connectionId: 'c1', query: withConversation, origin: undefined });
    // Assess
    expect(fake.positionOf({ userId: 'alice', deviceId: 'phone' })).toMatchObject({ ackedThrough: 2, acked: [] });
    expect(fake.connections).toEqual([expect.objectContaining({ connectionId: 'c1', userId: 'alice', deviceId: 'phone', conversationId: 'conv' })]);
  });

  it.each([
    ['an origin outside the allow list', { originAllowList: ['https://app.example'] }, { origin: 'https://evil.example' }, 403],
    ['a missing origin when an allow list is set', { originAllowList: ['https://app.example'] }, { origin: undefined }, 403],
    ['bad parameters', {}, { query: { token: 'good' } }, 400],
    ['a malformed conversationId', {}, { query: { ...withConversation, conversationId: 'a/b' } }, 400],
    ['a missing token', {}, { query: { clientId: 'phone' } }, 401],
    ['an invalid token', {}, { query: { ...withConversation, token: 'bad' } }, 401],
  ] as const)('refuses %s and writes nothing', async (_label, settings, request, status) => {
    // Prepare
    const fake = fakeServices(settings);
    // Act
    const error = await openConnection(fake.services, { connectionId: 'c1', query: withConversation, origin: undefined, ...request }).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(HandshakeError);
    expect(error).toMatchObject({ statusCode: status });
    expect(fake.services.registry.open).not.toHaveBeenCalled();
    expect(fake.services.positions.register).not.toHaveBeenCalled();
    expect(fake.services.registry.subscribe).not.toHaveBeenCalled();
  });

  it('accepts an allowed origin', async () => {
    // Prepare
    const fake = fakeServices({ originAllowList: ['https://app.example'] });
    // Act
    const record = await openConnection(fake.services, { connectionId: 'c1', query: withConversation, origin: 'https://app.example' });
    // Assess
    expect(record.connectionId).toBe('c1');
    expect(fake.records.map((r) => r.connectionId)).toEqual(['c1']);
    expect(fake.connections.map((c) => c.connectionId)).toEqual(['c1']);
  });

  it('refuses a non-member with 403 before opening anything', async () => {
    // Prepare
    const fake = fakeServices();
    fake.services.members.isMember.mockResolvedValueOnce(false);
    // Act
    const refused = openConnection(fake.services, { connectionId: 'c1', query: withConversation, origin: undefined });
    // Assess
    await expect(refused).rejects.toMatchObject({ statusCode: 403 });
    expect(fake.services.registry.open).not.toHaveBeenCalled();
    expect(fake.services.positions.register).not.toHaveBeenCalled();
    expect(fake.services.registry.subscribe).not.toHaveBeenCalled();
  });

  it('answers 429 when the user has as many open connections as allowed, and writes nothing else', async () => {
    // Prepare
    const fake = fakeServices({ maxConnectionsPerUser: 2 });
    await openConnection(fake.services, { connectionId: 'c1', query: withConversation, origin: undefined });
    await openConnection(fake.services, { connectionId: 'c2', query: bare, origin: undefined });
    fake.services.positions.register.mockClear();
    fake.services.registry.subscribe.mockClear();
    // Act
    const error = await openConnection(fake.services, { connectionId: 'c3', query: withConversation, origin: undefined }).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(HandshakeError);
    expect(error).toMatchObject({ statusCode: 429, message: expect.stringMatching(/at most 2/) });
    expect(fake.services.registry.open).toHaveBeenLastCalledWith(expect.objectContaining({ connectionId: 'c3' }), 2);
    expect(fake.records.map((r) => r.connectionId)).toEqual(['c1', 'c2']);
    expect(fake.connections.map((c) => c.connectionId)).toEqual(['c1']);
    expect(fake.services.positions.register).not.toHaveBeenCalled();
    expect(fake.services.registry.subscribe).not.toHaveBeenCalled();
    expect(fake.services.registry.remove).not.toHaveBeenCalled();
  });

  it('gives the slot back (registry.remove) and answers 503 when the subscription write fails', async () => {
    // Prepare
    const fake = fakeServices();
    fake.services.registry.subscribe.mockRejectedValueOnce(new UnavailableError('dynamodb down'));
    // Act
    const error = await openConnection(fake.services, { connectionId: 'c1', query: withConversation, origin: undefined }).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(HandshakeError);
    expect(error).toMatchObject({ statusCode: 503 });
    expect(fake.services.registry.remove).toHaveBeenCalledWith('c1');
    expect(fake.records).toEqual([]);
    expect(fake.connections).toEqual([]);
  });

  it('gives the slot back and answers 503 when the position cannot be registered, without subscribing', async () => {
    // Prepare
    const fake = fakeServices();
    fake.services.positions.register.mockRejectedValueOnce(new UnavailableError('dynamodb down'));
    // Act
    const unavailable = openConnection(fake.services, { connectionId: 'c1', query: withConversation, origin: undefined });
    // Assess
    await expect(unavailable).rejects.toMatchObject({ statusCode: 503 });
    expect(fake.services.registry.subscribe).not.toHaveBeenCalled();
    expect(fake.services.registry.remove).toHaveBeenCalledWith('c1');
    expect(fake.records).toEqual([]);
  });

  it('answers 503 with the original cause even when giving the slot back fails too', async () => {
    // Prepare
    const fake = fakeServices();
    const down = new UnavailableError('dynamodb down');
    fake.services.registry.subscribe.mockRejectedValueOnce(down);
    fake.services.registry.remove.mockRejectedValueOnce(new Error('still down'));
    // Act
    const error = await openConnection(fake.services, { connectionId: 'c1', query: withConversation, origin: undefined }).catch((e: unknown) => e);
    // Assess
    expect(error).toMatchObject({ statusCode: 503, cause: down });
  });

  it('answers 503 when the registry cannot open the connection, and registers no position', async () => {
    // Prepare
    const fake = fakeServices();
    fake.services.registry.open.mockRejectedValueOnce(new UnavailableError('dynamodb down'));
    // Act
    const unavailable = openConnection(fake.services, { connectionId: 'c1', query: withConversation, origin: undefined });
    // Assess
    await expect(unavailable).rejects.toMatchObject({ statusCode: 503 });
    expect(fake.services.positions.register).not.toHaveBeenCalled();
    expect(fake.services.registry.subscribe).not.toHaveBeenCalled();
  });
});

describe('closeConnection', () => {
  it('forgets the connection and every subscription of it', async () => {
    // Prepare
    const fake = fakeServices();
    fake.connect('c1', 'alice', 'phone', 'conv');
    fake.connect('c1', 'alice', 'phone', 'other');
    fake.connect('c2', 'bob', 'phone', 'conv');
    // Act
    await closeConnection(fake.services, 'c1');
    // Assess
    expect(fake.services.registry.remove).toHaveBeenCalledWith('c1');
    expect(fake.records.map((r) => r.connectionId)).toEqual(['c2']);
    expect(fake.connections.map((c) => c.connectionId)).toEqual(['c2']);
  });

  it('never throws', async () => {
    // Prepare
    const fake = fakeServices();
    fake.services.registry.remove.mockRejectedValueOnce(new Error('down'));
    // Act
    const closed = closeConnection(fake.services, 'c1');
    // Assess
    await expect(closed).resolves.toBeUndefined();
    expect(fake.logs.some((l) => l.level === 'warn')).toBe(true);
  });
});

describe('connectionFor', () => {
  it('answers the record of a registered connection and refuses any other', async () => {
    // Prepare
    const fake = fakeServices();
    const record = openRecord(fake);
    // Act / Assess
    await expect(connectionFor(fake.services, 'c1')).resolves.toEqual(record);
    await expect(connectionFor(fake.services, 'zz')).rejects.toBeInstanceOf(ForbiddenError);
  });
});

describe('admitFrame', () => {
  it('takes from the connection\'s bucket and its user\'s, each at the settings\' rates', async () => {
    // Prepare
    const fake = fakeServices({ ratePerSecond: 7, rateBurst: 9, userRatePerSecond: 11, userRateBurst: 13 });
    const record = openRecord(fake, 'c1', 'alice');
    // Act
    await admitFrame(fake.services, record);
    // Assess
    expect(fake.services.limiter.admit).toHaveBeenCalledTimes(1);
    expect(fake.services.limiter.admit).toHaveBeenCalledWith([
      { key: 'conn:c1', perSecond: 7, burst: 9 },
      { key: 'user:alice', perSecond: 11, burst: 13 },
    ]);
  });

  it('refuses with rate_limited when a bucket is empty', async () => {
    // Prepare
    const fake = fakeServices();
    const record = openRecord(fake);
    fake.services.limiter.admit.mockResolvedValueOnce(false);
    // Act
    const admitted = admitFrame(fake.services, record);
    // Assess
    await expect(admitted).rejects.toBeInstanceOf(RateLimitedError);
  });
});

describe('bindingFor', () => {
  it('binds a subscribed member\'s connection to the conversation', async () => {
    // Prepare
    const fake = fakeServices();
    fake.connect('c1', 'alice', 'phone', 'conv');
    const record = await connectionFor(fake.services, 'c1');
    // Act
    const binding = await bindingFor(fake.services, record, 'conv');
    // Assess
    expect(binding).toEqual({ connectionId: 'c1', userId: 'alice', deviceId: 'phone', conversationId: 'conv' });
    expect(fake.services.registry.subscription).toHaveBeenCalledWith('c1', 'conv');
    expect(fake.services.roster.isMember).toHaveBeenCalledWith('conv', 'alice');
  });

  it('refuses a connection that is no longer registered (its rows are gone)', async () => {
    // Prepare
    const fake = fakeServices();
    fake.connect('c1', 'alice', 'phone', 'conv');
    const record = await connectionFor(fake.services, 'c1');
    await fake.services.registry.remove('c1');
    // Act
    const bound = bindingFor(fake.services, record, 'conv');
    // Assess
    await expect(bound).rejects.toBeInstanceOf(ForbiddenError);
  });

  it('refuses a conversation the connection is not subscribed to, without asking the roster', async () => {
    // Prepare
    const fake = fakeServices();
    fake.connect('c1', 'alice', 'phone', 'conv');
    const record = await connectionFor(fake.services, 'c1');
    // Act
    const error = await bindingFor(fake.services, record, 'other').catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(ForbiddenError);
    expect((error as ForbiddenError).message).toMatch(/not subscribed/);
    expect(fake.services.roster.isMember).not.toHaveBeenCalled();
    expect(fake.services.registry.unsubscribe).not.toHaveBeenCalled();
  });

  it('refuses a subscribed user who is no longer a member, and drops that subscription only', async () => {
    // Prepare
    const fake = fakeServices();
    fake.connect('c1', 'alice', 'phone', 'conv');
    fake.connect('c1', 'alice', 'phone', 'other');
    const record = await connectionFor(fake.services, 'c1');
    fake.services.roster.isMember.mockResolvedValueOnce(false);
    // Act
    const error = await bindingFor(fake.services, record, 'conv').catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(ForbiddenError);
    expect((error as ForbiddenError).message).toMatch(/not a member/);
    expect(fake.services.registry.unsubscribe).toHaveBeenCalledWith('c1', ['conv']);
    expect(fake.connections.map((c) => c.conversationId)).toEqual(['other']);
  });

  it('still refuses a non-member when dropping the subscription fails, and logs it', async () => {
    // Prepare
    const fake = fakeServices();
    fake.connect('c1', 'alice', 'phone', 'conv');
    const record = await connectionFor(fake.services, 'c1');
    fake.services.roster.isMember.mockResolvedValueOnce(false);
    fake.services.registry.unsubscribe.mockRejectedValueOnce(new UnavailableError('down'));
    // Act
    const bound = bindingFor(fake.services, record, 'conv');
    // Assess
    await expect(bound).rejects.toBeInstanceOf(ForbiddenError);
    expect(fake.logs.some((l) => l.level === 'warn' && l.message.includes('non-member subscription'))).toBe(true);
  });
});

describe('subscribe', () => {
  it('answers each conversation ok (with its lastSeq) or forbidden, and subscribes only to the ok ones', async () => {
    // Prepare
    const fake = fakeServices();
    const record = openRecord(fake);
    fromBob(fake, 3, 'a');
    fake.services.members.get.mockImplementation(async (conversationId, userId) => (conversationId === 'b' ? undefined : member(conversationId, userId)));
    const order: string[] = [];
    fake.services.positions.register.mockImplementation(async (conversationId, device, startAfterSeq, now) => {
      order.push(`position ${conversationId}`);
      fake.setPosition({ ...device, conversationId }, startAfterSeq);
      return { conversationId, ...device, ackedThrough: startAfterSeq, acked: [], lastSeenAt: now, version: 1 };
    });
    fake.services.registry.subscribe.mockImplementationOnce(async (connection, conversationIds) => {
      order.push('subscribe');
      for (const conversationId of conversationIds) fake.connections.push({ ...connection, conversationId });
    });
    // Act
    const answer = await subscribe(fake.services, record, subscribeFrame(['a', 'b', 'c'], { requestId: 's-1' }), ENDPOINT);
    // Assess
    expect(answer).toEqual({
      type: 'subscribed',
      conversations: [
        { conversationId: 'a', status: 'ok', lastSeq: 3 },
        { conversationId: 'b', status: 'forbidden' },
        { conversationId: 'c', status: 'ok', lastSeq: 0 },
      ],
      requestId: 's-1',
    });
    expect(fake.services.members.getMany).toHaveBeenCalledWith('alice', ['a', 'b', 'c']);
    expect(fake.services.registry.subscribe).toHaveBeenCalledWith(record, ['a', 'c'], NOW);
    expect(order.slice(-1)).toEqual(['subscribe']);
    expect(order.slice(0, 2).sort()).toEqual(['position a', 'position c']);
    expect(fake.connections.map((c) => c.conversationId)).toEqual(['a', 'c']);
    expect(fake.positionOf({ userId: 'alice', deviceId: 'phone', conversationId: 'a' })).toMatchObject({ ackedThrough: 3 });
    expect(fake.positionOf({ userId: 'alice', deviceId: 'phone', conversationId: 'b' })).toBeUndefined();
    expect(fake.posted).toHaveLength(0);
  });

  it('flags the device\'s unflagged positions for push when it has a target, and answers even when that fails', async () => {
    // Prepare
    const fake = fakeServices();
    const record = openRecord(fake);
    fake.services.positions.register.mockImplementation(async (conversationId, device, startAfterSeq, now) => ({
      conversationId,
      ...device,
      ackedThrough: startAfterSeq,
      acked: [],
      lastSeenAt: now,
      version: 1,
      // `a` was flagged by an earlier registerPush; `b` and `c` are new to the device.
      ...(conversationId === 'a' ? { pushable: true as const } : {}),
    }));
    fake.services.pushTargets.get.mockResolvedValue({ userId: 'alice', deviceId: 'phone', target: { kind: 'fcm', token: 'f'.repeat(40) }, registeredAt: 1 });
    // Act
    const answer = await subscribe(fake.services, record, subscribeFrame(['a', 'b', 'c']), ENDPOINT);
    fake.services.pushMarks.setPushable.mockRejectedValue(new UnavailableError('positions down'));
    const again = await subscribe(fake.services, record, subscribeFrame(['d']), ENDPOINT);
    // Assess
    expect(answer).toMatchObject({ type: 'subscribed' });
    expect(again).toMatchObject({ type: 'subscribed', conversations: [{ conversationId: 'd', status: 'ok' }] });
    expect(fake.services.pushMarks.setPushable.mock.calls.map(([conversationId]) => conversationId).sort()).toEqual(['b', 'c', 'd']);
    expect(fake.logs.filter((l) => l.message === 'push flags not set')).toHaveLength(1);
  });

  it('refuses more subscriptions than the cap with bad_request and writes nothing', async () => {
    // Prepare
    const fake = fakeServices({ maxSubscriptionsPerConnection: 2 });
    const record = fake.connect('c1', 'alice', 'phone', 'conv');
    // Act
    const error = await subscribe(fake.services, record, subscribeFrame(['a', 'b']), ENDPOINT).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(BadRequestError);
    expect((error as BadRequestError).message).toMatch(/at most 2/);
    expect(fake.services.members.getMany).not.toHaveBeenCalled();
    expect(fake.services.positions.register).not.toHaveBeenCalled();
    expect(fake.services.registry.subscribe).not.toHaveBeenCalled();
    expect(fake.connections.map((c) => c.conversationId)).toEqual(['conv']);
  });

  it('counts only the new conversations against the cap: re-subscribing to one it has is fine', async () => {
    // Prepare
    const fake = fakeServices({ maxSubscriptionsPerConnection: 2 });
    const record = fake.connect('c1', 'alice', 'phone', 'conv');
    // Act
    const answer = await subscribe(fake.services, record, subscribeFrame(['conv', 'a']), ENDPOINT);
    // Assess
    expect(answer?.conversations.map((c) => c.status)).toEqual(['ok', 'ok']);
    expect(fake.connections.map((c) => c.conversationId).sort()).toEqual(['a', 'conv']);
  });

  it('resumes: posts subscribed first, then one unacked page per conversation with an afterSeq, and answers nothing', async () => {
    // Prepare
    const fake = fakeServices();
    const record = openRecord(fake);
    fake.setPosition({ userId: 'alice', deviceId: 'phone', conversationId: 'conv' }, 0);
    fake.setPosition({ userId: 'alice', deviceId: 'phone', conversationId: 'two' }, 0);
    fromBob(fake, 3, 'conv');
    fromBob(fake, 2, 'two');
    fromBob(fake, 2, 'quiet');
    // Act
    const answer = await subscribe(
      fake.services,
      record,
      subscribeFrame(['conv', 'two', 'quiet'], { requestId: 'resume-1', afterSeq: new Map([['conv', 1], ['two', 0]]) }),
      ENDPOINT,
    );
    // Assess
    expect(answer).toBeUndefined();
    const frames = postedFrames(fake, 'c1');
    expect(frames.map((f) => f.type)).toEqual(['subscribed', 'unacked', 'unacked']);
    expect(frames[0]).toEqual({
      type: 'subscribed',
      conversations: [
        { conversationId: 'conv', status: 'ok', lastSeq: 3 },
        { conversationId: 'two', status: 'ok', lastSeq: 2 },
        { conversationId: 'quiet', status: 'ok', lastSeq: 2 },
      ],
      requestId: 'resume-1',
    });
    expect(frames[1]).toMatchObject({ type: 'unacked', conversationId: 'conv', hasMore: false, requestId: 'resume-1' });
    expect(seqsOf((frames[1]?.messages ?? []) as { seq: number }[])).toEqual([2, 3]);
    expect(frames[2]).toMatchObject({ type: 'unacked', conversationId: 'two', hasMore: false, requestId: 'resume-1' });
    expect(seqsOf((frames[2]?.messages ?? []) as { seq: number }[])).toEqual([1, 2]);
    expect(fake.posted.every((p) => p.endpoint === ENDPOINT)).toBe(true);
  });

  it('answers subscribed plainly, posting nothing, when no afterSeq is given', async () => {
    // Prepare
    const fake = fakeServices();
    const record = openRecord(fake);
    fake.setPosition({ userId: 'alice', deviceId: 'phone', conversationId: 'conv' }, 0);
    fromBob(fake, 2);
    // Act
    const answer = await subscribe(fake.services, record, subscribeFrame(['conv'], { requestId: 'plain' }), ENDPOINT);
    // Assess
    expect(answer).toEqual({ type: 'subscribed', conversations: [{ conversationId: 'conv', status: 'ok', lastSeq: 2 }], requestId: 'plain' });
    expect(fake.posted).toHaveLength(0);
    expect(fake.services.messages.page).not.toHaveBeenCalled();
  });

  it('sends no page for an afterSeq of a forbidden conversation', async () => {
    // Prepare
    const fake = fakeServices();
    const record = openRecord(fake);
    fromBob(fake, 2, 'secret');
    fake.services.members.get.mockImplementation(async (conversationId, userId) => (conversationId === 'secret' ? undefined : member(conversationId, userId)));
    // Act
    const answer = await subscribe(fake.services, record, subscribeFrame(['conv', 'secret'], { afterSeq: new Map([['secret', 0]]) }), ENDPOINT);
    // Assess
    expect(answer?.conversations).toEqual([
      { conversationId: 'conv', status: 'ok', lastSeq: 0 },
      { conversationId: 'secret', status: 'forbidden' },
    ]);
    expect(fake.posted).toHaveLength(0);
    expect(fake.services.messages.page).not.toHaveBeenCalled();
  });

  it('answers subscribed itself, and sends no page, when posting it fails', async () => {
    // Prepare
    const fake = fakeServices();
    const record = openRecord(fake);
    fake.setPosition({ userId: 'alice', deviceId: 'phone', conversationId: 'conv' }, 0);
    fromBob(fake, 2);
    fake.outcomes.set('c1', 'failed');
    // Act
    const answer = await subscribe(fake.services, record, subscribeFrame(['conv'], { requestId: 'r', afterSeq: new Map([['conv', 0]]) }), ENDPOINT);
    // Assess
    expect(answer).toEqual({ type: 'subscribed', conversations: [{ conversationId: 'conv', status: 'ok', lastSeq: 2 }], requestId: 'r' });
    expect(postedFrames(fake).map((f) => f.type)).toEqual(['subscribed']);
  });
});

describe('unsubscribe', () => {
  it('drops the subscriptions and answers each conversation ok, with the requestId', async () => {
    // Prepare
    const fake = fakeServices();
    const record = fake.connect('c1', 'alice', 'phone', 'conv');
    fake.connect('c1', 'alice', 'phone', 'keep');
    // Act
    const answer = await unsubscribe(fake.services, record, { action: 'unsubscribe', conversationIds: ['conv', 'never'], requestId: 'u-1' });
    // Assess
    expect(answer).toEqual({
      type: 'unsubscribed',
      conversations: [
        { conversationId: 'conv', status: 'ok' },
        { conversationId: 'never', status: 'ok' },
      ],
      requestId: 'u-1',
    });
    expect(fake.services.registry.unsubscribe).toHaveBeenCalledWith('c1', ['conv', 'never']);
    expect(fake.connections.map((c) => c.conversationId)).toEqual(['keep']);
  });

  it('carries no requestId when the frame had none', async () => {
    // Prepare
    const fake = fakeServices();
    const record = fake.connect('c1', 'alice', 'phone', 'conv');
    // Act
    const answer = await unsubscribe(fake.services, record, { action: 'unsubscribe', conversationIds: ['conv'] });
    // Assess
    expect(answer).toEqual({ type: 'unsubscribed', conversations: [{ conversationId: 'conv', status: 'ok' }] });
  });
});

describe('liveRecipients', () => {
  it('keeps the members\' subscriptions, drops a non-member\'s and tells that connection', async () => {
    // Prepare
    const fake = fakeServices();
    const subscriptions = [fake.connect('b', 'bob', 'phone'), fake.connect('c', 'carol', 'phone'), fake.connect('d', 'dave', 'phone')];
    fake.connect('c', 'carol', 'phone', 'other');
    fake.services.roster.membersAmong.mockImplementationOnce(async (_conversationId, userIds) => new Set(userIds.filter((u) => u !== 'carol')));
    // Act
    const recipients = await liveRecipients(fake.services, 'conv', subscriptions, ENDPOINT);
    // Assess
    expect(recipients.map((s) => s.connectionId)).toEqual(['b', 'd']);
    expect(fake.services.roster.membersAmong).toHaveBeenCalledWith('conv', ['bob', 'carol', 'dave']);
    expect(fake.services.registry.unsubscribe).toHaveBeenCalledWith('c', ['conv']);
    expect(fake.connections.map((s) => `${s.connectionId} ${s.conversationId}`)).toEqual(['b conv', 'd conv', 'c other']);
    expect(postedFrames(fake)).toEqual([{ type: 'unsubscribed', conversations: [{ conversationId: 'conv', status: 'forbidden' }] }]);
    expect(fake.posted.map((p) => p.connectionId)).toEqual(['c']);
    expect(fake.logs.some((l) => l.level === 'info' && l.fields?.connectionId === 'c')).toBe(true);
  });

  it('prunes a non-member\'s connection that turns out to be gone', async () => {
    // Prepare
    const fake = fakeServices();
    const subscriptions = [fake.connect('c', 'carol', 'phone')];
    fake.outcomes.set('c', 'gone');
    fake.services.roster.membersAmong.mockResolvedValueOnce(new Set());
    // Act
    const recipients = await liveRecipients(fake.services, 'conv', subscriptions, ENDPOINT);
    // Assess
    expect(recipients).toEqual([]);
    expect(fake.services.registry.remove).toHaveBeenCalledWith('c');
    expect(fake.records).toEqual([]);
  });

  it('asks the roster nothing for no subscriptions', async () => {
    // Prepare
    const fake = fakeServices();
    // Act
    const recipients = await liveRecipients(fake.services, 'conv', [], ENDPOINT);
    // Assess
    expect(recipients).toEqual([]);
    expect(fake.services.roster.membersAmong).not.toHaveBeenCalled();
  });

  it('still answers the members when dropping a non-member fails, and logs it', async () => {
    // Prepare
    const fake = fakeServices();
    const subscriptions = [fake.connect('b', 'bob', 'phone'), fake.connect('c', 'carol', 'phone')];
    fake.services.roster.membersAmong.mockResolvedValueOnce(new Set(['bob']));
    fake.services.registry.unsubscribe.mockRejectedValueOnce(new UnavailableError('down'));
    // Act
    const recipients = await liveRecipients(fake.services, 'conv', subscriptions, ENDPOINT);
    // Assess
    expect(recipients.map((s) => s.connectionId)).toEqual(['b']);
    expect(fake.logs.some((l) => l.level === 'warn' && l.fields?.connectionId === 'c')).toBe(true);
  });
});

describe('pendingPage', () => {
  const binding = (fake: Fake): Binding => fake.connect('a', 'alice', 'phone');

  it('reports a gap when seqs above the cursor are gone from the log', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = binding(fake);
    fromBob(fake, 5);
    expire(fake, [1, 2]);
    // Act
    const page = await pendingPage(fake.services, alice, member('conv'), { limit: 50 });
    // Assess
    expect(page).toMatchObject({ type: 'unacked', conversationId: 'conv', hasMore: false, gap: { fromSeq: 1, toSeq: 2 } });
    expect(seqsOf(page.messages)).toEqual([3, 4, 5]);
  });

  it('starts the gap above afterSeq', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = binding(fake);
    fromBob(fake, 5);
    expire(fake, [1, 2, 3]);
    // Act
    const page = await pendingPage(fake.services, alice, member('conv'), { limit: 50, afterSeq: 1 });
    // Assess
    expect(page.gap).toEqual({ fromSeq: 2, toSeq: 3 });
    expect(seqsOf(page.messages)).toEqual([4, 5]);
  });

  it('reports the whole range up to the last seq when everything pending is gone', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = binding(fake);
    fromBob(fake, 4);
    expire(fake, [1, 2, 3, 4]);
    // The log keeps its last seq when entries expire (the fake derives it from the entries).
    fake.services.messages.lastSeq.mockResolvedValue(4);
    // Act
    const page = await pendingPage(fake.services, alice, member('conv'), { limit: 50 });
    // Assess
    expect(page).toMatchObject({ messages: [], hasMore: false, gap: { fromSeq: 1, toSeq: 4 } });
  });

  it('reports no gap when the log holds every seq above the cursor', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = binding(fake);
    fromBob(fake, 3);
    // Act
    const page = await pendingPage(fake.services, alice, member('conv'), { limit: 50 });
    // Assess
    expect(page).not.toHaveProperty('gap');
    expect(seqsOf(page.messages)).toEqual([1, 2, 3]);
  });

  it.each([
    ['acked through by the device', { ackedThrough: 4, afterSeq: undefined, sinceSeq: 0 }],
    ['at or below afterSeq', { ackedThrough: 0, afterSeq: 4, sinceSeq: 0 }],
    ['from before the member\'s re-add', { ackedThrough: 0, afterSeq: undefined, sinceSeq: 4 }],
  ])('reports no gap for expired seqs %s', async (_label, { ackedThrough, afterSeq, sinceSeq }) => {
    // Prepare
    const fake = fakeServices();
    const alice = binding(fake);
    fromBob(fake, 6);
    fake.setPosition(alice, ackedThrough);
    expire(fake, [1, 2, 3, 4]);
    // Act
    const page = await pendingPage(fake.services, alice, member('conv', 'alice', sinceSeq), { limit: 50, ...(afterSeq === undefined ? {} : { afterSeq }) });
    // Assess
    expect(page).not.toHaveProperty('gap');
    expect(seqsOf(page.messages)).toEqual([5, 6]);
  });

  it('reaches getUnacked, which adds the requestId', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = binding(fake);
    fromBob(fake, 3);
    expire(fake, [1]);
    // Act
    const answer = await getUnacked(fake.services, alice, { action: 'getUnacked', conversationId: 'conv', limit: 50, requestId: 'g-1' });
    // Assess
    expect(answer).toMatchObject({ type: 'unacked', gap: { fromSeq: 1, toSeq: 1 }, requestId: 'g-1' });
    expect(seqsOf(answer.messages)).toEqual([2, 3]);
  });
});

import { describe, expect, it } from 'vitest';
import { bindingFor, closeConnection, openConnection } from '../../../lambdas/domain/connection.js';
import { ack, getUnacked, sendMessage, typing } from '../../../lambdas/domain/messaging.js';
import { ForbiddenError, HandshakeError, RateLimitedError, UnavailableError } from '../../../lambdas/errors.js';
import { fakeServices } from '../../support/fake-services.js';

const ENDPOINT = 'https://api.example/dev';
const query = { token: 'good', conversationId: 'conv', clientId: 'phone' };

describe('openConnection', () => {
  it('registers the device before the connection', async () => {
    const fake = fakeServices();
    const order: string[] = [];
    fake.services.store.registerDevice.mockImplementationOnce(async () => void order.push('device'));
    fake.services.registry.register.mockImplementationOnce(async () => void order.push('connection'));
    const record = await openConnection(fake.services, { connectionId: 'c1', query, origin: undefined });
    expect(order).toEqual(['device', 'connection']);
    expect(record).toMatchObject({ userId: 'alice', deviceId: 'phone', conversationId: 'conv', expiresAt: 1_700_000_000 + 3600 });
  });

  it.each([
    ['an origin outside the allow list', { originAllowList: ['https://app.example'] }, { origin: 'https://evil.example' }, 403],
    ['a missing origin when an allow list is set', { originAllowList: ['https://app.example'] }, { origin: undefined }, 403],
    ['bad parameters', {}, { query: { token: 'good' } }, 400],
    ['an invalid token', {}, { query: { ...query, token: 'bad' } }, 401],
  ] as const)('refuses %s and writes nothing', async (_label, settings, request, status) => {
    const fake = fakeServices(settings);
    const error = await openConnection(fake.services, { connectionId: 'c1', query, origin: undefined, ...request }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HandshakeError);
    expect((error as HandshakeError).statusCode).toBe(status);
    expect(fake.services.registry.register).not.toHaveBeenCalled();
    expect(fake.services.store.registerDevice).not.toHaveBeenCalled();
  });

  it('accepts an allowed origin', async () => {
    const fake = fakeServices({ originAllowList: ['https://app.example'] });
    await expect(openConnection(fake.services, { connectionId: 'c1', query, origin: 'https://app.example' })).resolves.toBeDefined();
  });

  it('refuses a non-member with 403, and answers 503 when a dependency is unavailable', async () => {
    const fake = fakeServices();
    fake.services.members.isMember.mockResolvedValueOnce(false);
    await expect(openConnection(fake.services, { connectionId: 'c1', query, origin: undefined })).rejects.toMatchObject({ statusCode: 403 });
    fake.services.store.registerDevice.mockRejectedValueOnce(new UnavailableError('redis down'));
    await expect(openConnection(fake.services, { connectionId: 'c1', query, origin: undefined })).rejects.toMatchObject({ statusCode: 503 });
    expect(fake.services.registry.register).not.toHaveBeenCalled();
  });

  it('closeConnection never throws', async () => {
    const fake = fakeServices();
    fake.services.registry.remove.mockRejectedValueOnce(new Error('down'));
    await expect(closeConnection(fake.services, 'c1')).resolves.toBeUndefined();
  });

  it('bindingFor refuses unknown connections and other conversations', async () => {
    const fake = fakeServices();
    fake.connect('c1', 'alice', 'phone');
    await expect(bindingFor(fake.services, 'c1', 'conv')).resolves.toMatchObject({ userId: 'alice' });
    await expect(bindingFor(fake.services, 'c1', 'other')).rejects.toBeInstanceOf(ForbiddenError);
    await expect(bindingFor(fake.services, 'zz', 'conv')).rejects.toBeInstanceOf(ForbiddenError);
  });
});

describe('typing', () => {
  it('still works when the rate limiter is unavailable (fails open, logs it)', async () => {
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    fake.connect('b', 'bob', 'phone');
    fake.services.store.admit.mockRejectedValueOnce(new UnavailableError('redis down'));
    await typing(fake.services, alice, { action: 'typing', conversationId: 'conv', state: 'start' }, ENDPOINT);
    expect(fake.posted.map((p) => p.connectionId)).toEqual(['b']);
    expect(fake.logs.some((l) => l.level === 'warn')).toBe(true);
  });

  it('is refused when rate limited and posts nothing', async () => {
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    fake.connect('b', 'bob', 'phone');
    fake.services.store.admit.mockResolvedValueOnce(false);
    await expect(typing(fake.services, alice, { action: 'typing', conversationId: 'conv', state: 'start' }, ENDPOINT)).rejects.toBeInstanceOf(RateLimitedError);
    expect(fake.posted).toHaveLength(0);
  });
});

describe('sendMessage', () => {
  const frame = { action: 'sendMessage' as const, conversationId: 'conv', clientMessageId: 'cm', body: 'hello' };

  it('stores a sealed body, not the plaintext', async () => {
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    await sendMessage(fake.services, alice, frame, ENDPOINT);
    const stored = fake.services.store.append.mock.calls[0]?.[0];
    expect(stored?.sealed).not.toContain('hello');
    expect(fake.services.sealer.open('conv', stored?.messageId ?? '', stored?.sealed ?? '')).toBe('hello');
  });

  it('delivers to the sender\'s other devices and other users, never to the sending device', async () => {
    const fake = fakeServices();
    const alice = fake.connect('a1', 'alice', 'phone');
    fake.connect('a1-again', 'alice', 'phone');
    fake.connect('a2', 'alice', 'laptop');
    fake.connect('b1', 'bob', 'phone');
    await sendMessage(fake.services, alice, frame, ENDPOINT);
    expect(fake.posted.map((p) => p.connectionId).sort()).toEqual(['a2', 'b1']);
  });

  it('answers no sent when the store is unavailable or the sender is rate limited', async () => {
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    fake.connect('b', 'bob', 'phone');
    fake.services.store.append.mockRejectedValueOnce(new UnavailableError('redis down'));
    await expect(sendMessage(fake.services, alice, frame, ENDPOINT)).rejects.toBeInstanceOf(UnavailableError);
    fake.services.store.append.mockResolvedValueOnce({ status: 'rate_limited' });
    await expect(sendMessage(fake.services, alice, frame, ENDPOINT)).rejects.toBeInstanceOf(RateLimitedError);
    expect(fake.posted).toHaveLength(0);
  });

  it('answers sent when live delivery fails after storing', async () => {
    const fake = fakeServices({ fanoutThreshold: 0 });
    const alice = fake.connect('a', 'alice', 'phone');
    fake.connect('b', 'bob', 'phone');
    fake.services.fanout.enqueue.mockRejectedValueOnce(new UnavailableError('sqs down'));
    await expect(sendMessage(fake.services, alice, frame, ENDPOINT)).resolves.toMatchObject({ type: 'sent', seq: 1, duplicate: false });
  });
});

describe('ack and getUnacked', () => {
  it('ack is refused when rate limited', async () => {
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    fake.services.store.ack.mockResolvedValueOnce('rate_limited');
    await expect(ack(fake.services, alice, { action: 'ack', conversationId: 'conv', messageIds: ['m'] })).rejects.toBeInstanceOf(RateLimitedError);
  });

  it('getUnacked asks the store for this device only and opens each body', async () => {
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    const sealed = fake.services.sealer.seal('conv', 'm1', 'secret');
    fake.services.store.pending.mockResolvedValueOnce({
      status: 'ok',
      hasMore: false,
      messages: [{ conversationId: 'conv', messageId: 'm1', seq: 3, senderId: 'bob', senderDevice: 'x', clientMessageId: 'c', sentAt: 1, sealed }],
    });
    const answer = await getUnacked(fake.services, alice, { action: 'getUnacked', conversationId: 'conv', limit: 50, afterSeq: 2 });
    expect(fake.services.store.pending.mock.calls[0]?.slice(0, 3)).toEqual([
      'conv',
      { userId: 'alice', deviceId: 'phone' },
      expect.objectContaining({ afterSeq: 2, limit: 50 }),
    ]);
    expect(answer.messages).toEqual([{ conversationId: 'conv', messageId: 'm1', seq: 3, senderId: 'bob', clientMessageId: 'c', body: 'secret', sentAt: 1 }]);
  });
});

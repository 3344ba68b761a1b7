import { describe, expect, it, vi } from 'vitest';
import { MemoryPushSender } from '../../../lambdas/adapters/memory-push-sender.js';
import { sendMessage } from '../../../lambdas/domain/messaging.js';
import { flagForPush, notify, registerPush, webPushEndpointSchema } from '../../../lambdas/domain/push.js';
import { BadRequestError, PushFailedError } from '../../../lambdas/errors.js';
import type { ConnectionRecord, DevicePosition, NotifyJob, PushCandidate, PushSender, StoredPushTarget } from '../../../lambdas/ports.js';
import { fakeServices } from '../../support/fake-services.js';

const JOB: NotifyJob = { conversationId: 'conv', seq: 5, messageId: 'm5', senderId: 'alice', senderDevice: 'phone' };

const position = (userId: string, deviceId: string, ackedThrough = 0, acked: number[] = []): PushCandidate => ({
  conversationId: 'conv',
  userId,
  deviceId,
  ackedThrough,
  acked,
  lastSeenAt: 0,
  version: 1,
});
const webTarget = (userId: string, deviceId: string): StoredPushTarget => ({
  userId,
  deviceId,
  target: { kind: 'webPush', subscription: { endpoint: `https://fcm.googleapis.com/fcm/send/${userId}-${deviceId}`, keys: { p256dh: 'p', auth: 'a' } } },
  registeredAt: 1,
});

/** The notifier's services over fakes: positions, live subscriptions and targets the test states. */
function notifier(candidates: PushCandidate[], targets: StoredPushTarget[], live: { userId: string; deviceId: string }[] = []) {
  const fake = fakeServices();
  const marked = new Set<string>();
  const pusher = new MemoryPushSender();
  fake.services.pushMarks.candidates.mockImplementation(async () =>
    candidates.map((p) => (marked.has(`${p.userId}/${p.deviceId}`) ? { ...p, pushedAt: 1 } : p)),
  );
  fake.services.pushMarks.mark.mockImplementation(async (p: DevicePosition) => {
    const key = `${p.userId}/${p.deviceId}`;
    if (marked.has(key)) return false;
    marked.add(key);
    return true;
  });
  fake.services.pushMarks.unmark.mockImplementation(async (p: DevicePosition) => void marked.delete(`${p.userId}/${p.deviceId}`));
  fake.services.pushTargets.ofUser.mockImplementation(async (userId: string) => targets.filter((t) => t.userId === userId));
  for (const [i, device] of live.entries()) fake.connect(`live-${i}`, device.userId, device.deviceId);
  const services: Omit<typeof fake.services, 'pusher'> & { pusher: PushSender } = { ...fake.services, pusher };
  return { fake, services, pusher, marked };
}

describe('notify (the notifier decision)', () => {
  it('pushes offline devices with the message pending and a target, once, with ids and a count only', async () => {
    const { services, pusher } = notifier(
      [position('bob', 'phone', 2), position('bob', 'laptop'), position('carol', 'phone', 5), position('dave', 'phone', 3, [5]), position('erin', 'phone')],
      [webTarget('bob', 'phone'), webTarget('bob', 'laptop'), webTarget('carol', 'phone'), webTarget('dave', 'phone')],
      [{ userId: 'bob', deviceId: 'laptop' }],
    );
    const report = await notify(services, JOB);
    // bob's laptop is online, carol and dave have seq 5 acked, erin has no target (any more): her flag goes.
    expect(pusher.sent.map((s) => `${s.stored.userId}/${s.stored.deviceId}`)).toEqual(['bob/phone']);
    expect(pusher.sent[0]?.notification).toEqual({ conversationId: 'conv', senderId: 'alice', seq: 5, count: 3 });
    expect(report).toEqual({ candidates: 3, targeted: 1, pushed: 1, gone: 0, unflagged: 1 });
    expect(services.pushMarks.setPushable.mock.calls).toEqual([['conv', position('erin', 'phone'), false]]);
    // Liveness is asked per user with a candidate device, never for the whole conversation.
    expect(services.registry.devicesSubscribed.mock.calls.map(([userId]) => userId).sort()).toEqual(['bob', 'erin']);
    expect(services.registry.listByConversation).not.toHaveBeenCalled();
    // The marker is set for the message's seq (the adapter checks it is still pending on the item).
    expect(services.pushMarks.mark.mock.calls.map(([p, seq]) => [p.userId, seq])).toEqual([['bob', 5]]);
    // The next message of the same offline period: bob is not pushed again (carol and dave now have one pending).
    await notify(services, { ...JOB, seq: 6, messageId: 'm6' });
    expect(pusher.sent.map((s) => `${s.stored.userId}/${s.stored.deviceId}`)).toEqual(['bob/phone', 'carol/phone', 'dave/phone']);
  });

  it('never pushes any of the sender’s devices, nor devices already pushed this offline period', async () => {
    const { services, pusher } = notifier(
      [position('alice', 'phone'), position('alice', 'tablet'), { ...position('bob', 'phone'), pushedAt: 1 }],
      [webTarget('alice', 'phone'), webTarget('alice', 'tablet'), webTarget('bob', 'phone')],
    );
    expect(await notify(services, JOB)).toEqual({ candidates: 0, targeted: 0, pushed: 0, gone: 0, unflagged: 0 });
    expect(pusher.sent).toEqual([]);
    expect(services.registry.devicesSubscribed).not.toHaveBeenCalled();
    expect(services.pushTargets.ofUser).not.toHaveBeenCalled();
  });

  it('removes a gone target, and on a failure clears its marker and throws after pushing the others', async () => {
    const gone = webTarget('bob', 'phone');
    const { services, pusher, marked } = notifier([position('bob', 'phone'), position('carol', 'phone'), position('dave', 'phone')], [gone, webTarget('carol', 'phone'), webTarget('dave', 'phone')]);
    pusher.expire(gone);
    const send = pusher.send.bind(pusher);
    services.pusher = {
      send: vi.fn(async (stored: StoredPushTarget, n) => {
        if (stored.userId === 'carol') throw new PushFailedError('down');
        return send(stored, n);
      }),
    };
    await expect(notify(services, JOB)).rejects.toBeInstanceOf(PushFailedError);
    expect(services.pushTargets.removeIf).toHaveBeenCalledWith(gone);
    expect(pusher.sent.map((s) => s.stored.userId)).toEqual(['dave']);
    expect([...marked].sort()).toEqual(['bob/phone', 'dave/phone']);
    expect(services.metrics.totals()).toMatchObject({ pushes: 1, push_gone: 1, push_failed: 1 });
  });

  it('remembers the SNS endpoint made on a first push', async () => {
    const apns: StoredPushTarget = { userId: 'bob', deviceId: 'phone', target: { kind: 'apns', token: 'ab'.repeat(32) }, registeredAt: 1 };
    const { services } = notifier([position('bob', 'phone')], [apns]);
    await notify(services, JOB);
    expect(services.pushTargets.setEndpointArn).toHaveBeenCalledWith(apns, expect.stringMatching(/^arn:aws:sns:/));
  });

  it('adds a preview only with the flag, and only for Web Push', async () => {
    const fake = fakeServices();
    const entry = fake.addMessage({ senderId: 'alice', senderDevice: 'phone', body: 'x'.repeat(150) });
    const apns: StoredPushTarget = { userId: 'carol', deviceId: 'phone', target: { kind: 'apns', token: 'ab'.repeat(32) }, registeredAt: 1 };
    const { services, pusher } = notifier([position('bob', 'phone'), position('carol', 'phone')], [webTarget('bob', 'phone'), apns]);
    const job = { ...JOB, seq: entry.seq, messageId: entry.messageId };
    await notify({ ...services, messages: fake.services.messages, push: { preview: true, concurrency: 1 } }, job);
    expect(pusher.sent.find((s) => s.stored.userId === 'bob')?.notification.preview).toBe('x'.repeat(100));
    expect(pusher.sent.find((s) => s.stored.userId === 'carol')?.notification.preview).toBeUndefined();
  });
});

describe('registerPush', () => {
  const connection: ConnectionRecord = { connectionId: 'c', userId: 'bob', deviceId: 'phone', connectedAt: 0, expiresAt: 0 };
  const settings = { maxTargetsPerUser: 10, webAllowedHosts: ['fcm.googleapis.com', '*.push.apple.com'], allowLoopback: false, apns: false, fcm: true };
  const keys = { p256dh: 'p'.repeat(87), auth: 'a'.repeat(22) };

  it('allows https endpoints of the allowed push services only (loopback only where allowed)', () => {
    const allowed = webPushEndpointSchema(settings);
    expect(allowed.safeParse('https://fcm.googleapis.com/fcm/send/x').success).toBe(true);
    expect(allowed.safeParse('https://web.push.apple.com/x').success).toBe(true);
    for (const endpoint of ['https://push.apple.com.evil.example/x', 'https://evilpush.apple.com/x', 'http://fcm.googleapis.com/x', 'https://user:pw@fcm.googleapis.com/x', 'http://127.0.0.1:9/push/1']) {
      expect(allowed.safeParse(endpoint).success, endpoint).toBe(false);
    }
    expect(webPushEndpointSchema({ ...settings, allowLoopback: true }).safeParse('http://127.0.0.1:9/push/1').success).toBe(true);
  });

  it('stores the device’s target, and refuses a platform the stage does not have', async () => {
    const fake = fakeServices();
    const services = { ...fake.services, push: settings };
    expect(await registerPush(services, connection, { action: 'registerPush', fcm: 'f'.repeat(40), requestId: 'r' })).toEqual({ type: 'pushRegistered', kind: 'fcm', requestId: 'r' });
    expect(fake.services.pushTargets.put).toHaveBeenCalledWith({ userId: 'bob', deviceId: 'phone', target: { kind: 'fcm', token: 'f'.repeat(40) }, registeredAt: 1_700_000_000_000 }, 10);
    await expect(registerPush(services, connection, { action: 'registerPush', apns: 'ab'.repeat(32) })).rejects.toBeInstanceOf(BadRequestError);
    await expect(registerPush(services, connection, { action: 'registerPush', webPush: { endpoint: 'https://evil.example/x', keys } })).rejects.toBeInstanceOf(BadRequestError);
    expect(fake.logs.map((l) => JSON.stringify(l)).join('')).not.toContain('f'.repeat(40));
  });

  it('flags the device’s positions in every conversation of its user, page after page', async () => {
    const fake = fakeServices();
    const conversations = Array.from({ length: 230 }, (_, i) => `c${String(i).padStart(3, '0')}`);
    for (const conversationId of conversations) fake.join(conversationId, 'bob');
    fake.join('elsewhere', 'carol');
    await registerPush({ ...fake.services, push: settings }, connection, { action: 'registerPush', fcm: 'f'.repeat(40) });
    const calls = fake.services.pushMarks.setPushable.mock.calls;
    expect(calls.map(([conversationId]) => conversationId).sort()).toEqual(conversations);
    expect(calls.every(([, device, on]) => device.userId === 'bob' && device.deviceId === 'phone' && on)).toBe(true);
    // The target is stored before any flag: a racing subscribe either sees it or made its position first.
    const putAt = fake.services.pushTargets.put.mock.invocationCallOrder[0] ?? Infinity;
    expect(Math.min(...fake.services.pushMarks.setPushable.mock.invocationCallOrder)).toBeGreaterThan(putAt);
  });
});

describe('flagForPush (subscribe and $connect)', () => {
  const device = { userId: 'bob', deviceId: 'phone' };
  const at = (conversationId: string, pushable: boolean): DevicePosition => ({
    conversationId,
    ...device,
    ackedThrough: 0,
    acked: [],
    lastSeenAt: 0,
    version: 1,
    ...(pushable ? { pushable: true as const } : {}),
  });

  it('flags the new positions of a device with a target, and reads nothing when all are flagged', async () => {
    const fake = fakeServices();
    fake.services.pushTargets.get.mockResolvedValue(webTarget('bob', 'phone'));
    await flagForPush(fake.services, device, [at('a', true), at('b', false), at('c', false)]);
    expect(fake.services.pushMarks.setPushable.mock.calls.map(([c, , on]) => [c, on])).toEqual([['b', true], ['c', true]]);
    fake.services.pushTargets.get.mockClear();
    await flagForPush(fake.services, device, [at('a', true)]);
    expect(fake.services.pushTargets.get).not.toHaveBeenCalled();
  });

  it('flags nothing for a device without a target, and never fails its caller', async () => {
    const fake = fakeServices();
    await flagForPush(fake.services, device, [at('a', false)]);
    expect(fake.services.pushTargets.get).toHaveBeenCalledWith('bob', 'phone');
    expect(fake.services.pushMarks.setPushable).not.toHaveBeenCalled();
    fake.services.pushTargets.get.mockRejectedValue(new Error('dynamo down'));
    await expect(flagForPush(fake.services, device, [at('a', false)])).resolves.toBeUndefined();
    expect(fake.logs.some((l) => l.message === 'push flags not set')).toBe(true);
  });
});

describe('sendMessage and the notify queue', () => {
  it('enqueues one job of ids per stored message, none for a duplicate', async () => {
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    const frame = { action: 'sendMessage' as const, conversationId: 'conv', clientMessageId: 'cm', body: 'hello' };
    await sendMessage(fake.services, alice, frame, 'https://api.example/dev');
    await sendMessage(fake.services, alice, frame, 'https://api.example/dev');
    const [entry] = fake.entries;
    expect(fake.services.notify.enqueue.mock.calls).toEqual([[{ conversationId: 'conv', seq: 1, messageId: entry?.messageId, senderId: 'alice', senderDevice: 'phone' }]]);
  });

  it('answers `sent` when the notify queue fails (counted, logged)', async () => {
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    fake.services.notify.enqueue.mockRejectedValue(new Error('queue down'));
    await sendMessage(fake.services, alice, { action: 'sendMessage', conversationId: 'conv', clientMessageId: 'cm', body: 'hello' }, 'https://api.example/dev');
    expect(fake.posted.map((p) => JSON.parse(p.data) as { type: string })).toContainEqual(expect.objectContaining({ type: 'sent' }));
    expect(fake.services.metrics.totals()).toMatchObject({ notify_enqueue_failed: 1 });
    expect(fake.logs.some((l) => l.message.startsWith('notify job not enqueued'))).toBe(true);
  });
});

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RelayClientError, type PushRegisteredFrame } from '../../../client/index.js';
import { connected, run } from './setup.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const subscription = {
  endpoint: 'https://push.example.net/push/abc',
  expirationTime: null,
  keys: { p256dh: 'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM', auth: 'tBHItJI5svbpez7KI4CCXg' },
};

describe('push registration', () => {
  it('sends registerPush with the Web Push subscription and resolves with pushRegistered', async () => {
    // Prepare
    const { server, client } = await connected();
    server.script('registerPush', (frame) => [{ type: 'pushRegistered', kind: 'webPush', requestId: frame.requestId }]);
    // Act
    const answer = client.registerPush({ webPush: subscription });
    await run();
    // Assess
    await expect(answer).resolves.toMatchObject({ type: 'pushRegistered', kind: 'webPush' });
    const [frame, ...more] = server.sent('registerPush');
    expect(more).toEqual([]);
    expect(frame).toEqual({ action: 'registerPush', webPush: subscription, requestId: expect.any(String) });
  });

  it('sends an APNs or FCM token as the only target', async () => {
    const { server, client } = await connected();
    server.script('registerPush', (frame) => [{ type: 'pushRegistered', kind: frame.apns === undefined ? 'fcm' : 'apns', requestId: frame.requestId }]);
    const apns = client.registerPush({ apns: 'a'.repeat(64) });
    const fcm = client.registerPush({ fcm: 'token:fcm-1' });
    await run();
    expect((await apns).kind).toBe('apns');
    expect((await fcm).kind).toBe('fcm');
    expect(server.sent('registerPush').map(({ requestId: _requestId, ...frame }) => frame)).toEqual([
      { action: 'registerPush', apns: 'a'.repeat(64) },
      { action: 'registerPush', fcm: 'token:fcm-1' },
    ]);
  });

  it('rejects with the server’s code when the target is refused', async () => {
    const { server, client } = await connected();
    server.script('registerPush', (frame) => [
      { type: 'error', code: 'bad_request', message: 'web push endpoint is not an allowed push service', action: 'registerPush', requestId: frame.requestId },
    ]);
    const answer = client.registerPush({ webPush: { ...subscription, endpoint: 'https://evil.example.com/x' } });
    const failure = answer.catch((error: unknown) => error);
    await run();
    const error = await failure;
    expect(error).toBeInstanceOf(RelayClientError);
    expect(error).toMatchObject({ code: 'bad_request' });
  });

  it('unregisterPush resolves with whether a target was removed', async () => {
    const { server, client } = await connected();
    server.script('unregisterPush', (frame) => [{ type: 'pushUnregistered', removed: true, requestId: frame.requestId }]);
    const answer = client.unregisterPush();
    await run();
    await expect(answer).resolves.toMatchObject({ type: 'pushUnregistered', removed: true });
    expect(server.sent('unregisterPush')).toEqual([{ action: 'unregisterPush', requestId: expect.any(String) }]);
  });

  it('waits for the connection while offline and registers once it is back', async () => {
    // Prepare: the connection drops and the server refuses the first reconnect.
    const { server, client } = await connected();
    server.script('registerPush', (frame) => [{ type: 'pushRegistered', kind: 'webPush', requestId: frame.requestId }]);
    server.accept = false;
    server.socket.drop(1006);
    const answered: PushRegisteredFrame[] = [];
    // Act
    const answer = client.registerPush({ webPush: subscription }).then((frame) => answered.push(frame));
    await run(100);
    // Assess: nothing went out while offline.
    expect(server.sent('registerPush')).toEqual([]);
    expect(answered).toEqual([]);
    server.accept = true;
    await run(60_000);
    await answer;
    expect(server.sent('registerPush')).toHaveLength(1);
    expect(answered).toEqual([expect.objectContaining({ kind: 'webPush' })]);
  });
});

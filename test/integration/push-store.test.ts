import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushTargetsTable } from '../../deploy/tables.js';
import { DynamoDevicePositions } from '../../lambdas/adapters/dynamo-device-positions.js';
import { DynamoPushTargets } from '../../lambdas/adapters/dynamo-push-targets.js';
import type { StoredPushTarget } from '../../lambdas/ports.js';
import { ensureTables } from '../../local/tables.js';
import { createStoreTables, startDynalite, type LocalDynamo } from '../support/dynalite.js';

/** The push targets table and the push markers on device positions, on dynalite (conditional writes only). */
let dynamo: LocalDynamo;
let targets: DynamoPushTargets;
let positions: DynamoDevicePositions;
let nowMs = Date.UTC(2030, 0, 1);
const clock = { now: () => nowMs };

beforeAll(async () => {
  dynamo = await startDynalite();
  await ensureTables(dynamo.client, { pushTargets: pushTargetsTable });
  await createStoreTables(dynamo.client, { positions: 'positions' });
  targets = new DynamoPushTargets(dynamo.doc, 'pushTargets');
  positions = new DynamoDevicePositions(dynamo.doc, 'positions', clock, { deviceTtlSeconds: 3600, maxDevicesPerUser: 5 });
});

afterAll(async () => {
  await dynamo.close();
});

const apns = (userId: string, deviceId: string, registeredAt: number): StoredPushTarget => ({
  userId,
  deviceId,
  target: { kind: 'apns', token: 'ab'.repeat(32) },
  registeredAt,
});

describe('DynamoPushTargets', () => {
  it('keeps one target per device and at most the limit per user, dropping the oldest', async () => {
    const user = `u-${randomUUID()}`;
    for (let i = 1; i <= 3; i += 1) expect(await targets.put(apns(user, `d${i}`, i), 3)).toEqual({ evicted: [] });
    // Replacing a device's own target evicts nothing; a fourth device evicts the oldest.
    expect(await targets.put(apns(user, 'd2', 10), 3)).toEqual({ evicted: [] });
    expect(await targets.put(apns(user, 'd4', 11), 3)).toEqual({ evicted: ['d1'] });
    expect((await targets.ofUser(user)).map((t) => t.deviceId).sort()).toEqual(['d2', 'd3', 'd4']);
  });

  it('round-trips a Web Push subscription, and removes only the registration it was given', async () => {
    const user = `u-${randomUUID()}`;
    const web: StoredPushTarget = {
      userId: user,
      deviceId: 'browser',
      target: { kind: 'webPush', subscription: { endpoint: 'https://fcm.googleapis.com/fcm/send/x', keys: { p256dh: 'p'.repeat(87), auth: 'a'.repeat(22) } } },
      registeredAt: 1,
    };
    await targets.put(web, 10);
    expect(await targets.ofUser(user)).toEqual([web]);
    const again = { ...web, registeredAt: 2 };
    await targets.put(again, 10);
    await targets.removeIf(web);
    expect(await targets.ofUser(user)).toEqual([again]);
    await targets.setEndpointArn(web, 'arn:stale');
    await targets.setEndpointArn(again, 'arn:aws:sns:us-east-1:123456789012:endpoint/APNS/app/1');
    expect((await targets.ofUser(user))[0]?.endpointArn).toBe('arn:aws:sns:us-east-1:123456789012:endpoint/APNS/app/1');
    expect(await targets.remove(user, 'browser')).toBe(true);
    expect(await targets.remove(user, 'browser')).toBe(false);
  });
});

describe('push markers on device positions', () => {
  it('are set once per offline period, and cleared by a save (ack) or a register (reconnect)', async () => {
    const conversationId = `c-${randomUUID()}`;
    const device = { userId: 'bob', deviceId: 'phone' };
    const registered = await positions.register(conversationId, device, 0, nowMs);
    expect(await positions.mark(registered, 100)).toBe(true);
    expect(await positions.mark(registered, 101)).toBe(false);
    expect((await positions.candidates(conversationId))[0]?.pushedAt).toBe(100);

    // An ack saves the position: the marker goes, and a mark on the version read before the ack is refused.
    expect(await positions.save({ ...registered, ackedThrough: 3, version: registered.version + 1 })).toBe(true);
    expect((await positions.candidates(conversationId))[0]?.pushedAt).toBeUndefined();
    expect(await positions.mark(registered, 102)).toBe(false);
    const acked = await positions.get(conversationId, device);
    expect(acked).toBeDefined();
    if (acked === undefined) return;
    expect(await positions.mark(acked, 103)).toBe(true);

    // A failed push clears only its own marker.
    await positions.unmark(acked, 999);
    expect((await positions.candidates(conversationId))[0]?.pushedAt).toBe(103);
    await positions.unmark(acked, 103);
    expect((await positions.candidates(conversationId))[0]?.pushedAt).toBeUndefined();

    // A reconnect (register of a known device) clears it too.
    expect(await positions.mark(acked, 104)).toBe(true);
    await positions.register(conversationId, device, 0, nowMs + 1000);
    expect((await positions.candidates(conversationId))[0]?.pushedAt).toBeUndefined();
  });

  it('leave out devices not seen for the device TTL', async () => {
    const conversationId = `c-${randomUUID()}`;
    await positions.register(conversationId, { userId: 'carol', deviceId: 'old' }, 0, nowMs);
    nowMs += 3_601_000;
    await positions.register(conversationId, { userId: 'carol', deviceId: 'new' }, 0, nowMs);
    expect((await positions.candidates(conversationId)).map((p) => p.deviceId)).toEqual(['new']);
  });
});

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
    expect(await targets.get(user, 'browser')).toEqual({ ...again, endpointArn: 'arn:aws:sns:us-east-1:123456789012:endpoint/APNS/app/1' });
    expect(await targets.get(user, 'other')).toBeUndefined();
    expect(await targets.remove(user, 'browser')).toBe(true);
    expect(await targets.remove(user, 'browser')).toBe(false);
  });
});

describe('push flags and markers on device positions', () => {
  it('put only push-flagged devices in the push index, and keep the flag across acks and reconnects', async () => {
    const conversationId = `c-${randomUUID()}`;
    const flagged = { userId: 'bob', deviceId: 'phone' };
    const plain = { userId: 'bob', deviceId: 'laptop' };
    const first = await positions.register(conversationId, flagged, 0, nowMs);
    await positions.register(conversationId, plain, 0, nowMs);
    expect(first.pushable).toBeUndefined();
    expect(await positions.candidates(conversationId)).toEqual([]);

    await positions.setPushable(conversationId, flagged, true);
    // Never creates a position.
    await positions.setPushable(conversationId, { userId: 'carol', deviceId: 'ghost' }, true);
    await positions.setPushable(`c-${randomUUID()}`, flagged, true);
    expect((await positions.candidates(conversationId)).map((p) => p.deviceId)).toEqual(['phone']);
    expect((await positions.get(conversationId, flagged))?.pushable).toBe(true);
    expect(await positions.get(conversationId, { userId: 'carol', deviceId: 'ghost' })).toBeUndefined();

    // An ack (save) and a reconnect (register) keep the flag; its version moves as before.
    const known = await positions.get(conversationId, flagged);
    if (known === undefined) throw new Error('the position is gone');
    expect(await positions.save({ ...known, ackedThrough: 4, acked: [6], version: known.version + 1 })).toBe(true);
    await positions.register(conversationId, flagged, 0, nowMs + 1000);
    const [after] = await positions.candidates(conversationId);
    expect(after).toMatchObject({ deviceId: 'phone', ackedThrough: 4, acked: [6], version: known.version + 1, pushable: true });

    await positions.setPushable(conversationId, flagged, false);
    expect(await positions.candidates(conversationId)).toEqual([]);
    expect((await positions.get(conversationId, flagged))?.pushable).toBeUndefined();
  });

  it('set a marker once per offline period, only while the message is pending, cleared by an ack or a reconnect', async () => {
    const conversationId = `c-${randomUUID()}`;
    const device = { userId: 'bob', deviceId: 'phone' };
    const registered = await positions.register(conversationId, device, 0, nowMs);
    await positions.setPushable(conversationId, device, true);
    const marker = async () => (await positions.candidates(conversationId))[0]?.pushedAt;
    expect(await positions.mark(registered, 1, 100)).toBe(true);
    expect(await positions.mark(registered, 2, 101)).toBe(false);
    expect(await marker()).toBe(100);

    // An ack saves the position: the marker goes. A mark for a message acked since (through, or out of order)
    // is refused, whatever version the (eventually consistent) candidate was read at.
    expect(await positions.save({ ...registered, ackedThrough: 3, acked: [5], version: registered.version + 1 })).toBe(true);
    expect(await marker()).toBeUndefined();
    expect(await positions.mark(registered, 3, 102)).toBe(false);
    expect(await positions.mark(registered, 5, 102)).toBe(false);
    expect(await positions.mark(registered, 4, 103)).toBe(true);

    // A failed push clears only its own marker.
    await positions.unmark(registered, 999);
    expect(await marker()).toBe(103);
    await positions.unmark(registered, 103);
    expect(await marker()).toBeUndefined();

    // A reconnect (register of a known device) clears it too.
    expect(await positions.mark(registered, 6, 104)).toBe(true);
    await positions.register(conversationId, device, 0, nowMs + 1000);
    expect(await marker()).toBeUndefined();
  });

  it('leave out devices not seen for the device TTL', async () => {
    const conversationId = `c-${randomUUID()}`;
    const old = { userId: 'carol', deviceId: 'old' };
    await positions.register(conversationId, old, 0, nowMs);
    await positions.setPushable(conversationId, old, true);
    nowMs += 3_601_000;
    const fresh = { userId: 'carol', deviceId: 'new' };
    await positions.register(conversationId, fresh, 0, nowMs);
    await positions.setPushable(conversationId, fresh, true);
    expect((await positions.candidates(conversationId)).map((p) => p.deviceId)).toEqual(['new']);
  });
});

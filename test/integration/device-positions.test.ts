import { randomUUID } from 'node:crypto';
import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DynamoDevicePositions, deviceKey } from '../../lambdas/adapters/dynamo-device-positions.js';
import type { Device, DevicePosition } from '../../lambdas/ports.js';
import { createStoreTables, instrumentedDoc, startDynalite, type LocalDynamo, type WireCommand } from '../support/dynalite.js';

const TABLES = { positions: 'positions' };
const START = Date.UTC(2030, 0, 1, 12, 0, 0);
const TTL_SECONDS = 3600;

let dynamo: LocalDynamo;
let recorder: { doc: LocalDynamo['doc']; destroy(): void };
const sent: WireCommand[] = [];
let nowMs = START;
const clock = { now: () => nowMs };
let positions: DynamoDevicePositions;
let recorded: DynamoDevicePositions;

beforeAll(async () => {
  dynamo = await startDynalite();
  await createStoreTables(dynamo.client, TABLES);
  recorder = instrumentedDoc(dynamo, { before: (command) => void sent.push(command) });
  const options = { deviceTtlSeconds: TTL_SECONDS, maxDevicesPerUser: 3 };
  positions = new DynamoDevicePositions(dynamo.doc, TABLES.positions, clock, options);
  recorded = new DynamoDevicePositions(recorder.doc, TABLES.positions, clock, options);
});

afterAll(async () => {
  recorder.destroy();
  await dynamo.close();
});

beforeEach(() => {
  nowMs = START;
  sent.length = 0;
});

function device(userId: string, deviceId = `device-${randomUUID().slice(0, 8)}`): Device {
  return { userId, deviceId };
}

/** Registers at the current clock, as the connect path does. */
function register(conversationId: string, which: Device, startAfterSeq = 0): Promise<DevicePosition> {
  return positions.register(conversationId, which, startAfterSeq, nowMs);
}

async function storedDevices(conversationId: string): Promise<string[]> {
  const { Items } = await dynamo.doc.send(
    new QueryCommand({
      TableName: TABLES.positions,
      KeyConditionExpression: 'conversationId = :c',
      ExpressionAttributeValues: { ':c': conversationId },
      ConsistentRead: true,
    }),
  );
  return (Items ?? []).map((item) => String(item.device)).sort();
}

describe('DynamoDevicePositions on dynalite', () => {
  it('registers a new device at startAfterSeq with nothing acked and version 1', async () => {
    const conversationId = randomUUID();
    const phone = device('alice', 'phone');

    const position = await recorded.register(conversationId, phone, 7, nowMs);

    const expected: DevicePosition = {
      conversationId,
      userId: 'alice',
      deviceId: 'phone',
      ackedThrough: 7,
      acked: [],
      lastSeenAt: nowMs,
      version: 1,
    };
    expect(position).toEqual(expected);
    await expect(positions.get(conversationId, phone)).resolves.toEqual(expected);
    // The refresh a known device would take (refused: it is new), one Query (the user's devices) and one write.
    expect(sent.map((c) => c.command)).toEqual(['UpdateItemCommand', 'QueryCommand', 'PutItemCommand']);
    const { Item } = await dynamo.doc.send(
      new GetCommand({ TableName: TABLES.positions, Key: { conversationId, device: 'alice/phone' } }),
    );
    expect(Item).toMatchObject({ expiresAt: Math.floor(nowMs / 1000) + TTL_SECONDS });
  });

  it('keeps a known position on re-register and only refreshes lastSeenAt', async () => {
    const conversationId = randomUUID();
    const phone = device('alice');
    const registered = await register(conversationId, phone, 3);
    const moved = { ...registered, ackedThrough: 9, acked: [12, 11], version: 2 };
    await expect(positions.save(moved)).resolves.toBe(true);
    nowMs += 60_000;

    sent.length = 0;
    const again = await recorded.register(conversationId, phone, 100, nowMs);

    const expected = { ...moved, acked: [11, 12], lastSeenAt: nowMs };
    expect(again).toEqual(expected);
    await expect(positions.get(conversationId, phone)).resolves.toEqual(expected);
    // A known device is one conditional write: no read of the user's other devices.
    expect(sent.map((c) => c.command)).toEqual(['UpdateItemCommand']);
    // The refresh also pushes the expiry out.
    nowMs += (TTL_SECONDS - 30) * 1000;
    await expect(positions.get(conversationId, phone)).resolves.toEqual(expected);
  });

  it('forgets a device not seen for the TTL and re-creates it from the new startAfterSeq', async () => {
    const conversationId = randomUUID();
    const phone = device('alice');
    const registered = await register(conversationId, phone, 3);
    await positions.save({ ...registered, ackedThrough: 8, version: 2 });

    nowMs += (TTL_SECONDS - 1) * 1000;
    await expect(positions.get(conversationId, phone)).resolves.toMatchObject({ ackedThrough: 8 });
    nowMs += 1000;
    await expect(positions.get(conversationId, phone)).resolves.toBeUndefined();

    const renewed = await register(conversationId, phone, 40);
    expect(renewed).toEqual({ ...registered, ackedThrough: 40, acked: [], lastSeenAt: nowMs, version: 1 });
    await expect(positions.get(conversationId, phone)).resolves.toEqual(renewed);
  });

  it('keeps at most maxDevicesPerUser per user, evicting the least recently seen', async () => {
    const conversationId = randomUUID();
    const [d1, d2, d3, d4] = ['d1', 'd2', 'd3', 'd4'].map((id) => device('alice', id));
    const others = ['o1', 'o2', 'o3'].map((id) => device('bob', id));
    if (d1 === undefined || d2 === undefined || d3 === undefined || d4 === undefined) throw new Error('four devices');
    for (const other of others) await register(conversationId, other);
    await register(conversationId, d1);
    nowMs += 1000;
    await register(conversationId, d2);
    nowMs += 1000;
    await register(conversationId, d3);
    nowMs += 1000;
    // Seen again: d2 is now the least recently seen.
    await register(conversationId, d1);
    nowMs += 1000;

    await register(conversationId, d4, 5);

    await expect(positions.get(conversationId, d2)).resolves.toBeUndefined();
    for (const kept of [d1, d3, d4]) await expect(positions.get(conversationId, kept)).resolves.toBeDefined();
    for (const other of others) await expect(positions.get(conversationId, other)).resolves.toBeDefined();
    expect(await storedDevices(conversationId)).toEqual(
      ['alice/d1', 'alice/d3', 'alice/d4', 'bob/o1', 'bob/o2', 'bob/o3'].sort(),
    );
  });

  it('saves with optimistic concurrency: of two saves from the same version, exactly one wins', async () => {
    const conversationId = randomUUID();
    const phone = device('alice');
    const base = await register(conversationId, phone);
    const mine = { ...base, ackedThrough: 4, version: base.version + 1 };
    const theirs = { ...base, ackedThrough: 2, acked: [5], version: base.version + 1 };

    const results = await Promise.all([positions.save(mine), positions.save(theirs)]);

    expect([...results].sort()).toEqual([false, true]);
    const winner = results[0] === true ? mine : theirs;
    await expect(positions.get(conversationId, phone)).resolves.toEqual(winner);
    // The loser reads again and saves on top of the winner.
    await expect(positions.save({ ...winner, ackedThrough: 6, acked: [], version: winner.version + 1 })).resolves.toBe(true);
    await expect(positions.save({ ...base, version: base.version + 1 })).resolves.toBe(false);
    await expect(positions.get(conversationId, phone)).resolves.toMatchObject({ ackedThrough: 6, version: 3 });
  });

  it('saves version 1 only where no position exists', async () => {
    const conversationId = randomUUID();
    const phone = device('dave');
    const first: DevicePosition = {
      conversationId,
      ...phone,
      ackedThrough: 0,
      acked: [],
      lastSeenAt: nowMs,
      version: 1,
    };
    await expect(positions.save(first)).resolves.toBe(true);
    await expect(positions.save({ ...first, ackedThrough: 9 })).resolves.toBe(false);
    await expect(positions.get(conversationId, phone)).resolves.toEqual(first);
  });

  it("forgets every device of one user and only that user's (prefix-safe)", async () => {
    const conversationId = randomUUID();
    const elsewhere = randomUUID();
    const alice = [device('alice', 'a'), device('alice', 'b')];
    // Users whose encoded ids start like alice's.
    const lookalikes = [device('alice/x', 'a'), device('alicex', 'a'), device('alice%2F', 'a')];
    for (const d of [...alice, ...lookalikes]) await register(conversationId, d);
    await register(elsewhere, device('alice', 'a'));

    await positions.forgetUser(conversationId, 'alice');

    for (const d of alice) await expect(positions.get(conversationId, d)).resolves.toBeUndefined();
    for (const d of lookalikes) await expect(positions.get(conversationId, d)).resolves.toBeDefined();
    await expect(positions.get(elsewhere, device('alice', 'a'))).resolves.toBeDefined();
    expect(await storedDevices(conversationId)).toEqual(lookalikes.map(deviceKey).sort());
    await expect(positions.forgetUser(conversationId, 'nobody')).resolves.toBeUndefined();
  });

  it('encodes the user id in the key so that a slash in it cannot fake another user', () => {
    expect(deviceKey({ userId: 'a/b', deviceId: 'c' })).toBe('a%2Fb/c');
  });
});

import { describe, expect, it, vi } from 'vitest';
import { subscribe } from '../../../lambdas/domain/connection.js';
import { getPresence, leavePresence, ping, refreshPresence, sweepPresence, touchPresence } from '../../../lambdas/domain/presence.js';
import { UnavailableError } from '../../../lambdas/errors.js';
import { fakeServices } from '../../support/fake-services.js';

const ENDPOINT = 'https://api.example/dev';
const T0 = 1_700_000_000_000;
const GRACE = 15_000;
const TTL = 60_000;

/** Fake services with a clock the test moves; bob (laptop) and ann (phone, tablet) live in `conv`. */
function setUp(overrides: Parameters<typeof fakeServices>[0] = {}) {
  const fake = fakeServices(overrides);
  let now = T0;
  fake.services.clock = { now: () => now };
  const bob = fake.connect('b-laptop', 'bob', 'laptop');
  const annPhone = fake.connect('a-phone', 'ann', 'phone');
  const annTablet = fake.connect('a-tablet', 'ann', 'tablet');
  const presenceTo = (connectionId: string) =>
    fake.posted.filter((p) => p.connectionId === connectionId).map((p) => JSON.parse(p.data) as Record<string, unknown>).filter((f) => f.type === 'presence');
  return { fake, services: fake.services, bob, annPhone, annTablet, presenceTo, at: (ms: number) => (now = T0 + ms) };
}

describe('presence announcements', () => {
  it('announces a user once, not per device: a second device coming online says nothing', async () => {
    const { services, annPhone, annTablet, presenceTo } = setUp();

    await touchPresence(services, annPhone, ['conv'], ENDPOINT);
    await touchPresence(services, annTablet, ['conv'], ENDPOINT);

    expect(presenceTo('b-laptop')).toEqual([{ type: 'presence', conversationId: 'conv', userId: 'ann', state: 'online', at: T0 }]);
    // Never to the user's own devices.
    expect([...presenceTo('a-phone'), ...presenceTo('a-tablet')]).toEqual([]);
  });

  it('leaving on one of two devices announces nothing; leaving on both announces offline once, after the grace', async () => {
    const { services, annPhone, annTablet, presenceTo, at } = setUp();
    await touchPresence(services, annPhone, ['conv'], ENDPOINT);
    await touchPresence(services, annTablet, ['conv'], ENDPOINT);

    at(1000);
    await leavePresence(services, annPhone, ['conv']);
    at(1000 + GRACE);
    const afterOne = await sweepPresence(services, ENDPOINT, 10);
    at(2000);
    await leavePresence(services, annTablet, ['conv']);
    at(2000 + GRACE - 1);
    const inGrace = await sweepPresence(services, ENDPOINT, 10);
    at(2000 + GRACE);
    const afterBoth = await sweepPresence(services, ENDPOINT, 10);
    const again = await sweepPresence(services, ENDPOINT, 10);

    expect([afterOne, inGrace, afterBoth, again]).toEqual([0, 0, 1, 0]);
    expect(presenceTo('b-laptop').map((f) => f.state)).toEqual(['online', 'offline']);
    expect(presenceTo('b-laptop')[1]).toEqual({ type: 'presence', conversationId: 'conv', userId: 'ann', state: 'offline', at: T0 + 2000 });
  });

  it('a reconnect within the grace neither announces offline nor online', async () => {
    const { fake, services, annPhone, presenceTo, at } = setUp();
    await touchPresence(services, annPhone, ['conv'], ENDPOINT);
    at(1000);
    await leavePresence(services, annPhone, ['conv']);

    at(5000);
    const again = fake.connect('a-phone-2', 'ann', 'phone');
    await touchPresence(services, again, ['conv'], ENDPOINT);
    at(1000 + GRACE);
    await sweepPresence(services, ENDPOINT, 10);

    expect(presenceTo('b-laptop').map((f) => f.state)).toEqual(['online']);
  });

  it('a connection that stops without a leave goes offline after the TTL and the grace', async () => {
    const { services, annPhone, presenceTo, at } = setUp();
    await touchPresence(services, annPhone, ['conv'], ENDPOINT);

    at(TTL + GRACE - 1);
    const early = await sweepPresence(services, ENDPOINT, 10);
    at(TTL + GRACE);
    const due = await sweepPresence(services, ENDPOINT, 10);

    expect([early, due]).toEqual([0, 1]);
    expect(presenceTo('b-laptop').map((f) => [f.state, f.at])).toEqual([['online', T0], ['offline', T0 + TTL]]);
  });

  it('frame activity keeps an online user live but never announces one', async () => {
    const { services, annPhone, presenceTo, at } = setUp();
    const binding = { ...annPhone };

    await refreshPresence(services, binding);
    const silent = presenceTo('b-laptop');
    await touchPresence(services, annPhone, ['conv'], ENDPOINT);
    at(TTL - 1);
    await refreshPresence(services, binding);
    at(TTL + GRACE);
    const swept = await sweepPresence(services, ENDPOINT, 10);

    expect(silent).toEqual([]);
    expect(swept).toBe(0);
  });

  it('above the size limit sends only the occupancy count, at most once per interval', async () => {
    const { fake, services, annPhone, presenceTo, at } = setUp({ largeConversationMembers: 2 });
    services.roster.count.mockResolvedValue(3);
    const cat = fake.connect('c-phone', 'cat', 'phone');

    await touchPresence(services, annPhone, ['conv'], ENDPOINT);
    at(100);
    await touchPresence(services, cat, ['conv'], ENDPOINT);
    at(5000);
    await touchPresence(services, fake.connect('d-phone', 'dan', 'phone'), ['conv'], ENDPOINT);

    expect(presenceTo('b-laptop')).toEqual([
      { type: 'presence', conversationId: 'conv', occupancy: 1 },
      { type: 'presence', conversationId: 'conv', occupancy: 3 },
    ]);
  });
});

describe('presence never fails what touched it', () => {
  it('subscribe answers subscribed when presence is down, and logs a warning', async () => {
    const { fake, services } = setUp();
    vi.spyOn(services.presence, 'touch').mockRejectedValue(new UnavailableError('presence is unavailable (redis is down)'));
    const record = { connectionId: 'n1', userId: 'eve', deviceId: 'phone', connectedAt: 0, expiresAt: 2_000_000_000 };
    fake.records.push(record);

    const answer = await subscribe(services, record, { action: 'subscribe', conversationIds: ['conv'] }, ENDPOINT);

    expect(answer).toMatchObject({ type: 'subscribed', conversations: [{ conversationId: 'conv', status: 'ok' }] });
    expect(fake.logs).toContainEqual(expect.objectContaining({ level: 'warn', message: 'presence touch failed' }));
  });

  it('ping answers pong when the registry cannot be read, and touches every subscription when it can', async () => {
    const { fake, services, annPhone, presenceTo } = setUp();
    fake.connect('a-phone', 'ann', 'phone', 'other');
    fake.connect('b-laptop', 'bob', 'laptop', 'other');

    const pong = await ping(services, annPhone, { action: 'ping', requestId: 'p1' }, ENDPOINT);
    services.registry.subscriptionsOf.mockRejectedValueOnce(new UnavailableError('down'));
    const still = await ping(services, annPhone, { action: 'ping' }, ENDPOINT);

    expect(pong).toEqual({ type: 'pong', at: T0, requestId: 'p1' });
    expect(still).toEqual({ type: 'pong', at: T0 });
    expect(presenceTo('b-laptop').map((f) => f.conversationId).sort()).toEqual(['conv', 'other']);
  });
});

describe('getPresence', () => {
  it('lists the members online, sorted, leaving out a removed member', async () => {
    const { fake, services, annPhone } = setUp();
    await touchPresence(services, annPhone, ['conv'], ENDPOINT);
    await touchPresence(services, fake.connect('z-phone', 'zed', 'phone'), ['conv'], ENDPOINT);
    await touchPresence(services, fake.connect('g-phone', 'gone', 'phone'), ['conv'], ENDPOINT);
    services.roster.membersAmong.mockImplementation(async (_c, users) => new Set(users.filter((u) => u !== 'gone')));

    const answer = await getPresence(services, { ...annPhone }, { action: 'getPresence', conversationId: 'conv', requestId: 'r' });

    expect(answer).toEqual({ type: 'presence', conversationId: 'conv', online: ['ann', 'zed'], requestId: 'r' });
  });

  it('answers the occupancy above the size limit, and fails (unavailable) when presence cannot be asked', async () => {
    const { services, annPhone } = setUp({ largeConversationMembers: 1 });
    await touchPresence(services, annPhone, ['conv'], ENDPOINT);

    const large = await getPresence(services, { ...annPhone }, { action: 'getPresence', conversationId: 'conv' });
    vi.spyOn(services.presence, 'count').mockRejectedValue(new UnavailableError('down'));
    const down = getPresence(services, { ...annPhone }, { action: 'getPresence', conversationId: 'conv' });

    expect(large).toEqual({ type: 'presence', conversationId: 'conv', occupancy: 1 });
    await expect(down).rejects.toBeInstanceOf(UnavailableError);
  });
});

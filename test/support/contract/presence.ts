import { randomUUID } from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { Presence } from '../../../lambdas/ports.js';

/**
 * The Presence contract, one suite for every implementation (RedisPresence on a real redis-server,
 * MemoryPresence). Time is the `now` each call is given: nothing waits. Each test uses fresh conversations (and
 * the Redis harness a fresh key prefix), so runs never meet.
 */
export const TIMINGS = { ttlMs: 60_000, graceMs: 15_000, occupancyIntervalMs: 5_000 } as const;
const T0 = Date.UTC(2030, 0, 1);
const { ttlMs: TTL, graceMs: GRACE } = TIMINGS;

export interface PresenceUnderTest {
  presence: Presence;
  close(): Promise<void>;
}

export type MakePresence = () => Promise<PresenceUnderTest>;

const conversation = () => `c-${randomUUID()}`;

export function presenceContract(name: string, makePresence: MakePresence): void {
  async function open(): Promise<Presence> {
    const harness = await makePresence();
    onTestFinished(() => harness.close());
    return harness.presence;
  }

  describe(`${name}: Presence contract`, () => {
    it('brings a user online once, whatever number of devices touch', async () => {
      const presence = await open();
      const c = conversation();

      const answers = [
        await presence.touch(c, 'ann', 'phone', T0),
        await presence.touch(c, 'ann', 'laptop', T0 + 1),
        await presence.touch(c, 'ann', 'phone', T0 + 2),
        await presence.touch(c, 'ben', 'phone', T0 + 3),
      ];

      expect(answers).toEqual([true, false, false, true]);
      expect((await presence.online(c)).sort()).toEqual(['ann', 'ben']);
      expect(await presence.count(c)).toBe(2);
    });

    it('announces offline once, after the TTL and the grace, when a connection just stops', async () => {
      const presence = await open();
      const c = conversation();
      await presence.touch(c, 'ann', 'phone', T0);

      const early = await presence.sweep(T0 + TTL + GRACE - 1, 100);
      const due = await presence.sweep(T0 + TTL + GRACE, 100);
      const again = await presence.sweep(T0 + TTL + GRACE + 10_000, 100);

      expect(early).toEqual([]);
      expect(due).toEqual([{ conversationId: c, userId: 'ann', at: T0 + TTL }]);
      expect(again).toEqual([]);
      expect(await presence.online(c)).toEqual([]);
    });

    it('after a leave, goes offline once the grace has passed, not before', async () => {
      const presence = await open();
      const c = conversation();
      await presence.touch(c, 'ann', 'phone', T0);

      await presence.leave(c, 'ann', 'phone', T0 + 1000);
      const inGrace = await presence.sweep(T0 + 1000 + GRACE - 1, 100);
      const listed = await presence.online(c);
      const after = await presence.sweep(T0 + 1000 + GRACE, 100);

      expect(inGrace).toEqual([]);
      expect(listed).toEqual(['ann']);
      expect(after).toEqual([{ conversationId: c, userId: 'ann', at: T0 + 1000 }]);
    });

    it('does not flap on a reconnect within the grace: no offline, and the touch is not "came online"', async () => {
      const presence = await open();
      const c = conversation();
      await presence.touch(c, 'ann', 'old-socket', T0);
      await presence.leave(c, 'ann', 'old-socket', T0 + 100);

      const cameOnline = await presence.touch(c, 'ann', 'new-socket', T0 + 5000);
      const swept = [await presence.sweep(T0 + 100 + GRACE, 100), await presence.sweep(T0 + 5000 + TTL - 1, 100)];

      expect(cameOnline).toBe(false);
      expect(swept).toEqual([[], []]);
      expect(await presence.online(c)).toEqual(['ann']);
    });

    it('keeps a user online while one of two devices is live', async () => {
      const presence = await open();
      const c = conversation();
      await presence.touch(c, 'ann', 'phone', T0);
      await presence.touch(c, 'ann', 'laptop', T0);

      await presence.leave(c, 'ann', 'phone', T0 + 10);
      const whileLaptop = await presence.sweep(T0 + 10 + GRACE, 100);
      await presence.leave(c, 'ann', 'laptop', T0 + 20_000);
      const afterBoth = await presence.sweep(T0 + 20_000 + GRACE, 100);

      expect(whileLaptop).toEqual([]);
      expect(afterBoth).toEqual([{ conversationId: c, userId: 'ann', at: T0 + 20_000 }]);
    });

    it('a touch before the TTL keeps the connection live past it', async () => {
      const presence = await open();
      const c = conversation();
      await presence.touch(c, 'ann', 'phone', T0);

      await presence.touch(c, 'ann', 'phone', T0 + TTL - 1000);
      const atFirstDeadline = await presence.sweep(T0 + TTL + GRACE, 100);
      const atSecond = await presence.sweep(T0 + 2 * TTL - 1000 + GRACE, 100);

      expect(atFirstDeadline).toEqual([]);
      expect(atSecond).toEqual([{ conversationId: c, userId: 'ann', at: T0 + 2 * TTL - 1000 }]);
    });

    it('refresh keeps an online user live but never brings one online', async () => {
      const presence = await open();
      const c = conversation();

      await presence.refresh(c, 'ann', 'phone', T0);
      const before = await presence.online(c);
      await presence.touch(c, 'ben', 'phone', T0);
      await presence.refresh(c, 'ben', 'phone', T0 + TTL - 1);
      const atFirstDeadline = await presence.sweep(T0 + TTL + GRACE, 100);

      expect(before).toEqual([]);
      expect(atFirstDeadline).toEqual([]);
      expect(await presence.online(c)).toEqual(['ben']);
    });

    it('a user can come online again after going offline', async () => {
      const presence = await open();
      const c = conversation();
      await presence.touch(c, 'ann', 'phone', T0);
      await presence.leave(c, 'ann', 'phone', T0);
      await presence.sweep(T0 + GRACE, 100);

      expect(await presence.touch(c, 'ann', 'phone', T0 + GRACE + 1)).toBe(true);
    });

    it('leave of an unknown connection changes nothing', async () => {
      const presence = await open();
      const c = conversation();
      await presence.touch(c, 'ann', 'phone', T0);

      await presence.leave(c, 'ann', 'tablet', T0);
      await presence.leave(conversation(), 'ann', 'phone', T0);

      expect(await presence.sweep(T0 + GRACE, 100)).toEqual([]);
      expect(await presence.online(c)).toEqual(['ann']);
    });

    it('keeps conversations apart, and user ids with separators and unicode intact', async () => {
      const presence = await open();
      const [c1, c2] = [conversation(), conversation()];
      const odd = 'ann|phone:{x}%20é';

      await presence.touch(c1, odd, 'phone', T0);
      await presence.touch(c2, 'ben', 'phone', T0 + 5000);
      const swept = await presence.sweep(T0 + TTL + GRACE, 100);

      expect(swept).toEqual([{ conversationId: c1, userId: odd, at: T0 + TTL }]);
      expect(await presence.online(c2)).toEqual(['ben']);
    });

    it('claims each offline user once when two sweeps run at the same time', async () => {
      const presence = await open();
      const c = conversation();
      for (const user of ['a', 'b', 'c', 'd']) await presence.touch(c, user, `${user}-phone`, T0);

      const [one, two] = await Promise.all([presence.sweep(T0 + TTL + GRACE, 100), presence.sweep(T0 + TTL + GRACE, 100)]);

      expect([...one, ...two].map((change) => change.userId).sort()).toEqual(['a', 'b', 'c', 'd']);
    });

    it('sweeps at most `limit` conversations a call; the rest on the next', async () => {
      const presence = await open();
      const conversations = [conversation(), conversation(), conversation()];
      for (const c of conversations) await presence.touch(c, 'ann', 'phone', T0);

      const first = await presence.sweep(T0 + TTL + GRACE, 2);
      const second = await presence.sweep(T0 + TTL + GRACE, 2);

      expect(first).toHaveLength(2);
      expect([...first, ...second].map((change) => change.conversationId).sort()).toEqual([...conversations].sort());
    });

    it('allows one occupancy frame per interval per conversation', async () => {
      const presence = await open();
      const [c1, c2] = [conversation(), conversation()];

      const answers = [await presence.claimOccupancy(c1, T0), await presence.claimOccupancy(c1, T0 + 1), await presence.claimOccupancy(c2, T0 + 1)];

      expect(answers).toEqual([true, false, true]);
    });
  });
}

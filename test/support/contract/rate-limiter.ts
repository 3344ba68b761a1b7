import { randomUUID } from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { RateBucket, RateLimiter } from '../../../lambdas/ports.js';
import { MemoryRateLimiter } from '../../../lambdas/adapters/memory-rate-limiter.js';

/**
 * The RateLimiter contract, one suite for every implementation (RedisRateLimiter on a real redis-server or
 * cluster, MemoryRateLimiter). Each test uses fresh bucket keys, so runs against a shared Redis never meet.
 * Timings leave a margin of at least 100 ms either side, as Redis runs on real time.
 */
export interface LimiterUnderTest {
  limiter: RateLimiter;
  /** Lets `ms` pass for the limiter: a fake clock in memory, a real wait for Redis (whose TIME it uses). */
  advance(ms: number): Promise<void>;
  close(): Promise<void>;
}

export type MakeLimiter = () => Promise<LimiterUnderTest>;

function conn(perSecond: number, burst: number): RateBucket {
  return { key: `conn:${randomUUID()}`, perSecond, burst };
}

function user(perSecond: number, burst: number): RateBucket {
  return { key: `user:${randomUUID()}`, perSecond, burst };
}

/** The answers of `count` admits in a row. */
async function admits(limiter: RateLimiter, buckets: readonly RateBucket[], count: number): Promise<boolean[]> {
  const answers: boolean[] = [];
  for (let i = 0; i < count; i += 1) answers.push(await limiter.admit(buckets));
  return answers;
}

const times = (count: number, value: boolean) => Array.from({ length: count }, () => value);

export function rateLimiterContract(name: string, makeLimiter: MakeLimiter): void {
  async function open(): Promise<LimiterUnderTest> {
    const harness = await makeLimiter();
    onTestFinished(() => harness.close());
    return harness;
  }

  describe(`${name}: RateLimiter contract`, () => {
    it('admits a burst from a fresh bucket, then refuses', async () => {
      const { limiter } = await open();
      const bucket = conn(1, 5);

      const answers = await admits(limiter, [bucket], 7);

      expect(answers).toEqual([...times(5, true), false, false]);
    });

    it('refills at perSecond', async () => {
      const { limiter, advance } = await open();
      const bucket = conn(5, 5);
      await admits(limiter, [bucket], 5);

      await advance(450);

      // 2.25 tokens back: two admits, and the third token is 150 ms away.
      expect(await admits(limiter, [bucket], 3)).toEqual([true, true, false]);
    });

    it('keeps fractions of a token across refused admits', async () => {
      const { limiter, advance } = await open();
      const bucket = conn(5, 1);
      await limiter.admit([bucket]);

      await advance(100);
      const early = await limiter.admit([bucket]);
      await advance(200);
      const later = await limiter.admit([bucket]);

      expect([early, later]).toEqual([false, true]);
    });

    it('never holds more than burst, however long it idles', async () => {
      const { limiter, advance } = await open();
      const bucket = conn(20, 2);
      await admits(limiter, [bucket], 2);

      await advance(600);

      expect(await admits(limiter, [bucket], 3)).toEqual([true, true, false]);
    });

    it('takes from every bucket of a call', async () => {
      const { limiter } = await open();
      const connection = conn(1, 2);
      const owner = user(1, 3);

      const both = await admits(limiter, [connection, owner], 3);

      expect(both).toEqual([true, true, false]);
      // The user's bucket paid for both admitted calls, and nothing for the refused one.
      expect(await admits(limiter, [owner], 2)).toEqual([true, false]);
    });

    it('takes from none when one bucket is empty (all or nothing)', async () => {
      const { limiter } = await open();
      const connection = conn(1, 1);
      const owner = user(1, 10);
      await limiter.admit([connection, owner]);

      const refused = await admits(limiter, [connection, owner], 5);

      expect(refused).toEqual(times(5, false));
      expect(await admits(limiter, [owner], 10)).toEqual([...times(9, true), false]);
    });

    it('counts a bucket per owner: a connection alone and with its user are two buckets', async () => {
      const { limiter } = await open();
      const connection = conn(1, 1);
      const owner = user(1, 10);

      expect(await admits(limiter, [connection, owner], 2)).toEqual([true, false]);
      expect(await admits(limiter, [connection], 2)).toEqual([true, false]);
    });

    it('refuses a call naming two users (their buckets share no slot)', async () => {
      const { limiter } = await open();

      await expect(limiter.admit([user(1, 1), user(1, 1)])).rejects.toThrow(RangeError);
    });

    it("shares a user's bucket between that user's connections", async () => {
      const { limiter } = await open();
      const owner = user(1, 3);
      const phone = conn(1, 10);
      const laptop = conn(1, 10);

      const answers = [
        await limiter.admit([phone, owner]),
        await limiter.admit([laptop, owner]),
        await limiter.admit([phone, owner]),
        await limiter.admit([laptop, owner]),
      ];

      expect(answers).toEqual([true, true, true, false]);
    });

    it('keeps buckets of different keys apart', async () => {
      const { limiter } = await open();
      const first = conn(1, 1);
      const second = conn(1, 1);

      expect(await admits(limiter, [first], 2)).toEqual([true, false]);
      expect(await admits(limiter, [second], 2)).toEqual([true, false]);
    });

    it('counts a key named twice in one call once', async () => {
      const { limiter } = await open();
      const bucket = conn(1, 2);

      expect(await limiter.admit([bucket, bucket])).toBe(true);
      expect(await admits(limiter, [bucket], 2)).toEqual([true, false]);
    });

    it('treats perSecond <= 0 as no limit, and still limits the other buckets', async () => {
      const { limiter } = await open();
      const unlimited = conn(0, 1);
      const limited = user(1, 2);

      expect(await admits(limiter, [unlimited, limited], 3)).toEqual([true, true, false]);
      expect(await admits(limiter, [{ ...unlimited, perSecond: -1 }], 20)).toEqual(times(20, true));
    });

    it('admits an empty list of buckets', async () => {
      const { limiter } = await open();

      expect(await limiter.admit([])).toBe(true);
    });

    it('gives each of many concurrent admits its own token, no more', async () => {
      const { limiter } = await open();
      const owner = user(1, 10);
      const connection = conn(1, 100);

      const answers = await Promise.all(Array.from({ length: 25 }, () => limiter.admit([connection, owner])));

      expect(answers.filter(Boolean)).toHaveLength(10);
    });
  });
}

/** An in-process limiter that counts how often it is asked: a Redis limiter's fallback whose use a test can see. */
export function countingFallback(): RateLimiter & { calls: number } {
  const memory = new MemoryRateLimiter();
  const fallback = {
    calls: 0,
    admit: async (buckets: readonly RateBucket[]) => {
      fallback.calls += 1;
      return await memory.admit(buckets);
    },
  };
  return fallback;
}

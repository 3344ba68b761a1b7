import { randomUUID } from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import { MemoryFanoutBudget } from '../../../lambdas/adapters/memory-fanout-budget.js';
import type { FanoutBudget, FanoutBudgetSettings } from '../../../lambdas/ports.js';

/**
 * The FanoutBudget contract, one suite for every implementation (RedisFanoutBudget on a real redis-server or
 * cluster, MemoryFanoutBudget). Each test uses fresh conversations and users, so runs against a shared Redis
 * never meet. Timings leave a margin of at least 100 ms, as Redis runs on real time.
 */
export interface BudgetUnderTest {
  budget: FanoutBudget;
  /** Lets `ms` pass for the budget: a fake clock in memory, a real wait for Redis (whose TIME it uses). */
  advance(ms: number): Promise<void>;
  close(): Promise<void>;
}

export type MakeBudget = (settings: FanoutBudgetSettings) => Promise<BudgetUnderTest>;

const fresh = () => ({ conversation: `conv-${randomUUID()}`, sender: `user-${randomUUID()}`, other: `user-${randomUUID()}` });

export function fanoutBudgetContract(name: string, makeBudget: MakeBudget): void {
  async function open(settings: FanoutBudgetSettings): Promise<BudgetUnderTest> {
    const harness = await makeBudget(settings);
    onTestFinished(() => harness.close());
    return harness;
  }

  describe(`${name}: FanoutBudget contract`, () => {
    it('starts full: a second’s worth of posts, then a wait for the next', async () => {
      const { budget } = await open({ conversationPerSecond: 10, senderPerSecond: 1000 });
      const { conversation, sender } = fresh();
      expect(await budget.waitMs(conversation, sender)).toBe(0);

      await budget.spend(conversation, sender, 9);
      expect(await budget.waitMs(conversation, sender)).toBe(0);
      await budget.spend(conversation, sender, 1);

      const wait = await budget.waitMs(conversation, sender);
      expect(wait).toBeGreaterThan(0);
      expect(wait).toBeLessThanOrEqual(100);
    });

    it('goes into debt for one large fan-out, and says how long it is to pay back', async () => {
      const { budget } = await open({ conversationPerSecond: 10, senderPerSecond: 1000 });
      const { conversation, sender } = fresh();

      await budget.spend(conversation, sender, 30);

      // 20 posts of debt and one more post's worth at 10 a second: 2.1 s.
      const wait = await budget.waitMs(conversation, sender);
      expect(wait).toBeGreaterThan(1900);
      expect(wait).toBeLessThanOrEqual(2100);
    });

    it('refills at its rate', async () => {
      const { budget, advance } = await open({ conversationPerSecond: 10, senderPerSecond: 1000 });
      const { conversation, sender } = fresh();
      await budget.spend(conversation, sender, 10);
      expect(await budget.waitMs(conversation, sender)).toBeGreaterThan(0);

      await advance(250);

      expect(await budget.waitMs(conversation, sender)).toBe(0);
    });

    it('never holds more than one second’s worth, however long it idles', async () => {
      const { budget, advance } = await open({ conversationPerSecond: 10, senderPerSecond: 1000 });
      const { conversation, sender } = fresh();
      await budget.spend(conversation, sender, 1);
      await advance(1500);

      await budget.spend(conversation, sender, 10);

      expect(await budget.waitMs(conversation, sender)).toBeGreaterThan(0);
    });

    it('counts a conversation’s posts whoever sends them', async () => {
      const { budget } = await open({ conversationPerSecond: 10, senderPerSecond: 1000 });
      const { conversation, sender, other } = fresh();

      await budget.spend(conversation, sender, 10);

      expect(await budget.waitMs(conversation, other)).toBeGreaterThan(0);
      expect(await budget.waitMs(`conv-${randomUUID()}`, other)).toBe(0);
    });

    it('counts a sender’s posts in all of their conversations', async () => {
      const { budget } = await open({ conversationPerSecond: 1000, senderPerSecond: 10 });
      const { conversation, sender, other } = fresh();

      await budget.spend(conversation, sender, 10);

      expect(await budget.waitMs(`conv-${randomUUID()}`, sender)).toBeGreaterThan(0);
      expect(await budget.waitMs(conversation, other)).toBe(0);
    });

    it('spends nothing when looking, or for no posts', async () => {
      const { budget } = await open({ conversationPerSecond: 10, senderPerSecond: 10 });
      const { conversation, sender } = fresh();

      for (let i = 0; i < 20; i += 1) expect(await budget.waitMs(conversation, sender)).toBe(0);
      await budget.spend(conversation, sender, 0);
      await budget.spend(conversation, sender, -5);
      await budget.spend(conversation, sender, 9);

      expect(await budget.waitMs(conversation, sender)).toBe(0);
    });
  });
}

/** An in-process budget that counts how often it was asked: a fallback whose use a test can see. */
export function countingBudgetFallback(settings: FanoutBudgetSettings): FanoutBudget & { calls: number } {
  const memory = new MemoryFanoutBudget(settings);
  const fallback = {
    calls: 0,
    waitMs: async (conversationId: string, senderId: string) => {
      fallback.calls += 1;
      return await memory.waitMs(conversationId, senderId);
    },
    spend: async (conversationId: string, senderId: string, posts: number) => {
      fallback.calls += 1;
      await memory.spend(conversationId, senderId, posts);
    },
  };
  return fallback;
}

import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe, expect, inject, it, onTestFinished, vi } from 'vitest';
import { MemoryFanoutBudget } from '../../lambdas/adapters/memory-fanout-budget.js';
import { connectRedis, redisReady } from '../../lambdas/adapters/redis-connection.js';
import { RedisFanoutBudget } from '../../lambdas/adapters/redis-fanout-budget.js';
import type { FanoutBudget, FanoutBudgetSettings } from '../../lambdas/ports.js';
import { spawnRedis } from '../../local/redis-server.js';
import { countingBudgetFallback, fanoutBudgetContract } from '../support/contract/fanout-budget.js';
import { closedPort } from './net.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const quietLog = () => ({ debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() });

/** A fallback that fails the test if it is ever asked: proves Redis itself answered. */
const unused: FanoutBudget = {
  waitMs: async () => {
    throw new Error('the fallback was used: Redis did not answer');
  },
  spend: async () => {
    throw new Error('the fallback was used: Redis did not answer');
  },
};

fanoutBudgetContract('RedisFanoutBudget on redis-server', async (settings) => {
  const redis = connectRedis(inject('redisUrl'), 'standalone', quietLog());
  return {
    budget: new RedisFanoutBudget(redis, settings, { log: quietLog(), fallback: unused }),
    advance: sleep,
    close: async () => {
      redis.disconnect();
    },
  };
});

fanoutBudgetContract('MemoryFanoutBudget', async (settings) => {
  let now = Date.UTC(2030, 0, 1);
  return {
    budget: new MemoryFanoutBudget(settings, { clock: { now: () => now } }),
    advance: async (ms) => {
      now += ms;
    },
    close: async () => undefined,
  };
});

const settings: FanoutBudgetSettings = { conversationPerSecond: 10, senderPerSecond: 100 };

function client(url: string): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  onTestFinished(() => redis.disconnect());
  return redis;
}

describe('RedisFanoutBudget', () => {
  it('is shared by every container, keeps each budget beside its owner’s other keys, and lets it expire once full', async () => {
    const url = inject('redisUrl');
    const one = connectRedis(url, 'standalone', quietLog());
    const two = connectRedis(url, 'standalone', quietLog());
    onTestFinished(() => {
      one.disconnect();
      two.disconnect();
    });
    const conversationId = `conv-${randomUUID()}`;
    const senderId = `sender é ${randomUUID()}`;

    await new RedisFanoutBudget(one, settings, { log: quietLog(), fallback: unused }).spend(conversationId, senderId, 25);

    const elsewhere = new RedisFanoutBudget(two, settings, { log: quietLog(), fallback: unused });
    expect(await elsewhere.waitMs(conversationId, 'someone-else')).toBeGreaterThan(1000);
    const probe = client(url);
    const conversationKey = `{c:${conversationId}}:fb`;
    const senderKey = `{u:${encodeURIComponent(senderId)}}:fb`;
    expect(Number(await probe.hget(conversationKey, 'tokens'))).toBeCloseTo(-15, 0);
    // Full again after (10 - -15) / 10 s = 2.5 s at the conversation's rate, (100 - 75) / 100 s at the sender's.
    const conversationTtl = await probe.pttl(conversationKey);
    expect(conversationTtl).toBeGreaterThan(2000);
    expect(conversationTtl).toBeLessThanOrEqual(2500);
    const senderTtl = await probe.pttl(senderKey);
    expect(senderTtl).toBeGreaterThan(0);
    expect(senderTtl).toBeLessThanOrEqual(250);
  });

  it('fails open within 3 s when nothing listens: budgets in this process, one warning, no ids in it', async () => {
    const port = await closedPort();
    const redis = connectRedis(`redis://127.0.0.1:${port}`, 'standalone', quietLog());
    onTestFinished(() => redis.disconnect());
    const log = quietLog();
    const budget = new RedisFanoutBudget(redis, settings, { log });
    const conversationId = `conv-${randomUUID()}`;
    const senderId = `secret-user-${randomUUID()}`;
    const started = performance.now();

    const before = await budget.waitMs(conversationId, senderId);
    await budget.spend(conversationId, senderId, 10);
    const after = await budget.waitMs(conversationId, senderId);

    expect(performance.now() - started).toBeLessThan(3000);
    expect(before).toBe(0);
    // The in-process twin still counts what this container spent.
    expect(after).toBeGreaterThan(0);
    expect(log.warn).toHaveBeenCalledTimes(1);
    expect(JSON.stringify(log.warn.mock.calls)).not.toMatch(new RegExp(`${senderId}|${conversationId}`));
  });

  it('uses the fallback while the server is dead, and Redis again once it is back', async () => {
    const spawned = await spawnRedis();
    onTestFinished(() => spawned.stop());
    const redis = connectRedis(spawned.url, 'standalone', quietLog());
    onTestFinished(() => redis.disconnect());
    await redisReady(redis, 2000);
    const fallback = countingBudgetFallback(settings);
    const budget = new RedisFanoutBudget(redis, settings, { log: quietLog(), fallback, coolOffMs: 200 });
    const conversationId = `conv-${randomUUID()}`;
    await budget.spend(conversationId, 'alice', 1);
    expect(fallback.calls).toBe(0);

    await spawned.stop();
    expect(await budget.waitMs(conversationId, 'alice')).toBe(0);
    expect(fallback.calls).toBe(1);
  });
});

describe('MemoryFanoutBudget', () => {
  it('holds 10,000 budgets by default, forgetting the least recently used', async () => {
    const budget = new MemoryFanoutBudget(settings);

    for (let i = 0; i < 5_050; i += 1) await budget.spend(`conv-${i}`, `user-${i}`, 1);

    expect(budget.size).toBe(10_000);
  });
});

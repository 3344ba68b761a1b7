import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe, expect, inject, it, onTestFinished, vi } from 'vitest';
import { MemoryTypingGate } from '../../lambdas/adapters/memory-typing-gate.js';
import { connectRedis } from '../../lambdas/adapters/redis-connection.js';
import { RedisTypingGate, typingKey } from '../../lambdas/adapters/redis-typing-gate.js';
import type { TypingGate, TypingState } from '../../lambdas/ports.js';
import { spawnRedis } from '../../local/redis-server.js';
import { typingGateContract } from '../support/contract/typing-gate.js';
import { closedPort } from './net.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const quietLog = () => ({ debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() });

/** A fallback that fails the test if it is ever asked: proves Redis itself answered. */
const unused: TypingGate = {
  shouldSend: async () => {
    throw new Error('the fallback was used: Redis did not answer');
  },
};

/** An in-process gate that counts how often it is asked. */
function countingFallback(windowMs: number): TypingGate & { calls: number } {
  const memory = new MemoryTypingGate({ windowMs });
  const fallback = {
    calls: 0,
    shouldSend: async (conversationId: string, userId: string, state: TypingState, now: number) => {
      fallback.calls += 1;
      return await memory.shouldSend(conversationId, userId, state, now);
    },
  };
  return fallback;
}

function client(url: string): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  onTestFinished(() => redis.disconnect());
  return redis;
}

typingGateContract('RedisTypingGate on redis-server', async (windowMs) => {
  const redis = connectRedis(inject('redisUrl'), 'standalone', quietLog());
  return {
    gate: new RedisTypingGate(redis, { windowMs, log: quietLog(), fallback: unused }),
    close: async () => {
      redis.disconnect();
    },
  };
});

typingGateContract('MemoryTypingGate', async (windowMs) => ({ gate: new MemoryTypingGate({ windowMs }), close: async () => undefined }));

describe('RedisTypingGate on redis-server', () => {
  it("keeps one key per user and conversation, under the conversation's hash tag, expiring after the window", async () => {
    const redis = client(inject('redisUrl'));
    const gate = new RedisTypingGate(redis, { windowMs: 300, log: quietLog(), fallback: unused });
    const conversationId = `conv-${randomUUID()}`;
    const now = Date.UTC(2030, 0, 1);

    await gate.shouldSend(conversationId, 'al{ice}', 'start', now);

    const key = typingKey(conversationId, 'al{ice}');
    expect(key).toBe(`{c:${conversationId}}:typing:al%7Bice%7D`);
    expect(await redis.get(key)).toBe(`start:${now}`);
    const ttl = await redis.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(300);
    await sleep(400);
    expect(await redis.exists(key)).toBe(0);
  });

  it('is one round trip per frame, and none with a window of 0', async () => {
    const spawned = await spawnRedis();
    onTestFinished(() => spawned.stop());
    const redis = client(spawned.url);
    const gate = new RedisTypingGate(redis, { windowMs: 2000, log: quietLog(), fallback: unused });
    const open = new RedisTypingGate(redis, { windowMs: 0, log: quietLog(), fallback: unused });
    const conversationId = `conv-${randomUUID()}`;
    await gate.shouldSend(conversationId, 'warm', 'start', 0);
    const monitor = await client(spawned.url).monitor();
    onTestFinished(() => monitor.disconnect());
    const sent: string[] = [];
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (!source.includes('lua')) sent.push(String(args[0]).toLowerCase());
    });

    for (let i = 0; i < 10; i += 1) await gate.shouldSend(conversationId, 'alice', i % 3 === 0 ? 'stop' : 'start', i);
    for (let i = 0; i < 5; i += 1) await open.shouldSend(conversationId, 'alice', 'start', i);
    await redis.ping();
    await sleep(50);

    expect(sent).toEqual([...Array.from({ length: 10 }, () => 'evalsha'), 'ping']);
  });

  it('rethrows a reply error that is a bug, without falling back', async () => {
    const redis = client(inject('redisUrl'));
    const fallback = countingFallback(2000);
    const gate = new RedisTypingGate(redis, { windowMs: 2000, log: quietLog(), fallback });
    const conversationId = `conv-${randomUUID()}`;
    await redis.hset(typingKey(conversationId, 'alice'), 'not', 'a string');

    await expect(gate.shouldSend(conversationId, 'alice', 'start', 0)).rejects.toThrow(/WRONGTYPE/);
    expect(fallback.calls).toBe(0);
  });
});

describe('RedisTypingGate with Redis down', () => {
  it('coalesces in process within 3 s when nothing listens, and warns once without ids', async () => {
    const port = await closedPort();
    const redis = connectRedis(`redis://127.0.0.1:${port}`, 'standalone', quietLog());
    onTestFinished(() => redis.disconnect());
    const log = quietLog();
    const gate = new RedisTypingGate(redis, { windowMs: 2000, log });
    const conversationId = `secret-conv-${randomUUID()}`;
    const userId = `secret-user-${randomUUID()}`;
    const started = performance.now();

    const got = [
      await gate.shouldSend(conversationId, userId, 'start', 0),
      await gate.shouldSend(conversationId, userId, 'start', 100),
      await gate.shouldSend(conversationId, userId, 'stop', 200),
      await gate.shouldSend(conversationId, userId, 'start', 2500),
    ];

    expect(got).toEqual([true, false, true, true]);
    expect(performance.now() - started).toBeLessThan(3000);
    expect(log.warn).toHaveBeenCalledTimes(1);
    expect(JSON.stringify(log.warn.mock.calls)).not.toContain(userId);
    expect(JSON.stringify(log.warn.mock.calls)).not.toContain(conversationId);
  });
});

describe('MemoryTypingGate', () => {
  it('remembers at most maxKeys pairs, forgetting the least recently sent (whose next frame goes out)', async () => {
    const gate = new MemoryTypingGate({ windowMs: 2000, maxKeys: 3 });
    for (const userId of ['a', 'b', 'c']) await gate.shouldSend('conv', userId, 'start', 0);
    // A frame held back does not make its pair recent.
    expect(await gate.shouldSend('conv', 'a', 'start', 1)).toBe(false);

    await gate.shouldSend('conv', 'd', 'start', 2);

    expect(gate.size).toBe(3);
    expect([await gate.shouldSend('conv', 'b', 'start', 3), await gate.shouldSend('conv', 'c', 'start', 3)]).toEqual([false, false]);
    expect(await gate.shouldSend('conv', 'a', 'start', 3)).toBe(true);
  });

  it('remembers 10,000 pairs by default', async () => {
    const gate = new MemoryTypingGate({ windowMs: 2000 });

    for (let i = 0; i < 10_050; i += 1) await gate.shouldSend('conv', `u${i}`, 'start', 0);

    expect(gate.size).toBe(10_000);
  });
});

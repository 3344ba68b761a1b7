import { Redis } from 'ioredis';
import { describe, expect, inject, it } from 'vitest';
import { MemoryMessageStore } from '../../local/memory-message-store.js';
import { RedisMessageStore } from '../../lambdas/adapters/redis-message-store.js';
import { UnavailableError } from '../../lambdas/errors.js';
import type { RateLimit, StoredMessage } from '../../lambdas/ports.js';
import { messageStoreContract } from '../support/contract/message-store.js';
import { closedPort } from './net.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

messageStoreContract('RedisMessageStore on redis-server', async (settings) => {
  const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: 1 });
  return {
    store: new RedisMessageStore(redis, settings),
    // Redis keeps time itself (EX, TIME in the token bucket): only real time passes for it.
    advance: sleep,
    close: async () => {
      await redis.quit();
    },
  };
});

messageStoreContract('MemoryMessageStore', async (settings) => {
  let now = Date.UTC(2030, 0, 1);
  return {
    store: new MemoryMessageStore(settings, { now: () => now }),
    advance: async (ms) => {
      now += ms;
    },
    close: async () => undefined,
  };
});

describe('RedisMessageStore with Redis down', () => {
  it('rejects every method with UnavailableError', async () => {
    const port = await closedPort();
    const redis = new Redis(`redis://127.0.0.1:${port}`, {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      connectTimeout: 500,
      retryStrategy: () => null,
    });
    const connectionErrors: Error[] = [];
    redis.on('error', (error: Error) => connectionErrors.push(error));
    try {
      const store = new RedisMessageStore(redis, { retentionSeconds: 60, maxPendingPerDevice: 10 });
      const limit: RateLimit = { connectionId: 'c1', perSecond: 10, burst: 10 };
      const device = { userId: 'u', deviceId: 'd' };
      const m: StoredMessage = {
        conversationId: 'down',
        messageId: 'm1',
        seq: 0,
        senderId: 'u',
        senderDevice: 'd',
        clientMessageId: 'cm',
        sentAt: 1,
        sealed: 'v1.a.b',
      };
      const calls: [string, () => Promise<unknown>][] = [
        ['admit', () => store.admit('down', limit)],
        ['registerDevice', () => store.registerDevice('down', device)],
        ['forgetUser', () => store.forgetUser('down', 'u')],
        ['append', () => store.append(m, limit)],
        ['ack', () => store.ack('down', device, ['m1'], limit)],
        ['pending', () => store.pending('down', device, { afterSeq: 0, limit: 10, maxBytes: 1000 }, limit)],
        ['load', () => store.load('down', 'm1')],
      ];
      for (const [name, call] of calls) {
        const error: unknown = await call().then(
          () => new Error(`${name} resolved although Redis is down`),
          (e: unknown) => e,
        );
        expect(error, name).toBeInstanceOf(UnavailableError);
        expect((error as UnavailableError).code, name).toBe('unavailable');
      }
    } finally {
      redis.disconnect();
    }
  });
});

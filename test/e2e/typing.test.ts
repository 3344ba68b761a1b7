import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoMembershipStore } from '../../lambdas/adapters/dynamo-members.js';
import { connectRedis, type RedisConnection } from '../../lambdas/adapters/redis-connection.js';
import { RedisTypingGate } from '../../lambdas/adapters/redis-typing-gate.js';
import type { TypingGate, TypingState } from '../../lambdas/ports.js';
import { startLocalBackend, type LocalBackend } from '../../local/backend.js';
import { ChatClient, eventually } from '../support/chat.js';
import { documentClientOf } from '../support/durability.js';
import { uniqueId } from '../support/env.js';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * Typing end to end through the emulator: the real typing handler and the Redis gate (on the test run's
 * redis-server), with the default window (2 s) and expiry (6 s). The gate is the one the handler would build,
 * given here only so the test can tell when every frame has been decided (typing answers nothing).
 */
let backend: LocalBackend;
let db: DynamoDBDocumentClient;
let members: DynamoMembershipStore;
let redis: RedisConnection;
const open: ChatClient[] = [];
const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
let decided = 0;

beforeAll(async () => {
  redis = connectRedis(inject('redisUrl'), 'standalone', quiet);
  const gate = new RedisTypingGate(redis, { windowMs: 2000, log: quiet });
  const counting: TypingGate = {
    shouldSend: async (conversationId: string, userId: string, state: TypingState, now: number) => {
      const out = await gate.shouldSend(conversationId, userId, state, now);
      decided += 1;
      return out;
    },
  };
  backend = await startLocalBackend({
    redisUrl: inject('redisUrl'),
    env: { LOG_LEVEL: 'SILENT', RATE_LIMIT_PER_SECOND: '200', RATE_LIMIT_BURST: '400' },
    services: { typingGate: counting },
  });
  db = documentClientOf(backend);
  members = new DynamoMembershipStore(db, backend.tables.members);
});

afterAll(async () => {
  await Promise.all(open.splice(0).map((c) => c.close().catch(() => undefined)));
  db.destroy();
  await backend.close();
  redis.disconnect();
});

async function join(conversationId: string, userId: string, deviceId: string): Promise<ChatClient> {
  const client = await ChatClient.connect(backend, conversationId, userId, deviceId);
  open.push(client);
  return client;
}

describe('typing through the emulator', () => {
  it('turns 10 quick starts into 1 typing frame with expiresAt; a stop then arrives at once', async () => {
    const conversationId = uniqueId('typing');
    for (const userId of ['alice', 'bob']) await members.add(conversationId, userId, 0);
    const alice = await join(conversationId, 'alice', 'phone');
    const bob = await join(conversationId, 'bob', 'phone');
    const before = decided;

    for (let i = 0; i < 10; i += 1) await alice.send({ action: 'typing', conversationId });
    const start = await bob.waitFor((f) => f.type === 'typing');
    await eventually(() => decided - before === 10);
    await alice.send({ action: 'typing', conversationId, state: 'stop' });
    const stop = await bob.waitFor((f) => f.type === 'typing', 1500);

    expect(start).toMatchObject({ type: 'typing', conversationId, userId: 'alice', state: 'start' });
    expect(start.expiresAt).toBe(Number(start.at) + 6000);
    expect(stop).toMatchObject({ type: 'typing', conversationId, userId: 'alice', state: 'stop' });
    expect(stop.expiresAt).toBe(stop.at);
    expect(bob.frames().map((f) => f.state)).toEqual(['start', 'stop']);
    // Nothing echoed to the typist.
    expect(alice.frames()).toEqual([]);
  });
});

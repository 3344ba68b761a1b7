import { describe, expect, it } from 'vitest';
import { MemoryTypingGate } from '../../../lambdas/adapters/memory-typing-gate.js';
import { typing } from '../../../lambdas/domain/messaging.js';
import { ForbiddenError } from '../../../lambdas/errors.js';
import type { TypingEventFrame, TypingFrame } from '../../../lambdas/protocol.js';
import { fakeServices } from '../../support/fake-services.js';

const ENDPOINT = 'https://api.example/dev';
const T0 = 1_700_000_000_000;

const frame = (state: 'start' | 'stop', userId?: string): TypingFrame => ({
  action: 'typing',
  conversationId: 'conv',
  state,
  ...(userId === undefined ? {} : { userId }),
});

/**
 * alice (phone, laptop), bob (phone, laptop) and carol (phone) in one conversation, typing through a real
 * in-process gate (its window 2000 ms, a start expiring 6000 ms after it), on a clock the test moves.
 */
function room(overrides: Parameters<typeof fakeServices>[0] = {}) {
  const fake = fakeServices(overrides);
  const gate = new MemoryTypingGate({ windowMs: fake.services.typing.coalesceMs });
  fake.services.typingGate.shouldSend.mockImplementation((conversationId, userId, state, now) => gate.shouldSend(conversationId, userId, state, now));
  let now = T0;
  fake.services.clock.now = () => now;
  const alicePhone = fake.connect('a1', 'alice', 'phone');
  const aliceLaptop = fake.connect('a2', 'alice', 'laptop');
  for (const [connectionId, userId, deviceId] of [['b1', 'bob', 'phone'], ['b2', 'bob', 'laptop'], ['c1', 'carol', 'phone']] as const) {
    fake.connect(connectionId, userId, deviceId);
  }
  return {
    fake,
    alicePhone,
    aliceLaptop,
    /** Moves the clock to T0 + ms. */
    at: (ms: number) => {
      now = T0 + ms;
    },
    /** Posts per recipient connection. */
    postsPerRecipient: () => {
      const counts: Record<string, number> = {};
      for (const post of fake.posted) counts[post.connectionId] = (counts[post.connectionId] ?? 0) + 1;
      return counts;
    },
    frames: () => fake.posted.map((p) => JSON.parse(p.data) as TypingEventFrame),
  };
}

describe('typing, coalesced', () => {
  it('turns a burst of 20 starts in 1 s into 1 post per recipient', async () => {
    // Prepare
    const r = room();
    // Act
    for (let i = 0; i < 20; i += 1) {
      r.at(i * 50);
      await typing(r.fake.services, r.alicePhone, frame('start'), ENDPOINT);
    }
    // Assess
    expect(r.postsPerRecipient()).toEqual({ b1: 1, b2: 1, c1: 1 });
    // A frame held back costs no registry query either.
    expect(r.fake.services.registry.listByConversation).toHaveBeenCalledTimes(1);
  });

  it("coalesces the starts of all of a user's devices together", async () => {
    // Prepare
    const r = room();
    // Act
    r.at(0);
    await typing(r.fake.services, r.alicePhone, frame('start'), ENDPOINT);
    r.at(10);
    await typing(r.fake.services, r.aliceLaptop, frame('start'), ENDPOINT);
    // Assess
    expect(r.postsPerRecipient()).toEqual({ b1: 1, b2: 1, c1: 1 });
  });

  it('sends start, stop, start each at once: a change of state is never held back', async () => {
    // Prepare
    const r = room();
    // Act
    for (const [i, state] of (['start', 'stop', 'start'] as const).entries()) {
      r.at(i * 10);
      await typing(r.fake.services, r.alicePhone, frame(state), ENDPOINT);
    }
    // Assess
    expect(r.postsPerRecipient()).toEqual({ b1: 3, b2: 3, c1: 3 });
    expect(r.frames().filter((f) => f.type === 'typing').map((f) => f.state)).toEqual([...Array(3).fill('start'), ...Array(3).fill('stop'), ...Array(3).fill('start')]);
  });

  it('sends a repeated start again once the window has passed', async () => {
    // Prepare
    const r = room();
    // Act
    for (const ms of [0, 1999, 2000]) {
      r.at(ms);
      await typing(r.fake.services, r.alicePhone, frame('start'), ENDPOINT);
    }
    // Assess
    expect(r.frames().map((f) => f.at - T0)).toEqual([0, 0, 0, 2000, 2000, 2000]);
  });

  it('drops a repeated stop within the window', async () => {
    // Prepare
    const r = room();
    // Act
    for (const [ms, state] of [[0, 'start'], [5, 'stop'], [10, 'stop']] as const) {
      r.at(ms);
      await typing(r.fake.services, r.alicePhone, frame(state), ENDPOINT);
    }
    // Assess
    expect(r.frames().map((f) => `${f.state}@${f.at - T0}`)).toEqual([...Array(3).fill('start@0'), ...Array(3).fill('stop@5')]);
  });
});

describe('typing, expiresAt', () => {
  it('is at + TYPING_EXPIRES_MS for start, and at for stop', async () => {
    // Prepare
    const r = room({ expiresMs: 4500 });
    // Act
    r.at(1234);
    await typing(r.fake.services, r.alicePhone, frame('start'), ENDPOINT);
    r.at(3000);
    await typing(r.fake.services, r.alicePhone, frame('stop'), ENDPOINT);
    // Assess
    const [start, stop] = [r.frames()[0], r.frames()[3]];
    expect(start).toEqual({ type: 'typing', conversationId: 'conv', userId: 'alice', state: 'start', at: T0 + 1234, expiresAt: T0 + 1234 + 4500 });
    expect(stop).toEqual({ type: 'typing', conversationId: 'conv', userId: 'alice', state: 'stop', at: T0 + 3000, expiresAt: T0 + 3000 });
  });
});

describe('typing, above the size limit', () => {
  it('posts nothing, asks the gate nothing and reads no recipients above largeConversationMembers', async () => {
    // Prepare
    const r = room({ largeConversationMembers: 100 });
    r.fake.services.roster.count.mockResolvedValue(101);
    // Act
    const answer = await typing(r.fake.services, r.alicePhone, frame('start'), ENDPOINT);
    // Assess
    expect(answer).toBeUndefined();
    expect(r.fake.posted).toEqual([]);
    expect(r.fake.services.typingGate.shouldSend).not.toHaveBeenCalled();
    expect(r.fake.services.registry.listByConversation).not.toHaveBeenCalled();
    expect(r.fake.services.fanout.enqueue).not.toHaveBeenCalled();
  });

  it('still fans out at exactly the limit', async () => {
    // Prepare
    const r = room({ largeConversationMembers: 100 });
    r.fake.services.roster.count.mockResolvedValue(100);
    // Act
    await typing(r.fake.services, r.alicePhone, frame('start'), ENDPOINT);
    // Assess
    expect(r.postsPerRecipient()).toEqual({ b1: 1, b2: 1, c1: 1 });
  });
});

describe('typing, userId', () => {
  it('refuses a userId that is not the connection\'s, before the gate', async () => {
    // Prepare
    const r = room();
    // Act
    const typed = typing(r.fake.services, r.alicePhone, frame('start', 'bob'), ENDPOINT);
    // Assess
    await expect(typed).rejects.toBeInstanceOf(ForbiddenError);
    expect(r.fake.posted).toEqual([]);
    expect(r.fake.services.typingGate.shouldSend).not.toHaveBeenCalled();
  });

  it("accepts the connection's own userId", async () => {
    // Prepare
    const r = room();
    // Act
    await typing(r.fake.services, r.alicePhone, frame('start', 'alice'), ENDPOINT);
    // Assess
    expect(r.postsPerRecipient()).toEqual({ b1: 1, b2: 1, c1: 1 });
  });
});

import { describe, expect, it } from 'vitest';
import { MemoryFanoutBudget } from '../../../lambdas/adapters/memory-fanout-budget.js';
import { deleteMessage, editMessage } from '../../../lambdas/domain/edits.js';
import { sendMessage, typing } from '../../../lambdas/domain/messaging.js';
import { errorFrameFor, RateLimitedError } from '../../../lambdas/errors.js';
import { fakeServices } from '../../support/fake-services.js';

/**
 * The fan-out budgets in the send path: a send is refused before anything is written while its conversation's or
 * its sender's budget is in debt (`rate_limited`, `retryAfterMs`); an admitted one is delivered in full and its
 * posts spent; typing is dropped instead.
 */
const ENDPOINT = 'https://api.example/dev';
const send = (clientMessageId: string) => ({ action: 'sendMessage' as const, conversationId: 'conv', clientMessageId, body: `body of ${clientMessageId}` });

/** Alice and `others` other users, one live connection each; budgets in memory on the fake's fixed clock. */
function conversation(others: number, budgets = { conversationPerSecond: 10, senderPerSecond: 1000 }) {
  const fake = fakeServices();
  let now = 1_700_000_000_000;
  const budget = new MemoryFanoutBudget(budgets, { clock: { now: () => now } });
  const services = { ...fake.services, fanoutBudget: budget };
  const alice = fake.connect('a', 'alice', 'phone');
  for (let i = 0; i < others; i += 1) fake.connect(`c${i}`, `user${i}`, 'phone');
  return {
    fake,
    services,
    budget,
    alice,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe('fan-out budgets: sendMessage', () => {
  it('delivers a message that takes the budget into debt in full, then refuses the next one before storing it', async () => {
    // Prepare: 10 posts a second for the conversation, 14 recipients.
    const { fake, services, alice } = conversation(14);
    // Act
    await sendMessage(services, alice, send('m1'), ENDPOINT);
    const refused = sendMessage(services, alice, send('m2'), ENDPOINT);
    // Assess: m1 reached all 14 and alice's `sent`; m2 is refused with the wait, and nothing of it is stored or posted.
    await expect(refused).rejects.toBeInstanceOf(RateLimitedError);
    const error = await refused.catch((e: unknown) => e);
    // 15 posts from a budget of 10: 5 of debt and one more post's worth at 10 a second.
    expect(error).toMatchObject({ code: 'rate_limited', retryAfterMs: 600 });
    expect(errorFrameFor(error, 'sendMessage', 'r1')).toEqual({
      type: 'error',
      code: 'rate_limited',
      message: expect.stringMatching(/over its budget: nothing was stored; retry in 600 ms/),
      action: 'sendMessage',
      requestId: 'r1',
      retryAfterMs: 600,
    });
    expect(fake.entries.map((e) => e.clientMessageId)).toEqual(['m1']);
    expect(fake.posted).toHaveLength(15);
  });

  it('stores the resend of a refused message once the wait is over: one copy, nothing lost', async () => {
    // Prepare
    const { fake, services, alice, advance } = conversation(14);
    await sendMessage(services, alice, send('m1'), ENDPOINT);
    const waitMs = await sendMessage(services, alice, send('m2'), ENDPOINT).then(
      () => 0,
      (error: unknown) => (error instanceof RateLimitedError ? (error.retryAfterMs ?? 0) : 0),
    );
    expect(waitMs).toBeGreaterThan(0);
    // Act
    advance(waitMs);
    await sendMessage(services, alice, send('m2'), ENDPOINT);
    // Assess
    expect(fake.entries.map((e) => [e.clientMessageId, e.seq])).toEqual([
      ['m1', 1],
      ['m2', 2],
    ]);
  });

  it('counts a sender’s posts in every conversation', async () => {
    // Prepare: the sender may cause 5 posts a second; the conversations 1000.
    const { fake, services, alice } = conversation(6, { conversationPerSecond: 1000, senderPerSecond: 5 });
    const elsewhere = fake.connect('a', 'alice', 'phone', 'other-conv');
    await sendMessage(services, alice, send('m1'), ENDPOINT);
    // Act
    const refused = sendMessage(services, elsewhere, { ...send('m2'), conversationId: 'other-conv' }, ENDPOINT);
    // Assess
    await expect(refused).rejects.toBeInstanceOf(RateLimitedError);
    expect(fake.entries.filter((e) => e.conversationId === 'other-conv')).toEqual([]);
  });

  it('spends the live recipients and the sender’s `sent`', async () => {
    // Prepare
    const { fake, services, alice } = conversation(3);
    let spent = 0;
    const spending = {
      waitMs: async () => 0,
      spend: async (conversationId: string, senderId: string, posts: number) => {
        expect({ conversationId, senderId }).toEqual({ conversationId: 'conv', senderId: 'alice' });
        spent += posts;
      },
    };
    // Act
    await sendMessage({ ...services, fanoutBudget: spending }, alice, send('m1'), ENDPOINT);
    // Assess
    expect(spent).toBe(4);
    expect(fake.posted).toHaveLength(4);
  });
});

describe('fan-out budgets: edits and deletions', () => {
  it('refuses an edit and a deletion while the budget is in debt, changing nothing', async () => {
    // Prepare
    const { fake, services, alice, budget } = conversation(3);
    const entry = fake.addMessage({ senderId: 'alice', senderDevice: 'phone', body: 'original' });
    await budget.spend('conv', 'alice', 20);
    // Act
    const edit = editMessage(services, alice, { action: 'editMessage', conversationId: 'conv', messageId: entry.messageId, body: 'changed' }, ENDPOINT);
    const removal = deleteMessage(services, alice, { action: 'deleteMessage', conversationId: 'conv', messageId: entry.messageId }, ENDPOINT);
    // Assess
    await expect(edit).rejects.toThrow(/nothing was edited/);
    await expect(removal).rejects.toThrow(/nothing was deleted/);
    expect(fake.services.messages.change).not.toHaveBeenCalled();
    expect(fake.posted).toEqual([]);
  });

  it('spends what an edit posts', async () => {
    // Prepare: 3 other users; the edit goes to them.
    const { fake, services, alice, budget } = conversation(3, { conversationPerSecond: 3, senderPerSecond: 1000 });
    const entry = fake.addMessage({ senderId: 'alice', senderDevice: 'phone', body: 'original' });
    // Act
    await editMessage(services, alice, { action: 'editMessage', conversationId: 'conv', messageId: entry.messageId, body: 'changed' }, ENDPOINT);
    // Assess
    expect(fake.posted).toHaveLength(3);
    expect(await budget.waitMs('conv', 'alice')).toBeGreaterThan(0);
  });
});

describe('fan-out budgets: typing', () => {
  it('drops typing while the budget is in debt, without asking the gate, and spends what it posts otherwise', async () => {
    // Prepare
    const { fake, services, alice, budget, advance } = conversation(2, { conversationPerSecond: 2, senderPerSecond: 1000 });
    const frame = { action: 'typing' as const, conversationId: 'conv', state: 'start' as const };
    // Act: the first goes out (2 posts, the whole budget); the next is dropped.
    await typing(services, alice, frame, ENDPOINT);
    await typing(services, alice, { ...frame, state: 'stop' }, ENDPOINT);
    // Assess
    expect(fake.posted).toHaveLength(2);
    expect(fake.services.typingGate.shouldSend).toHaveBeenCalledTimes(1);
    expect(await budget.waitMs('conv', 'alice')).toBe(500);
    advance(500);
    await typing(services, alice, { ...frame, state: 'stop' }, ENDPOINT);
    expect(fake.posted).toHaveLength(4);
  });
});

import { describe, expect, it } from 'vitest';
import { conversationAfter, cursorAfter, getConversations, markRead } from '../../../lambdas/domain/reads.js';
import { BadRequestError, ForbiddenError } from '../../../lambdas/errors.js';
import type { ConnectionRecord } from '../../../lambdas/ports.js';
import type { GetConversationsFrame, MarkReadFrame } from '../../../lambdas/protocol.js';
import { fakeServices } from '../../support/fake-services.js';

const ENDPOINT = 'https://gateway.example/local';
const markReadFrame = (seq: number, requestId?: string): MarkReadFrame => ({
  action: 'markRead',
  conversationId: 'conv',
  seq,
  ...(requestId === undefined ? {} : { requestId }),
});
const conversationsFrame = (limit = 50, cursor?: string): GetConversationsFrame => ({
  action: 'getConversations',
  limit,
  ...(cursor === undefined ? {} : { cursor }),
});
const aliceRecord: ConnectionRecord = { connectionId: 'a1', userId: 'alice', deviceId: 'phone', connectedAt: 0, expiresAt: 2_000_000_000 };
const postsTo = (fake: ReturnType<typeof fakeServices>, connectionId: string) =>
  fake.posted.filter((p) => p.connectionId === connectionId).map((p) => JSON.parse(p.data) as Record<string, unknown>);

/** alice on two devices and bob on one, all subscribed to `conv`, which holds `count` messages by bob. */
function room(count: number) {
  const fake = fakeServices();
  for (let i = 0; i < count; i += 1) fake.addMessage({ senderId: 'bob', senderDevice: 'laptop', body: `hello ${i}` });
  const phone = fake.connect('a1', 'alice', 'phone');
  fake.connect('a2', 'alice', 'tablet');
  fake.connect('b1', 'bob', 'laptop');
  fake.connect('x1', 'carol', 'phone', 'other');
  return { fake, phone };
}

describe('markRead', () => {
  it('stores the position, answers read with the requestId, and posts read to the other members and the reader\'s other devices', async () => {
    // Prepare
    const { fake, phone } = room(5);
    // Act
    const answer = await markRead(fake.services, phone, markReadFrame(3, 'r-1'), ENDPOINT);
    // Assess
    const read = { type: 'read', conversationId: 'conv', userId: 'alice', seq: 3, at: fake.services.clock.now() };
    expect(answer).toEqual({ ...read, requestId: 'r-1' });
    expect(fake.readSeqOf('conv', 'alice')).toBe(3);
    expect(postsTo(fake, 'a2')).toEqual([read]);
    expect(postsTo(fake, 'b1')).toEqual([read]);
    expect(postsTo(fake, 'a1')).toEqual([]);
    expect(postsTo(fake, 'x1')).toEqual([]);
  });

  it('never moves backwards: a lower or equal seq answers the stored position and posts nothing', async () => {
    // Prepare
    const { fake, phone } = room(5);
    await markRead(fake.services, phone, markReadFrame(4), ENDPOINT);
    const postedBefore = fake.posted.length;
    // Act
    const lower = await markRead(fake.services, phone, markReadFrame(2), ENDPOINT);
    const equal = await markRead(fake.services, phone, markReadFrame(4), ENDPOINT);
    // Assess
    expect(lower).toMatchObject({ type: 'read', seq: 4 });
    expect(equal).toMatchObject({ type: 'read', seq: 4 });
    expect(fake.readSeqOf('conv', 'alice')).toBe(4);
    expect(fake.posted).toHaveLength(postedBefore);
  });

  it('clamps a seq past the end to the last seq, asking the log when the cache says less', async () => {
    // Prepare
    const { fake, phone } = room(5);
    // A stale cache: the log has 5.
    await fake.services.seqCache.raise('conv', 2);
    // Act
    const answer = await markRead(fake.services, phone, markReadFrame(1_000), ENDPOINT);
    // Assess
    expect(answer).toMatchObject({ seq: 5 });
    expect(fake.services.messages.lastSeq).toHaveBeenCalledWith('conv');
    expect(fake.readSeqOf('conv', 'alice')).toBe(5);
  });

  it('does not read the log when the cache already covers the seq', async () => {
    // Prepare
    const { fake, phone } = room(5);
    await fake.services.seqCache.raise('conv', 5);
    // Act
    const answer = await markRead(fake.services, phone, markReadFrame(3), ENDPOINT);
    // Assess
    expect(answer).toMatchObject({ seq: 3 });
    expect(fake.services.messages.lastSeq).not.toHaveBeenCalled();
  });

  it('is forbidden to a user whose membership is gone, and posts nothing', async () => {
    // Prepare
    const { fake, phone } = room(2);
    fake.services.members.get.mockResolvedValue(undefined);
    // Act
    const answer = markRead(fake.services, phone, markReadFrame(1), ENDPOINT);
    // Assess
    await expect(answer).rejects.toBeInstanceOf(ForbiddenError);
    expect(fake.posted).toEqual([]);
  });

  it('still answers when the live delivery fails: the position is stored', async () => {
    // Prepare
    const { fake, phone } = room(3);
    fake.services.registry.listByConversation.mockRejectedValueOnce(new Error('registry down'));
    // Act
    const answer = await markRead(fake.services, phone, markReadFrame(3), ENDPOINT);
    // Assess
    expect(answer).toMatchObject({ type: 'read', seq: 3 });
    expect(fake.readSeqOf('conv', 'alice')).toBe(3);
    expect(fake.logs.some((l) => l.level === 'warn' && l.message === 'read receipt not delivered live')).toBe(true);
  });
});

describe('getConversations', () => {
  it('counts only messages by others after the read position, with lastSeq and lastMessageAt', async () => {
    // Prepare
    const fake = fakeServices();
    const seeded = [
      fake.addMessage({ senderId: 'bob', senderDevice: 'laptop', body: '1' }),
      fake.addMessage({ senderId: 'alice', senderDevice: 'phone', body: '2' }),
      fake.addMessage({ senderId: 'bob', senderDevice: 'laptop', body: '3' }),
      fake.addMessage({ senderId: 'alice', senderDevice: 'phone', body: '4' }),
      fake.addMessage({ senderId: 'carol', senderDevice: 'phone', body: '5' }),
    ];
    fake.join('conv', 'alice', 1);
    fake.join('empty', 'alice');
    fake.join('conv', 'bob', 5);
    // Act
    const answer = await getConversations(fake.services, aliceRecord, { ...conversationsFrame(), requestId: 'r-2' });
    // Assess
    expect(answer).toEqual({
      type: 'conversations',
      requestId: 'r-2',
      conversations: [
        { conversationId: 'conv', lastSeq: 5, readSeq: 1, unreadCount: 2, lastMessageAt: seeded[4]?.sentAt },
        { conversationId: 'empty', lastSeq: 0, readSeq: 0, unreadCount: 0, lastMessageAt: null },
      ],
    });
  });

  it('does not count when nothing is above the read position', async () => {
    // Prepare
    const fake = fakeServices();
    fake.addMessage({ senderId: 'bob', senderDevice: 'laptop', body: '1' });
    fake.join('conv', 'alice', 1);
    // Act
    const answer = await getConversations(fake.services, aliceRecord, conversationsFrame());
    // Assess
    expect(answer.conversations).toEqual([{ conversationId: 'conv', lastSeq: 1, readSeq: 1, unreadCount: 0, lastMessageAt: expect.any(Number) }]);
    expect(fake.services.messages.countByOthers).not.toHaveBeenCalled();
  });

  it('pages with a cursor that is given only while there are more', async () => {
    // Prepare
    const fake = fakeServices();
    for (const id of ['c1', 'c2', 'c3', 'c4', 'c5']) fake.join(id, 'alice');
    // Act
    const first = await getConversations(fake.services, aliceRecord, conversationsFrame(2));
    const second = await getConversations(fake.services, aliceRecord, conversationsFrame(2, first.cursor));
    const third = await getConversations(fake.services, aliceRecord, conversationsFrame(2, second.cursor));
    const exact = await getConversations(fake.services, aliceRecord, conversationsFrame(5));
    // Assess
    const ids = (page: { conversations: { conversationId: string }[] }) => page.conversations.map((c) => c.conversationId);
    expect([ids(first), ids(second), ids(third)]).toEqual([['c1', 'c2'], ['c3', 'c4'], ['c5']]);
    expect(first.cursor).toEqual(expect.any(String));
    expect(third.cursor).toBeUndefined();
    expect(exact.cursor).toBeUndefined();
  });

  it('refuses a cursor it did not make with bad_request, before reading anything', async () => {
    // Prepare
    const fake = fakeServices();
    const forged = ['bm90LWEtY3Vyc29y', cursorAfter('ok').slice(0, -1), Buffer.from('c:has space').toString('base64url')];
    // Act
    const answers = forged.map((cursor) => getConversations(fake.services, aliceRecord, conversationsFrame(10, cursor)));
    // Assess
    for (const answer of answers) await expect(answer).rejects.toBeInstanceOf(BadRequestError);
    expect(fake.services.members.listByUser).not.toHaveBeenCalled();
  });
});

describe('the conversations cursor', () => {
  it('gives back the conversation it was made after, for any valid id', () => {
    // Prepare
    const ids = ['a', '__proto__', 'x'.repeat(128), 'A-b_9'];
    // Act
    const back = ids.map((id) => conversationAfter(cursorAfter(id)));
    // Assess
    expect(back).toEqual(ids);
  });
});

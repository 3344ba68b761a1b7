import { describe, expect, it } from 'vitest';
import { addMember } from '../../../lambdas/domain/membership.js';
import { ack, getUnacked, sendMessage, typing } from '../../../lambdas/domain/messaging.js';
import { MessageCipher } from '../../../lambdas/encryption.js';
import { ConversationFullError, CorruptRecordError, ForbiddenError, PayloadTooLargeError, UnavailableError } from '../../../lambdas/errors.js';
import type { Binding, LogEntry } from '../../../lambdas/ports.js';
import type { AckFrame, GetUnackedFrame } from '../../../lambdas/protocol.js';
import { fakeServices } from '../../support/fake-services.js';

const ENDPOINT = 'https://api.example/dev';

const sendFrame = (clientMessageId = 'cm', body = 'hello') => ({ action: 'sendMessage' as const, conversationId: 'conv', clientMessageId, body });
const ackFrame = (messageIds: string[], upToSeq?: number): AckFrame => ({
  action: 'ack',
  conversationId: 'conv',
  messageIds,
  ...(upToSeq === undefined ? {} : { upToSeq }),
});
const unackedFrame = (limit = 50, afterSeq?: number): GetUnackedFrame => ({
  action: 'getUnacked',
  conversationId: 'conv',
  limit,
  ...(afterSeq === undefined ? {} : { afterSeq }),
});
const seqsOf = (messages: readonly { seq: number }[]) => messages.map((m) => m.seq);
const fieldsOf = (entry: LogEntry) => {
  const { sealed: _sealed, ...fields } = entry;
  return fields;
};

/** Seeds `count` messages from bob's phone and returns them. */
function fromBob(fake: ReturnType<typeof fakeServices>, count: number): LogEntry[] {
  return Array.from({ length: count }, (_, i) => fake.addMessage({ senderId: 'bob', senderDevice: 'phone', body: `bob ${i + 1}` }));
}

describe('addMember', () => {
  it('(re-)adds the member from the conversation\'s last seq', async () => {
    // Prepare
    const fake = fakeServices();
    fromBob(fake, 4);
    // Act
    await addMember(fake.services, 'conv', 'carol', 1000);
    // Assess
    expect(fake.services.members.add).toHaveBeenCalledWith('conv', 'carol', 4);
  });

  it('refuses a new member beyond MAX_CONVERSATION_MEMBERS, writing nothing, and still re-adds a current one', async () => {
    // Prepare: three members, a limit of three.
    const fake = fakeServices();
    const current = ['alice', 'bob', 'carol'];
    fake.services.members.list.mockResolvedValue(current);
    fake.services.members.isMember.mockImplementation(async (_conversationId, userId) => current.includes(userId));
    // Act / Assess
    const refusal = addMember(fake.services, 'conv', 'dave', 3);
    await expect(refusal).rejects.toBeInstanceOf(ConversationFullError);
    await expect(refusal).rejects.toThrow(/already has 3 members \(MAX_CONVERSATION_MEMBERS is 3\)/);
    expect(fake.services.members.add).not.toHaveBeenCalled();
    await addMember(fake.services, 'conv', 'carol', 3);
    expect(fake.services.members.add).toHaveBeenCalledWith('conv', 'carol', 0);
    await addMember(fake.services, 'conv', 'dave', 4);
    expect(fake.services.members.add).toHaveBeenCalledWith('conv', 'dave', 0);
  });
});

describe('typing', () => {
  it('goes to the other users\' connections only', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    fake.connect('a2', 'alice', 'laptop');
    fake.connect('b', 'bob', 'phone');
    // Act
    await typing(fake.services, alice, { action: 'typing', conversationId: 'conv', state: 'stop' }, ENDPOINT);
    // Assess
    expect(fake.posted.map((p) => p.connectionId)).toEqual(['b']);
    expect(JSON.parse(fake.posted[0]?.data ?? '{}')).toMatchObject({ type: 'typing', userId: 'alice', state: 'stop' });
  });

  it('refuses a userId that is not the connection\'s', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    fake.connect('b', 'bob', 'phone');
    // Act
    const typed = typing(fake.services, alice, { action: 'typing', conversationId: 'conv', userId: 'bob', state: 'start' }, ENDPOINT);
    // Assess
    await expect(typed).rejects.toBeInstanceOf(ForbiddenError);
    expect(fake.posted).toHaveLength(0);
  });
});

describe('sendMessage', () => {
  it('stores a sealed body bound to the entry, not the plaintext', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    // Act
    await sendMessage(fake.services, alice, sendFrame('cm', 'hello there'), ENDPOINT);
    // Assess
    const [entry] = fake.entries;
    if (entry === undefined) throw new RangeError('nothing was stored');
    expect(entry).toMatchObject({ conversationId: 'conv', seq: 1, senderId: 'alice', senderDevice: 'phone', clientMessageId: 'cm' });
    expect(entry.sealed).not.toContain('hello there');
    expect(fake.services.sealer.open(fieldsOf(entry), entry.sealed)).toBe('hello there');
  });

  it('looks the recipients up after the message is stored: a device subscribing during the append gets it live', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    const append = fake.services.messages.append.getMockImplementation();
    if (append === undefined) throw new RangeError('the fake log has no append');
    fake.services.messages.append.mockImplementationOnce(async (...args) => {
      // bob's phone subscribes while the message is being written (its resume page would not have it yet).
      fake.connect('b', 'bob', 'phone');
      return append(...args);
    });
    // Act
    await sendMessage(fake.services, alice, sendFrame('cm', 'just in time'), ENDPOINT);
    // Assess
    expect(fake.posted.filter((p) => p.connectionId === 'b').map((p) => JSON.parse(p.data).type)).toEqual(['message']);
  });

  it('posts sent to the sender before any recipient post, and then answers nothing', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    fake.connect('b', 'bob', 'phone');
    fake.connect('c', 'carol', 'phone');
    // Act
    const answer = await sendMessage(fake.services, alice, sendFrame(), ENDPOINT);
    // Assess
    expect(answer).toBeUndefined();
    expect(fake.timeline.slice(0, 2)).toEqual(['start a', 'end a']);
    expect(fake.timeline.slice(2).sort()).toEqual(['end b', 'end c', 'start b', 'start c']);
    expect(JSON.parse(fake.posted[0]?.data ?? '{}')).toEqual({
      type: 'sent',
      conversationId: 'conv',
      clientMessageId: 'cm',
      messageId: fake.entries[0]?.messageId,
      seq: 1,
      sentAt: 1_700_000_000_000,
      duplicate: false,
    });
  });

  it.each(['failed', 'gone'] as const)('answers sent when posting it to the sender comes back %s, and still delivers', async (outcome) => {
    // Prepare
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    fake.connect('b', 'bob', 'phone');
    fake.outcomes.set('a', outcome);
    // Act
    const answer = await sendMessage(fake.services, alice, sendFrame(), ENDPOINT);
    // Assess
    expect(answer).toEqual({
      type: 'sent',
      conversationId: 'conv',
      clientMessageId: 'cm',
      messageId: fake.entries[0]?.messageId,
      seq: 1,
      sentAt: 1_700_000_000_000,
      duplicate: false,
    });
    expect(fake.posted.filter((p) => p.connectionId === 'b').map((p) => JSON.parse(p.data).type)).toEqual(['message']);
  });

  it('delivers the message to the sender\'s other devices and other users, never to the sending device', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = fake.connect('a1', 'alice', 'phone');
    fake.connect('a1-again', 'alice', 'phone');
    fake.connect('a2', 'alice', 'laptop');
    fake.connect('b1', 'bob', 'phone');
    // Act
    await sendMessage(fake.services, alice, sendFrame('cm', 'hi all'), ENDPOINT);
    // Assess
    const messages = fake.posted.filter((p) => JSON.parse(p.data).type === 'message');
    expect(messages.map((p) => p.connectionId).sort()).toEqual(['a2', 'b1']);
    expect(JSON.parse(messages[0]?.data ?? '{}')).toMatchObject({ type: 'message', seq: 1, senderId: 'alice', clientMessageId: 'cm', body: 'hi all' });
    expect(fake.posted.map((p) => p.connectionId)).not.toContain('a1-again');
  });

  it('answers a duplicate clientMessageId with the first ids, duplicate: true, and posts nothing', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    fake.connect('b', 'bob', 'phone');
    await sendMessage(fake.services, alice, sendFrame('cm', 'first'), ENDPOINT);
    const first = fake.entries[0];
    const postsBefore = fake.posted.length;
    // Act
    const answer = await sendMessage(fake.services, alice, sendFrame('cm', 'again'), ENDPOINT);
    // Assess
    expect(answer).toEqual({ type: 'sent', conversationId: 'conv', clientMessageId: 'cm', messageId: first?.messageId, seq: 1, sentAt: first?.sentAt, duplicate: true });
    expect(fake.posted).toHaveLength(postsBefore);
    expect(fake.entries).toHaveLength(1);
  });

  it('carries the frame\'s requestId in sent, posted or answered, and never in the message frames', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    fake.connect('b', 'bob', 'phone');
    // Act
    const posted = await sendMessage(fake.services, alice, { ...sendFrame('cm-1'), requestId: 'req-1' }, ENDPOINT);
    fake.outcomes.set('a', 'failed');
    const answered = await sendMessage(fake.services, alice, { ...sendFrame('cm-2'), requestId: 'req-2' }, ENDPOINT);
    const duplicate = await sendMessage(fake.services, alice, { ...sendFrame('cm-1'), requestId: 'req-3' }, ENDPOINT);
    // Assess
    expect(posted).toBeUndefined();
    expect(JSON.parse(fake.posted[0]?.data ?? '{}')).toMatchObject({ type: 'sent', clientMessageId: 'cm-1', requestId: 'req-1' });
    expect(answered).toMatchObject({ type: 'sent', clientMessageId: 'cm-2', requestId: 'req-2' });
    expect(duplicate).toMatchObject({ type: 'sent', clientMessageId: 'cm-1', duplicate: true, requestId: 'req-3' });
    const messages = fake.posted.filter((p) => JSON.parse(p.data).type === 'message').map((p) => JSON.parse(p.data));
    expect(messages).toHaveLength(2);
    for (const message of messages) expect(message).not.toHaveProperty('requestId');
  });

  it('answers unavailable, telling the sender to resend the same clientMessageId, when the log does not answer', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    fake.connect('b', 'bob', 'phone');
    fake.services.messages.append.mockRejectedValueOnce(new UnavailableError('dynamodb timed out'));
    // Act
    const error = await sendMessage(fake.services, alice, sendFrame(), ENDPOINT).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(UnavailableError);
    expect((error as UnavailableError).message).toMatch(/resend with the same clientMessageId/);
    expect(fake.posted).toHaveLength(0);
  });

  it('lets any other log error through unchanged', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    const corrupt = new CorruptRecordError('idempotency item is malformed');
    fake.services.messages.append.mockRejectedValueOnce(corrupt);
    // Act
    const sent = sendMessage(fake.services, alice, sendFrame(), ENDPOINT);
    // Assess
    await expect(sent).rejects.toBe(corrupt);
    expect(fake.posted).toHaveLength(0);
  });

  it('passes the seq cache\'s value to append as the hint and raises the cache with the stored seq', async () => {
    // Prepare
    const fake = fakeServices();
    fromBob(fake, 4);
    const alice = fake.connect('a', 'alice', 'phone');
    // A stale cache: the log is at 4, the cache says 2.
    fake.services.seqCache.get.mockResolvedValueOnce(2);
    // Act
    await sendMessage(fake.services, alice, sendFrame(), ENDPOINT);
    // Assess
    expect(fake.services.messages.append.mock.calls[0]?.[2]).toBe(2);
    expect(fake.services.seqCache.raise).toHaveBeenCalledWith('conv', 5);
    expect(fake.entries.at(-1)?.seq).toBe(5);
  });

  it('refuses a body too large once encoded and stores nothing', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    // Each control character takes 6 bytes as JSON (\u0001): 32 KiB of them is far over the answer limit.
    const body = '\u0001'.repeat(32 * 1024);
    // Act
    const sent = sendMessage(fake.services, alice, sendFrame('cm', body), ENDPOINT);
    // Assess
    await expect(sent).rejects.toBeInstanceOf(PayloadTooLargeError);
    expect(fake.entries).toHaveLength(0);
  });

  it('still posts sent, and logs, when live delivery fails after storing', async () => {
    // Prepare
    const fake = fakeServices({ fanoutThreshold: 0 });
    const alice = fake.connect('a', 'alice', 'phone');
    fake.connect('b', 'bob', 'phone');
    fake.services.fanout.enqueue.mockRejectedValueOnce(new UnavailableError('sqs down'));
    // Act
    const answer = await sendMessage(fake.services, alice, sendFrame(), ENDPOINT);
    // Assess
    expect(answer).toBeUndefined();
    expect(fake.posted.map((p) => [p.connectionId, JSON.parse(p.data).type])).toEqual([['a', 'sent']]);
    expect(fake.logs.some((l) => l.level === 'warn' && l.message.includes('live delivery failed'))).toBe(true);
  });

  it('still stores and posts sent when the recipients\' lookup fails', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    fake.connect('b', 'bob', 'phone');
    fake.services.registry.listByConversation.mockRejectedValueOnce(new UnavailableError('registry down'));
    // Act
    const answer = await sendMessage(fake.services, alice, sendFrame(), ENDPOINT);
    // Assess
    expect(answer).toBeUndefined();
    expect(fake.entries).toHaveLength(1);
    expect(fake.posted.map((p) => p.connectionId)).toEqual(['a']);
    expect(fake.logs.some((l) => l.level === 'warn' && l.message.includes('recipient lookup failed'))).toBe(true);
  });
});

describe('ack', () => {
  const alicePhone = (fake: ReturnType<typeof fakeServices>): Binding => fake.connect('a', 'alice', 'phone');

  it('compacts in-order acks into ackedThrough and echoes the frame', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = alicePhone(fake);
    const ids = fromBob(fake, 3).map((m) => m.messageId);
    // Act
    const first = await ack(fake.services, alice, ackFrame(ids.slice(0, 1)));
    const afterFirst = fake.positionOf(alice);
    const second = await ack(fake.services, alice, ackFrame(ids.slice(1)));
    // Assess
    expect(first).toEqual({ type: 'acked', conversationId: 'conv', messageIds: ids.slice(0, 1) });
    expect(second).toEqual({ type: 'acked', conversationId: 'conv', messageIds: ids.slice(1) });
    expect(afterFirst).toMatchObject({ ackedThrough: 1, acked: [] });
    expect(fake.positionOf(alice)).toMatchObject({ ackedThrough: 3, acked: [] });
  });

  it('echoes the frame\'s requestId in acked', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = alicePhone(fake);
    const [m1] = fromBob(fake, 1);
    // Act
    const answer = await ack(fake.services, alice, { ...ackFrame([m1?.messageId ?? '']), requestId: 'ack-1' });
    // Assess
    expect(answer).toEqual({ type: 'acked', conversationId: 'conv', messageIds: [m1?.messageId], requestId: 'ack-1' });
  });

  it('keeps out-of-order acks sorted and compacts them when the gap fills', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = alicePhone(fake);
    const ids = fromBob(fake, 5).map((m) => m.messageId);
    const idOf = (seq: number) => ids[seq - 1] ?? '';
    const steps: [number[], { ackedThrough: number; acked: number[] }][] = [
      [[5, 3], { ackedThrough: 0, acked: [3, 5] }],
      [[1], { ackedThrough: 1, acked: [3, 5] }],
      [[2], { ackedThrough: 3, acked: [5] }],
      [[4], { ackedThrough: 5, acked: [] }],
    ];
    for (const [seqs, expected] of steps) {
      // Act
      await ack(fake.services, alice, ackFrame(seqs.map(idOf)));
      // Assess
      expect(fake.positionOf(alice)).toMatchObject(expected);
    }
  });

  it('clamps upToSeq to the conversation\'s last seq, so later messages stay pending', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = alicePhone(fake);
    fromBob(fake, 3);
    // Act
    const answer = await ack(fake.services, alice, ackFrame([], 10));
    fromBob(fake, 1);
    const pending = await getUnacked(fake.services, alice, unackedFrame());
    // Assess
    expect(answer).toEqual({ type: 'acked', conversationId: 'conv', messageIds: [], upToSeq: 10 });
    expect(fake.positionOf(alice)).toMatchObject({ ackedThrough: 3 });
    expect(seqsOf(pending.messages)).toEqual([4]);
  });

  it('walks over the device\'s own messages right above the position, not over its other devices\'', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = alicePhone(fake);
    const [m1] = fromBob(fake, 1);
    fake.addMessage({ senderId: 'alice', senderDevice: 'phone', body: 'mine' });
    const [m3] = fromBob(fake, 1);
    fake.addMessage({ senderId: 'alice', senderDevice: 'laptop', body: 'from my laptop' });
    const [m5] = fromBob(fake, 1);
    // Act
    await ack(fake.services, alice, ackFrame([m1?.messageId ?? '', m3?.messageId ?? '', m5?.messageId ?? '']));
    // Assess: 2 is this device's own (walked over); 4 is the laptop's, pending for the phone.
    expect(fake.positionOf(alice)).toMatchObject({ ackedThrough: 3, acked: [5] });
  });

  it('retries when another container saved the position first, keeping both acks', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = alicePhone(fake);
    const ids = fromBob(fake, 3).map((m) => m.messageId);
    fake.services.positions.save.mockImplementationOnce(async () => {
      // Another container acked seq 3 in the meantime (version 1 → 2): this save loses.
      fake.setPosition(alice, 0, [3], 2);
      return false;
    });
    // Act
    await ack(fake.services, alice, ackFrame([ids[0] ?? '']));
    // Assess
    expect(fake.services.positions.save).toHaveBeenCalledTimes(2);
    expect(fake.positionOf(alice)).toMatchObject({ ackedThrough: 1, acked: [3], version: 3 });
  });

  it('answers unavailable after losing the version race five times', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = alicePhone(fake);
    const [m1] = fromBob(fake, 1);
    fake.services.positions.save.mockResolvedValue(false);
    // Act
    const acked = ack(fake.services, alice, ackFrame([m1?.messageId ?? '']));
    // Assess
    await expect(acked).rejects.toBeInstanceOf(UnavailableError);
    expect(fake.services.positions.save).toHaveBeenCalledTimes(5);
  });

  it('never moves the position backwards: a lower upToSeq changes nothing', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = alicePhone(fake);
    fromBob(fake, 5);
    fake.setPosition(alice, 3, [5]);
    // Act
    const answer = await ack(fake.services, alice, ackFrame([], 1));
    // Assess
    expect(answer).toEqual({ type: 'acked', conversationId: 'conv', messageIds: [], upToSeq: 1 });
    expect(fake.services.positions.save).not.toHaveBeenCalled();
    expect(fake.positionOf(alice)).toMatchObject({ ackedThrough: 3, acked: [5], version: 1 });
  });

  it('ignores unknown ids and ids of other conversations', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = alicePhone(fake);
    fromBob(fake, 1);
    const elsewhere = fake.addMessage({ senderId: 'bob', senderDevice: 'phone', body: 'x', conversationId: 'other' });
    // Act
    const answer = await ack(fake.services, alice, ackFrame(['no-such-id', elsewhere.messageId]));
    // Assess
    expect(answer.messageIds).toEqual(['no-such-id', elsewhere.messageId]);
    expect(fake.services.positions.save).not.toHaveBeenCalled();
    expect(fake.positionOf(alice)).toMatchObject({ ackedThrough: 0, acked: [] });
  });

  it('saves nothing for a device that has no position', async () => {
    // Prepare
    const fake = fakeServices();
    const [m1] = fromBob(fake, 1);
    const stranger: Binding = { connectionId: 'z', userId: 'zed', deviceId: 'tab', conversationId: 'conv' };
    // Act
    const answer = await ack(fake.services, stranger, ackFrame([m1?.messageId ?? '']));
    // Assess
    expect(answer.type).toBe('acked');
    expect(fake.services.positions.save).not.toHaveBeenCalled();
    expect(fake.positionOf(stranger)).toBeUndefined();
  });
});

describe('getUnacked', () => {
  it('is forbidden to a non-member and reads nothing', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    fromBob(fake, 2);
    fake.services.members.get.mockResolvedValueOnce(undefined);
    // Act
    const answer = getUnacked(fake.services, alice, unackedFrame());
    // Assess
    await expect(answer).rejects.toBeInstanceOf(ForbiddenError);
    expect(fake.services.messages.page).not.toHaveBeenCalled();
  });

  it('opens each pending body, ascending', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    const [m1, m2] = fromBob(fake, 2);
    // Act
    const answer = await getUnacked(fake.services, alice, unackedFrame());
    // Assess
    expect(answer).toEqual({
      type: 'unacked',
      conversationId: 'conv',
      hasMore: false,
      messages: [m1, m2].map((m) => ({
        conversationId: 'conv',
        messageId: m?.messageId,
        seq: m?.seq,
        senderId: 'bob',
        clientMessageId: m?.clientMessageId,
        body: `bob ${m?.seq}`,
        sentAt: m?.sentAt,
      })),
    });
  });

  it('echoes the frame\'s requestId in unacked', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    fromBob(fake, 1);
    // Act
    const answer = await getUnacked(fake.services, alice, { ...unackedFrame(), requestId: 'u-1' });
    // Assess
    expect(answer).toMatchObject({ type: 'unacked', requestId: 'u-1' });
    expect(seqsOf(answer.messages)).toEqual([1]);
  });

  it('shows a re-added member only the messages after the re-add', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    fromBob(fake, 4);
    fake.services.members.get.mockResolvedValueOnce({ conversationId: 'conv', userId: 'alice', sinceSeq: 2 });
    // Act
    const answer = await getUnacked(fake.services, alice, unackedFrame());
    // Assess
    expect(seqsOf(answer.messages)).toEqual([3, 4]);
  });

  it('leaves out this device\'s own messages but not the same user\'s other devices\'', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    fromBob(fake, 1);
    fake.addMessage({ senderId: 'alice', senderDevice: 'phone', body: 'from this phone' });
    fake.addMessage({ senderId: 'alice', senderDevice: 'laptop', body: 'from my laptop' });
    // Act
    const answer = await getUnacked(fake.services, alice, unackedFrame());
    // Assess
    expect(seqsOf(answer.messages)).toEqual([1, 3]);
    expect(answer.messages[1]).toMatchObject({ senderId: 'alice', body: 'from my laptop' });
  });

  it('leaves out what was acked, in order or not', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    fromBob(fake, 5);
    fake.setPosition(alice, 1, [3, 5]);
    // Act
    const answer = await getUnacked(fake.services, alice, unackedFrame());
    // Assess
    expect(seqsOf(answer.messages)).toEqual([2, 4]);
  });

  it('pages by limit and afterSeq, with hasMore', async () => {
    // Prepare
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    fromBob(fake, 5);
    // Act
    const first = await getUnacked(fake.services, alice, unackedFrame(2));
    const second = await getUnacked(fake.services, alice, unackedFrame(2, 2));
    const last = await getUnacked(fake.services, alice, unackedFrame(2, 4));
    const all = await getUnacked(fake.services, alice, unackedFrame(5));
    // Assess
    expect([seqsOf(first.messages), first.hasMore]).toEqual([[1, 2], true]);
    expect([seqsOf(second.messages), second.hasMore]).toEqual([[3, 4], true]);
    expect([seqsOf(last.messages), last.hasMore]).toEqual([[5], false]);
    expect([seqsOf(all.messages), all.hasMore]).toEqual([[1, 2, 3, 4, 5], false]);
  });

  it('reads past the device\'s own messages, and says hasMore only when something pending is left', async () => {
    // Prepare: limit 1 reads the log two entries at a time, so the own messages span several reads.
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    fromBob(fake, 1);
    for (let i = 0; i < 4; i += 1) fake.addMessage({ senderId: 'alice', senderDevice: 'phone', body: `mine ${i}` });
    const onlyOwnLeft = await getUnacked(fake.services, alice, unackedFrame(1));
    fromBob(fake, 1);
    // Act
    const pendingLeft = await getUnacked(fake.services, alice, unackedFrame(1));
    const afterFirst = await getUnacked(fake.services, alice, unackedFrame(1, 1));
    // Assess
    expect([seqsOf(onlyOwnLeft.messages), onlyOwnLeft.hasMore]).toEqual([[1], false]);
    expect([seqsOf(pendingLeft.messages), pendingLeft.hasMore]).toEqual([[1], true]);
    expect([seqsOf(afterFirst.messages), afterFirst.hasMore]).toEqual([[6], false]);
  });

  it.each([
    ['sealed under a key the keyring does not hold', (entry: LogEntry) => new MessageCipher([Buffer.from('another-master-key-0123456789abcdef!!', 'utf8')]).seal(fieldsOf(entry), 'SECRET-BODY')],
    ['moved from another message', (entry: LogEntry, services: ReturnType<typeof fakeServices>['services']) => services.sealer.seal({ ...fieldsOf(entry), seq: 99 }, 'SECRET-BODY')],
  ])('answers a record %s as undecryptable, still answers the rest, and logs ids only', async (_label, reseal) => {
    // Prepare
    const fake = fakeServices();
    const alice = fake.connect('a', 'alice', 'phone');
    const [, bad] = fromBob(fake, 3);
    if (bad === undefined) throw new RangeError('no second message');
    bad.sealed = reseal(bad, fake.services);
    // Act
    const answer = await getUnacked(fake.services, alice, unackedFrame());
    // Assess
    expect(answer.messages.map((m) => ('body' in m ? m.body : 'error' in m ? m.error : 'deleted'))).toEqual(['bob 1', 'undecryptable', 'bob 3']);
    expect(answer.messages[1]).toEqual({ conversationId: 'conv', messageId: bad.messageId, seq: 2, error: 'undecryptable' });
    const errors = fake.logs.filter((l) => l.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]?.fields).toMatchObject({ conversationId: 'conv', messageId: bad.messageId, seq: 2 });
    const logged = JSON.stringify(fake.logs);
    expect(logged).not.toContain('SECRET-BODY');
    expect(logged).not.toContain(bad.sealed);
    expect(logged).not.toContain('bob 1');
  });

  it('registers a device without a position at the last seq: nothing sent before it is pending', async () => {
    // Prepare
    const fake = fakeServices();
    fromBob(fake, 2);
    const tablet: Binding = { connectionId: 't', userId: 'alice', deviceId: 'tablet', conversationId: 'conv' };
    // Act
    const before = await getUnacked(fake.services, tablet, unackedFrame());
    fromBob(fake, 1);
    const after = await getUnacked(fake.services, tablet, unackedFrame());
    // Assess
    expect(before.messages).toEqual([]);
    expect(fake.positionOf(tablet)).toMatchObject({ ackedThrough: 2 });
    expect(seqsOf(after.messages)).toEqual([3]);
  });
});

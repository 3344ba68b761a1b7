import { describe, expect, it } from 'vitest';
import { getHistory } from '../../../lambdas/domain/messaging.js';
import { MessageCipher } from '../../../lambdas/encryption.js';
import { ForbiddenError } from '../../../lambdas/errors.js';
import type { Binding, LogEntry } from '../../../lambdas/ports.js';
import type { GetHistoryFrame } from '../../../lambdas/protocol.js';
import { fakeServices } from '../../support/fake-services.js';

const historyFrame = (range: { limit?: number; beforeSeq?: number; afterSeq?: number } = {}): GetHistoryFrame => ({
  action: 'getHistory',
  conversationId: 'conv',
  limit: range.limit ?? 50,
  ...(range.beforeSeq === undefined ? {} : { beforeSeq: range.beforeSeq }),
  ...(range.afterSeq === undefined ? {} : { afterSeq: range.afterSeq }),
});
const seqsOf = (messages: readonly { seq: number }[]) => messages.map((m) => m.seq);

/** A conversation of `count` messages, alternating bob's and alice's phone (alice is the reader). */
function conversation(count: number, body: (seq: number) => string = (seq) => `message ${seq}`) {
  const fake = fakeServices();
  const alice: Binding = fake.connect('a', 'alice', 'phone');
  const entries: LogEntry[] = [];
  for (let seq = 1; seq <= count; seq += 1) {
    entries.push(fake.addMessage({ senderId: seq % 2 === 0 ? 'alice' : 'bob', senderDevice: 'phone', body: body(seq) }));
  }
  return { fake, alice, entries };
}

describe('getHistory', () => {
  it('is forbidden to a non-member and reads nothing', async () => {
    // Prepare
    const { fake, alice } = conversation(3);
    fake.services.members.get.mockResolvedValueOnce(undefined);
    // Act
    const answer = getHistory(fake.services, alice, historyFrame());
    // Assess
    await expect(answer).rejects.toBeInstanceOf(ForbiddenError);
    expect(fake.services.messages.page).not.toHaveBeenCalled();
  });

  it('answers the newest page first by default, ascending, with everyone\'s messages opened', async () => {
    // Prepare
    const { fake, alice, entries } = conversation(5);
    // Act
    const answer = await getHistory(fake.services, alice, historyFrame({ limit: 2 }));
    // Assess
    expect(answer).toEqual({
      type: 'history',
      conversationId: 'conv',
      hasMore: true,
      messages: entries.slice(3).map((e) => ({
        conversationId: 'conv',
        messageId: e.messageId,
        seq: e.seq,
        senderId: e.senderId,
        clientMessageId: e.clientMessageId,
        body: `message ${e.seq}`,
        sentAt: e.sentAt,
      })),
    });
  });

  it('echoes the frame\'s requestId', async () => {
    // Prepare
    const { fake, alice } = conversation(2);
    // Act
    const answer = await getHistory(fake.services, alice, { ...historyFrame(), requestId: 'h-1' });
    // Assess
    expect(answer).toMatchObject({ type: 'history', requestId: 'h-1' });
    expect(seqsOf(answer.messages)).toEqual([1, 2]);
  });

  it('pages back with beforeSeq until hasMore is false', async () => {
    // Prepare
    const { fake, alice } = conversation(5);
    // Act
    const middle = await getHistory(fake.services, alice, historyFrame({ limit: 2, beforeSeq: 4 }));
    const oldest = await getHistory(fake.services, alice, historyFrame({ limit: 2, beforeSeq: 2 }));
    // Assess
    expect([seqsOf(middle.messages), middle.hasMore]).toEqual([[2, 3], true]);
    expect([seqsOf(oldest.messages), oldest.hasMore]).toEqual([[1], false]);
  });

  it('pages forward with afterSeq from the old end', async () => {
    // Prepare
    const { fake, alice } = conversation(5);
    // Act
    const next = await getHistory(fake.services, alice, historyFrame({ limit: 2, afterSeq: 1 }));
    const newest = await getHistory(fake.services, alice, historyFrame({ limit: 2, afterSeq: 3 }));
    // Assess
    expect([seqsOf(next.messages), next.hasMore]).toEqual([[2, 3], true]);
    expect([seqsOf(newest.messages), newest.hasMore]).toEqual([[4, 5], false]);
  });

  it('shows a re-added member the whole history, not only what came after the re-add', async () => {
    // Prepare
    const { fake, alice } = conversation(4);
    fake.services.members.get.mockResolvedValueOnce({ conversationId: 'conv', userId: 'alice', sinceSeq: 3 });
    // Act
    const answer = await getHistory(fake.services, alice, historyFrame());
    // Assess
    expect(seqsOf(answer.messages)).toEqual([1, 2, 3, 4]);
  });

  it('keeps the newest messages when the page does not fit in one answer, and says hasMore', async () => {
    // Prepare: about 30 KB each, so four fit under 128 KB.
    const { fake, alice } = conversation(8, (seq) => `${seq}`.padEnd(30_000, '.'));
    // Act
    const newest = await getHistory(fake.services, alice, historyFrame());
    const oldest = await getHistory(fake.services, alice, historyFrame({ afterSeq: 0 }));
    // Assess
    expect([seqsOf(newest.messages), newest.hasMore]).toEqual([[5, 6, 7, 8], true]);
    expect([seqsOf(oldest.messages), oldest.hasMore]).toEqual([[1, 2, 3, 4], true]);
    expect(Buffer.byteLength(JSON.stringify(newest))).toBeLessThan(128 * 1024);
  });

  it('answers an entry that does not open as undecryptable and the rest as usual', async () => {
    // Prepare
    const { fake, alice, entries } = conversation(3);
    const bad = entries[0];
    if (bad === undefined) throw new RangeError('no first message');
    const { sealed: _sealed, ...fields } = bad;
    bad.sealed = new MessageCipher([Buffer.from('some-other-master-key-0123456789abcdef', 'utf8')]).seal(fields, 'hidden');
    // Act
    const answer = await getHistory(fake.services, alice, historyFrame());
    // Assess
    expect(answer.messages[0]).toEqual({ conversationId: 'conv', messageId: bad.messageId, seq: 1, error: 'undecryptable' });
    expect(answer.messages.slice(1).map((m) => ('body' in m ? m.body : 'error' in m ? m.error : 'deleted'))).toEqual(['message 2', 'message 3']);
    expect(fake.logs.filter((l) => l.level === 'error').map((l) => l.fields?.messageId)).toEqual([bad.messageId]);
  });
});

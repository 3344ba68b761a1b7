import { describe, expect, it } from 'vitest';
import { runFanoutJob } from '../../../lambdas/domain/delivery.js';
import { deleteMessage, editMessage } from '../../../lambdas/domain/edits.js';
import { getHistory, getUnacked } from '../../../lambdas/domain/messaging.js';
import { ForbiddenError, NotFoundError, PayloadTooLargeError } from '../../../lambdas/errors.js';
import type { FanoutJob } from '../../../lambdas/ports.js';
import type { DeleteMessageFrame, EditMessageFrame } from '../../../lambdas/protocol.js';
import { fakeServices } from '../../support/fake-services.js';

const ENDPOINT = 'https://example.test/stage';
const NOW = 1_700_000_000_000;

const editFrame = (messageId: string, body: string, requestId?: string): EditMessageFrame => ({
  action: 'editMessage',
  conversationId: 'conv',
  messageId,
  body,
  ...(requestId === undefined ? {} : { requestId }),
});
const deleteFrame = (messageId: string): DeleteMessageFrame => ({ action: 'deleteMessage', conversationId: 'conv', messageId });

/** alice (phone and laptop) and bob live in `conv`; alice's phone sent one message. */
function chat(overrides: Parameters<typeof fakeServices>[0] = {}) {
  const fake = fakeServices(overrides);
  const phone = fake.connect('alice-phone', 'alice', 'phone');
  fake.connect('alice-laptop', 'alice', 'laptop');
  const bob = fake.connect('bob-phone', 'bob', 'phone');
  const message = fake.addMessage({ senderId: 'alice', senderDevice: 'phone', body: 'helo' });
  const postedTo = () => fake.posted.map((p) => [p.connectionId, JSON.parse(p.data)] as const);
  return { fake, phone, bob, message, postedTo };
}

describe('editMessage', () => {
  it('replaces the body under the same seq, answers `edited` and tells every other live connection', async () => {
    // Prepare
    const { fake, phone, message, postedTo } = chat();
    // Act
    const answer = await editMessage(fake.services, phone, editFrame(message.messageId, 'hello', 'e-1'), ENDPOINT);
    // Assess
    const edited = { conversationId: 'conv', messageId: message.messageId, seq: message.seq, body: 'hello', editedAt: NOW };
    expect(answer).toEqual({ type: 'edited', ...edited, requestId: 'e-1' });
    expect(postedTo().sort()).toEqual([
      ['alice-laptop', { type: 'messageEdited', ...edited }],
      ['bob-phone', { type: 'messageEdited', ...edited }],
    ]);
    expect(fake.entries).toHaveLength(1);
    expect(fake.entries[0]).toMatchObject({ seq: message.seq, editedAt: NOW });
  });

  it('makes getHistory and getUnacked return the edited version, with editedAt', async () => {
    // Prepare
    const { fake, phone, bob, message } = chat();
    // Act
    await editMessage(fake.services, phone, editFrame(message.messageId, 'hello'), ENDPOINT);
    const history = await getHistory(fake.services, bob, { action: 'getHistory', conversationId: 'conv', limit: 50 });
    const unacked = await getUnacked(fake.services, bob, { action: 'getUnacked', conversationId: 'conv', limit: 50 });
    // Assess
    for (const page of [history, unacked]) {
      expect(page.messages).toEqual([
        { conversationId: 'conv', messageId: message.messageId, seq: 1, senderId: 'alice', clientMessageId: message.clientMessageId, body: 'hello', sentAt: message.sentAt, editedAt: NOW },
      ]);
    }
  });

  it('binds the edited body to its editedAt: the stored body does not open for another editedAt', async () => {
    // Prepare
    const { fake, phone, message } = chat();
    await editMessage(fake.services, phone, editFrame(message.messageId, 'hello'), ENDPOINT);
    const stored = fake.entries[0];
    if (stored === undefined) throw new RangeError('no entry');
    const { sealed, ...fields } = stored;
    // Act
    const opened = fake.services.sealer.open(fields, sealed);
    const replayed = () => fake.services.sealer.open({ ...fields, editedAt: NOW - 1 }, sealed);
    // Assess
    expect(opened).toBe('hello');
    expect(replayed).toThrow(/authentication/);
  });

  it('is forbidden to anyone but the sender, and changes and posts nothing', async () => {
    // Prepare
    const { fake, bob, message } = chat();
    // Act
    const answer = editMessage(fake.services, bob, editFrame(message.messageId, 'not yours'), ENDPOINT);
    // Assess
    await expect(answer).rejects.toBeInstanceOf(ForbiddenError);
    expect(fake.services.messages.change).not.toHaveBeenCalled();
    expect(fake.posted).toEqual([]);
  });

  it('answers not_found for an id the conversation does not hold', async () => {
    // Prepare
    const { fake, phone } = chat();
    // Act
    const answer = editMessage(fake.services, phone, editFrame('no-such-id', 'x'), ENDPOINT);
    // Assess
    await expect(answer).rejects.toBeInstanceOf(NotFoundError);
  });

  it('is idempotent: the same edit again writes nothing, tells no one and answers the same editedAt', async () => {
    // Prepare
    const { fake, phone, message } = chat();
    const first = await editMessage(fake.services, phone, editFrame(message.messageId, 'hello'), ENDPOINT);
    fake.posted.length = 0;
    // Act
    const again = await editMessage(fake.services, phone, editFrame(message.messageId, 'hello'), ENDPOINT);
    // Assess
    expect(again).toEqual(first);
    expect(fake.services.messages.change).toHaveBeenCalledTimes(1);
    expect(fake.posted).toEqual([]);
  });

  it('gives a second edit a later editedAt even when the clock has not moved', async () => {
    // Prepare
    const { fake, phone, message } = chat();
    await editMessage(fake.services, phone, editFrame(message.messageId, 'one'), ENDPOINT);
    // Act
    const second = await editMessage(fake.services, phone, editFrame(message.messageId, 'two'), ENDPOINT);
    // Assess
    expect(second.editedAt).toBe(NOW + 1);
  });

  it('refuses a body whose frame would not fit, before writing', async () => {
    // Prepare
    const { fake, phone, message } = chat();
    // Act
    const answer = editMessage(fake.services, phone, editFrame(message.messageId, '\u0001'.repeat(30_000)), ENDPOINT);
    // Assess
    await expect(answer).rejects.toBeInstanceOf(PayloadTooLargeError);
    expect(fake.services.messages.change).not.toHaveBeenCalled();
  });

  it('queues a large fan-out as ids only: the job carries no body, and the worker sends the current version', async () => {
    // Prepare
    const { fake, phone, message } = chat({ fanoutThreshold: 1 });
    // Act
    await editMessage(fake.services, phone, editFrame(message.messageId, 'secret text'), ENDPOINT);
    const jobs = fake.services.fanout.enqueue.mock.calls.flatMap(([queued]) => [...queued]);
    await editMessage(fake.services, phone, editFrame(message.messageId, 'newer text'), ENDPOINT);
    fake.posted.length = 0;
    const [job] = jobs;
    if (job === undefined) throw new RangeError('nothing queued');
    const report = await runFanoutJob(fake.services, job);
    // Assess
    expect(job).toEqual({ kind: 'edited', conversationId: 'conv', seq: 1, messageId: message.messageId, connectionIds: ['alice-laptop', 'bob-phone'] });
    expect(JSON.stringify(jobs)).not.toContain('secret text');
    expect(report.delivered).toBe(2);
    expect(fake.posted.map((p) => JSON.parse(p.data))).toEqual([
      expect.objectContaining({ type: 'messageEdited', body: 'newer text', editedAt: NOW + 1 }),
      expect.objectContaining({ type: 'messageEdited', body: 'newer text', editedAt: NOW + 1 }),
    ]);
  });
});

describe('deleteMessage', () => {
  it('leaves a tombstone with the same seq, erases the body and tells the other live connections', async () => {
    // Prepare
    const { fake, phone, message, postedTo } = chat();
    // Act
    const answer = await deleteMessage(fake.services, phone, deleteFrame(message.messageId), ENDPOINT);
    // Assess
    const ids = { conversationId: 'conv', messageId: message.messageId, seq: 1 };
    expect(answer).toEqual({ type: 'deleted', ...ids });
    expect(fake.entries[0]).toMatchObject({ seq: 1, deleted: true, sealed: '' });
    expect(postedTo().sort()).toEqual([
      ['alice-laptop', { type: 'messageDeleted', ...ids }],
      ['bob-phone', { type: 'messageDeleted', ...ids }],
    ]);
  });

  it('shows the tombstone (no body) in history and in the pending page', async () => {
    // Prepare
    const { fake, phone, bob, message } = chat();
    // Act
    await deleteMessage(fake.services, phone, deleteFrame(message.messageId), ENDPOINT);
    const history = await getHistory(fake.services, bob, { action: 'getHistory', conversationId: 'conv', limit: 50 });
    const unacked = await getUnacked(fake.services, bob, { action: 'getUnacked', conversationId: 'conv', limit: 50 });
    // Assess
    const tombstone = { conversationId: 'conv', messageId: message.messageId, seq: 1, senderId: 'alice', clientMessageId: message.clientMessageId, sentAt: message.sentAt, deleted: true };
    expect(history.messages).toEqual([tombstone]);
    expect(unacked.messages).toEqual([tombstone]);
  });

  it('is idempotent: deleting again answers `deleted` and posts nothing more', async () => {
    // Prepare
    const { fake, phone, message } = chat();
    await deleteMessage(fake.services, phone, deleteFrame(message.messageId), ENDPOINT);
    fake.posted.length = 0;
    // Act
    const again = await deleteMessage(fake.services, phone, deleteFrame(message.messageId), ENDPOINT);
    // Assess
    expect(again).toEqual({ type: 'deleted', conversationId: 'conv', messageId: message.messageId, seq: 1 });
    expect(fake.posted).toEqual([]);
  });

  it('is forbidden to anyone but the sender, and the message stays', async () => {
    // Prepare
    const { fake, bob, message } = chat();
    // Act
    const answer = deleteMessage(fake.services, bob, deleteFrame(message.messageId), ENDPOINT);
    // Assess
    await expect(answer).rejects.toBeInstanceOf(ForbiddenError);
    expect(fake.entries[0]?.deleted).toBeUndefined();
  });

  it('makes a later edit not_found', async () => {
    // Prepare
    const { fake, phone, message } = chat();
    await deleteMessage(fake.services, phone, deleteFrame(message.messageId), ENDPOINT);
    // Act
    const answer = editMessage(fake.services, phone, editFrame(message.messageId, 'back'), ENDPOINT);
    // Assess
    await expect(answer).rejects.toBeInstanceOf(NotFoundError);
  });

  it('keeps a queued message or edit of a since-deleted message from going out', async () => {
    // Prepare
    const { fake, phone, message } = chat();
    const ids = { conversationId: 'conv', seq: 1, messageId: message.messageId, connectionIds: ['bob-phone'] };
    await deleteMessage(fake.services, phone, deleteFrame(message.messageId), ENDPOINT);
    fake.posted.length = 0;
    // Act
    const reports = await Promise.all((['message', 'edited'] as const).map((kind) => runFanoutJob(fake.services, { kind, ...ids } satisfies FanoutJob)));
    // Assess
    expect(reports.map((r) => r.delivered)).toEqual([0, 0]);
    expect(fake.posted).toEqual([]);
  });
});

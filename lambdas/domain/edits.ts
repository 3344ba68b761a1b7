import { DecryptionError, ForbiddenError, NotFoundError, errorSummary } from '../errors.js';
import type { Binding, LogEntry, Services } from '../ports.js';
import type {
  DeleteMessageFrame,
  DeletedFrame,
  EditMessageFrame,
  EditedFrame,
  MessageDeletedFrame,
  MessageEditedFrame,
} from '../protocol.js';
import { assertFanoutBudget, spendFanoutBudget, type BudgetServices } from './budgets.js';
import { deliver, liveRecipients, type DeliveryServices } from './delivery.js';
import { assertBodyFits, messageDataOf } from './message-frames.js';
import { requestIdOf } from './request-id.js';

export type DeleteServices = DeliveryServices & BudgetServices & Pick<Services, 'clock' | 'registry' | 'roster' | 'messages'>;
/** An edit also seals the new body. */
export type EditServices = DeleteServices & Pick<Services, 'sealer'>;

/**
 * The sender's own, live message of this conversation, found by id. A message of someone else is `forbidden`;
 * one that does not exist (or is past the retention) is `not_found`.
 */
async function ownMessage(services: Pick<Services, 'messages'>, binding: Binding, messageId: string): Promise<LogEntry> {
  const seq = (await services.messages.seqsOf(binding.conversationId, [messageId])).get(messageId);
  const entry = seq === undefined ? undefined : await services.messages.get(binding.conversationId, seq);
  if (entry === undefined || entry.messageId !== messageId) throw new NotFoundError('no such message in this conversation');
  if (entry.senderId !== binding.userId) throw new ForbiddenError('only the sender may change a message');
  return entry;
}

/** The body as stored now, or undefined when it does not open (then any edit replaces it). */
function currentBody(services: Pick<Services, 'sealer' | 'log'>, entry: LogEntry): string | undefined {
  try {
    return messageDataOf(services, entry).body;
  } catch (error) {
    if (!(error instanceof DecryptionError)) throw error;
    services.log.warn('edited message did not open; replacing its body', { messageId: entry.messageId, error: errorSummary(error) });
    return undefined;
  }
}

/**
 * `editMessage`: the sender replaces the body of their message; it keeps its seq and gets `editedAt`. The new
 * body is sealed for that `editedAt` and stored in one conditional write (still that message, not deleted).
 * Repeating an edit with the body it already has changes nothing and tells no one. Live members' connections
 * (and the sender's other devices) get `messageEdited`; `getHistory`/`getUnacked` return the edited version.
 */
export async function editMessage(services: EditServices, binding: Binding, frame: EditMessageFrame, endpoint: string): Promise<EditedFrame> {
  const entry = await ownMessage(services, binding, frame.messageId);
  if (entry.deleted === true) throw new NotFoundError('the message was deleted');
  assertBodyFits(entry, frame.body);
  const answer = (editedAt: number): EditedFrame => ({
    type: 'edited',
    conversationId: entry.conversationId,
    messageId: entry.messageId,
    seq: entry.seq,
    body: frame.body,
    editedAt,
    ...requestIdOf(frame),
  });
  if (currentBody(services, entry) === frame.body) return answer(entry.editedAt ?? entry.sentAt);
  await assertFanoutBudget(services, binding, 'edited');

  // Strictly after the version it replaces, so clients can keep the latest of two edits by editedAt.
  const editedAt = Math.max(services.clock.now(), (entry.editedAt ?? entry.sentAt) + 1);
  const { sealed: _sealed, ...fields } = entry;
  const sealed = services.sealer.seal({ ...fields, editedAt }, frame.body);
  const outcome = await services.messages.change(entry.conversationId, entry.seq, entry, { kind: 'edit', editedAt, sealed });
  if (outcome.status !== 'changed') throw new NotFoundError('the message was deleted');

  const pushed: MessageEditedFrame = {
    type: 'messageEdited',
    conversationId: entry.conversationId,
    messageId: entry.messageId,
    seq: entry.seq,
    body: frame.body,
    editedAt,
  };
  await tellOthers(services, binding, endpoint, {
    kind: 'edited',
    conversationId: entry.conversationId,
    seq: entry.seq,
    messageId: entry.messageId,
    frame: JSON.stringify(pushed),
  });
  return answer(editedAt);
}

/**
 * `deleteMessage`: the sender takes their message back. It stays in the log as a tombstone with the same seq
 * (numbering keeps no holes) and its sealed body is erased at rest. Idempotent: deleting a deleted message
 * answers `deleted` again and tells no one. Live members' connections get `messageDeleted`.
 */
export async function deleteMessage(services: DeleteServices, binding: Binding, frame: DeleteMessageFrame, endpoint: string): Promise<DeletedFrame> {
  const entry = await ownMessage(services, binding, frame.messageId);
  const ids = { conversationId: entry.conversationId, messageId: entry.messageId, seq: entry.seq };
  const answer: DeletedFrame = { type: 'deleted', ...ids, ...requestIdOf(frame) };
  if (entry.deleted === true) return answer;
  await assertFanoutBudget(services, binding, 'deleted');
  const outcome = await services.messages.change(entry.conversationId, entry.seq, entry, { kind: 'delete', deletedAt: services.clock.now() });
  if (outcome.status === 'missing') throw new NotFoundError('no such message in this conversation');
  // 'deleted': a concurrent delete of the same message won, and it tells the members.
  if (outcome.status === 'changed') {
    const pushed: MessageDeletedFrame = { type: 'messageDeleted', ...ids };
    await tellOthers(services, binding, endpoint, { kind: 'event', frame: pushed });
  }
  return answer;
}

/**
 * Every live subscription of the conversation but the connection that made the change (it gets the answer):
 * the other members and the sender's other devices. Best effort: the change is stored, and history shows it.
 */
async function tellOthers(
  services: DeleteServices,
  binding: Binding,
  endpoint: string,
  delivery: Parameters<typeof deliver>[2],
): Promise<void> {
  try {
    const subscriptions = await services.registry.listByConversation(binding.conversationId);
    const others = subscriptions.filter((s) => s.connectionId !== binding.connectionId);
    const recipients = await liveRecipients(services, binding.conversationId, others, endpoint);
    await spendFanoutBudget(services, binding, recipients.length);
    await deliver(services, endpoint, delivery, recipients);
  } catch (error) {
    services.log.warn('live delivery of a change failed; history has it', { conversationId: binding.conversationId, error: errorSummary(error) });
  }
}

import type { ChangeOutcome, LogChange, LogEntry } from '../../lambdas/ports.js';

/**
 * `MessageLog.change` over an in-memory list of entries (the fakes of test/support): the same conditions as the
 * DynamoDB log — that message, that sender, not deleted — and a delete erases the sealed body.
 */
export function changeEntry(
  entries: LogEntry[],
  conversationId: string,
  seq: number,
  by: { messageId: string; senderId: string },
  change: LogChange,
): ChangeOutcome {
  const index = entries.findIndex((e) => e.conversationId === conversationId && e.seq === seq);
  const entry = entries[index];
  if (entry === undefined || entry.messageId !== by.messageId || entry.senderId !== by.senderId) return { status: 'missing' };
  if (entry.deleted === true) return { status: 'deleted', entry };
  let next: LogEntry;
  if (change.kind === 'edit') {
    next = { ...entry, editedAt: change.editedAt, sealed: change.sealed };
  } else {
    const { editedAt: _editedAt, ...kept } = entry;
    next = { ...kept, deleted: true, sealed: '' };
  }
  entries[index] = next;
  return { status: 'changed', entry: next };
}

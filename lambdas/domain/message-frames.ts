import { DecryptionError, PayloadTooLargeError, errorSummary } from '../errors.js';
import type { LogEntry, Log, Sealer } from '../ports.js';
import { MAX_ANSWER_BYTES, frameBytes, type DeletedMessageData, type MessageData, type MessageFrame, type PageEntry } from '../protocol.js';

/** The fields a sealed body is bound to: the entry without its body. */
function sealedFieldsOf(entry: LogEntry) {
  const { sealed: _sealed, ...fields } = entry;
  return fields;
}

/** The wire form of a log entry: the body opened with the conversation key. Throws DecryptionError. */
export function messageDataOf(services: { sealer: Sealer }, entry: LogEntry): MessageData {
  return {
    conversationId: entry.conversationId,
    messageId: entry.messageId,
    seq: entry.seq,
    senderId: entry.senderId,
    clientMessageId: entry.clientMessageId,
    body: services.sealer.open(sealedFieldsOf(entry), entry.sealed),
    sentAt: entry.sentAt,
    ...(entry.editedAt === undefined ? {} : { editedAt: entry.editedAt }),
  };
}

/** A deleted message as clients get it: its ids and seq, no body. */
export function tombstoneOf(entry: LogEntry): DeletedMessageData {
  return {
    conversationId: entry.conversationId,
    messageId: entry.messageId,
    seq: entry.seq,
    senderId: entry.senderId,
    clientMessageId: entry.clientMessageId,
    sentAt: entry.sentAt,
    deleted: true,
  };
}

/**
 * Refuses a body whose `message` frame (measured with the widest seq and an `editedAt`) would not fit API
 * Gateway's limit once encoded, so the delivered frame, and a page of one, always fit.
 */
export function assertBodyFits(fields: Pick<MessageData, 'conversationId' | 'messageId' | 'senderId' | 'clientMessageId' | 'sentAt'>, body: string): void {
  const widest: MessageFrame = { type: 'message', ...fields, seq: Number.MAX_SAFE_INTEGER, body, editedAt: Number.MAX_SAFE_INTEGER };
  if (frameBytes(widest) > MAX_ANSWER_BYTES - 256) {
    throw new PayloadTooLargeError('message too large once encoded; send a shorter body');
  }
}

export function messageFrameOf(services: { sealer: Sealer }, entry: LogEntry): MessageFrame {
  return { type: 'message', ...messageDataOf(services, entry) };
}

/**
 * A page entry: the message, or — when its body does not open (a key missing from the keyring, a damaged
 * record) — its ids marked `undecryptable`, so one bad record never blocks the rest. Logged by id only.
 */
export function pageEntryOf(services: { sealer: Sealer; log: Log }, entry: LogEntry): PageEntry {
  if (entry.deleted === true) return tombstoneOf(entry);
  try {
    return messageDataOf(services, entry);
  } catch (error) {
    // Only a body that does not open is a bad record; anything else is a bug and must surface.
    if (!(error instanceof DecryptionError)) throw error;
    services.log.error('stored message did not open', {
      conversationId: entry.conversationId,
      messageId: entry.messageId,
      seq: entry.seq,
      error: errorSummary(error),
    });
    return { conversationId: entry.conversationId, messageId: entry.messageId, seq: entry.seq, error: 'undecryptable' };
  }
}

/**
 * Fills an answer with as many entries as fit under API Gateway's 128 KB: `hasMore` turns true when one did not
 * fit (the client asks again from the last seq it got).
 */
export function fitEntries<F extends { messages: PageEntry[]; hasMore: boolean }>(answer: F, entries: readonly PageEntry[]): F {
  let bytes = frameBytes(JSON.stringify({ ...answer, messages: [], hasMore: false }));
  const messages: PageEntry[] = [];
  for (const entry of entries) {
    const size = Buffer.byteLength(JSON.stringify(entry), 'utf8') + 1;
    if (bytes + size > MAX_ANSWER_BYTES) return { ...answer, messages, hasMore: true };
    bytes += size;
    messages.push(entry);
  }
  return { ...answer, messages };
}

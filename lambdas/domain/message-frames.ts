import type { MessageData, MessageFrame } from '../protocol.js';
import type { Sealer, StoredMessage } from '../ports.js';

/** The wire form of a stored message: the body opened with the conversation key. */
export function messageDataOf(services: { sealer: Sealer }, stored: StoredMessage): MessageData {
  return {
    conversationId: stored.conversationId,
    messageId: stored.messageId,
    seq: stored.seq,
    senderId: stored.senderId,
    clientMessageId: stored.clientMessageId,
    body: services.sealer.open(stored.conversationId, stored.messageId, stored.sealed),
    sentAt: stored.sentAt,
  };
}

export function messageFrameOf(services: { sealer: Sealer }, stored: StoredMessage): MessageFrame {
  return { type: 'message', ...messageDataOf(services, stored) };
}

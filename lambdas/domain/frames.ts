import type { MessageBody, MessageFrame } from '../protocol.js';
import type { StoredMessage } from '../ports.js';
import type { Services } from './services.js';

/** The wire form of a stored message: the body opened with the conversation key. */
export function messageBodyOf(services: Services, stored: StoredMessage): MessageBody {
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

export function messageFrameOf(services: Services, stored: StoredMessage): MessageFrame {
  return { type: 'message', ...messageBodyOf(services, stored) };
}

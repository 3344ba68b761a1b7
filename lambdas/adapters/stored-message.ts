import { CorruptRecordError } from '../errors.js';
import type { Device, StoredMessage } from '../ports.js';

/** How a message and a device are written in the message store (shared by the Redis adapter and its twin). */

export function deviceKey(device: Device): string {
  return `${userPrefix(device.userId)}${device.deviceId}`;
}

/** The prefix of all of a user's device keys; user ids are arbitrary JWT `sub`s, so they are encoded. */
export function userPrefix(userId: string): string {
  return `${encodeURIComponent(userId)}/`;
}

export function encodeStoredMessage(message: StoredMessage): string {
  const { messageId, senderId, senderDevice, clientMessageId, sentAt, sealed } = message;
  return JSON.stringify({ messageId, senderId, senderDevice, clientMessageId, sentAt, sealed });
}


/** Parses "<seq>\n<json>" as stored by `append`. */
export function decodeStoredMessage(conversationId: string, value: string): StoredMessage {
  const newline = value.indexOf('\n');
  const seq = Number(value.slice(0, newline));
  let fields: unknown;
  try {
    fields = JSON.parse(value.slice(newline + 1));
  } catch (error) {
    throw new CorruptRecordError('stored message is not JSON', { cause: error });
  }
  if (newline < 1 || !Number.isSafeInteger(seq) || typeof fields !== 'object' || fields === null) {
    throw new CorruptRecordError('stored message has no seq');
  }
  const record = fields as Record<string, unknown>;
  const { messageId, senderId, senderDevice, clientMessageId, sentAt, sealed } = record;
  if (
    typeof messageId !== 'string' ||
    typeof senderId !== 'string' ||
    typeof senderDevice !== 'string' ||
    typeof clientMessageId !== 'string' ||
    typeof sentAt !== 'number' ||
    typeof sealed !== 'string'
  ) {
    throw new CorruptRecordError('stored message is missing fields');
  }
  return { conversationId, messageId, seq, senderId, senderDevice, clientMessageId, sentAt, sealed };
}

/**
 * The frames the client speaks (shared PROTOCOL.md, v2). Server frame types come from the backend's own
 * definitions with `import type`, which is erased: nothing of the backend (nor zod) reaches a browser bundle.
 * Frames of features still arriving on the server side (read receipts, conversations, presence) are written here
 * from the protocol document.
 */
import type {
  AckedFrame,
  DeletedFrame,
  DeletedMessageData,
  EditedFrame,
  ErrorFrame,
  Gap,
  HistoryFrame,
  MessageData,
  MessageDeletedFrame,
  MessageEditedFrame,
  MessageFrame,
  PageEntry,
  PongFrame,
  SentFrame,
  SubscribedFrame,
  TypingEventFrame,
  UnackedFrame,
  UndecryptableMessage,
  UnsubscribedFrame,
  ConversationStatus,
} from '../lambdas/protocol.js';
import type { ErrorCode } from '../lambdas/errors.js';

export type {
  AckedFrame,
  ConversationStatus,
  DeletedFrame,
  DeletedMessageData,
  EditedFrame,
  ErrorCode,
  ErrorFrame,
  Gap,
  HistoryFrame,
  MessageData,
  MessageDeletedFrame,
  MessageEditedFrame,
  MessageFrame,
  PageEntry,
  PongFrame,
  SentFrame,
  SubscribedFrame,
  TypingEventFrame,
  UnackedFrame,
  UndecryptableMessage,
  UnsubscribedFrame,
};

/** `read`: a member's read position (the answer to `markRead`, and pushed to the other members). */
export interface ReadFrame {
  type: 'read';
  conversationId: string;
  userId: string;
  seq: number;
  at: number;
  requestId?: string;
}

export interface ConversationSummary {
  conversationId: string;
  lastSeq: number;
  readSeq: number;
  unreadCount: number;
  lastMessageAt?: number;
}

/** `conversations`: the answer to `getConversations`. */
export interface ConversationsFrame {
  type: 'conversations';
  conversations: ConversationSummary[];
  cursor?: string;
  requestId?: string;
}

/** `presence`: who is online now (`online`), one change (`userId` + `state`), or only a count (`occupancy`). */
export interface PresenceFrame {
  type: 'presence';
  conversationId: string;
  online?: string[];
  userId?: string;
  state?: 'online' | 'offline';
  at?: number;
  occupancy?: number;
  requestId?: string;
}

/** Every frame the server may send, as the client reads it. */
export type IncomingFrame =
  | MessageFrame
  | ({ type: 'message' } & DeletedMessageData)
  | TypingEventFrame
  | SentFrame
  | AckedFrame
  | UnackedFrame
  | HistoryFrame
  | SubscribedFrame
  | UnsubscribedFrame
  | PongFrame
  | EditedFrame
  | MessageEditedFrame
  | DeletedFrame
  | MessageDeletedFrame
  | ReadFrame
  | ConversationsFrame
  | PresenceFrame
  | ErrorFrame;

/** A message as the app receives it: a message, a tombstone (`deleted: true`), or one the server could not open. */
export type ReceivedMessage = MessageData | DeletedMessageData | UndecryptableMessage;

/** A frame the client sends: an action and its fields. */
export type OutgoingFrame = { action: string; requestId?: string } & Record<string, unknown>;

/**
 * Reads a text frame into an incoming frame: a JSON object with a string `type`. The server is trusted for the
 * rest of the shape (it is the one writing these frames); anything else is ignored.
 */
export function parseFrame(text: unknown): IncomingFrame | undefined {
  if (typeof text !== 'string') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || !('type' in value) || typeof value.type !== 'string') return undefined;
  return value as IncomingFrame;
}

/**
 * The frames the client speaks (shared PROTOCOL.md, v2). Server frame types come from the backend's own
 * definitions with `import type`, which is erased: nothing of the backend (nor zod) reaches a browser bundle.
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
  ConversationSummary,
  ConversationsFrame,
  PresenceFrame,
  ReadFrame,
  ServerFrame,
} from '../lambdas/protocol.js';
import type { ErrorCode } from '../lambdas/errors.js';

export type {
  AckedFrame,
  ConversationStatus,
  ConversationSummary,
  ConversationsFrame,
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
  PresenceFrame,
  ReadFrame,
  SentFrame,
  SubscribedFrame,
  TypingEventFrame,
  UnackedFrame,
  UndecryptableMessage,
  UnsubscribedFrame,
};

/**
 * A Web Push subscription as JSON: what a browser's `PushSubscription.toJSON()` gives (`endpoint`, `keys.p256dh`,
 * `keys.auth`). Typed as loosely as the DOM's `PushSubscriptionJSON` so that value passes as is; the server checks it.
 */
export interface WebPushSubscriptionJson {
  endpoint?: string;
  expirationTime?: number | null;
  keys?: Record<string, string>;
}

/** Where this device is woken while it has no live connection: exactly one of a Web Push subscription, an APNs or an FCM token. */
export type PushTarget = { webPush: WebPushSubscriptionJson } | { apns: string } | { fcm: string };

/** The answer to `registerPush`: which kind of target this device now has. */
export interface PushRegisteredFrame {
  type: 'pushRegistered';
  kind: 'webPush' | 'apns' | 'fcm';
  requestId?: string;
}

/** The answer to `unregisterPush`: `removed` is false when the device had no target. */
export interface PushUnregisteredFrame {
  type: 'pushUnregistered';
  removed: boolean;
  requestId?: string;
}

/** Every frame the server may send, as the client reads it (a `message` may also be a tombstone). */
export type IncomingFrame = ServerFrame | ({ type: 'message' } & DeletedMessageData) | PushRegisteredFrame | PushUnregisteredFrame;

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

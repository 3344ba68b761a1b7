import * as z from 'zod/mini';
import './zod.js';
import type { ErrorCode } from './errors.js';

/** The wire contract (shared PROTOCOL.md, docs/protocol.md) in executable form. */

export const MAX_BODY_BYTES = 32 * 1024;
/** API Gateway's limit on one WebSocket message, both directions. */
export const MAX_MESSAGE_BYTES = 128 * 1024;
/** What an answer may use of that limit; the rest is headroom for framing. */
export const MAX_ANSWER_BYTES = MAX_MESSAGE_BYTES - 1024;

const id = (max: number) =>
  z.string().check(
    z.minLength(1),
    z.maxLength(max),
    z.regex(/^[A-Za-z0-9_-]+$/, `must be 1–${max} characters of A-Z a-z 0-9 _ -`),
  );
/**
 * Lone UTF-16 surrogates cannot be encoded as UTF-8: Redis (and any UTF-8 store) would turn them into U+FFFD,
 * so two distinct ids could become one key and a body would change. Such strings are refused.
 */
const LONE_SURROGATE = /\p{Cs}/u;
const wellFormed = z.refine<string>((v) => !LONE_SURROGATE.test(v), 'must be well-formed Unicode (no lone surrogates)');
const text = (min: number, max: number) => z.string().check(z.minLength(min), z.maxLength(max), wellFormed);

/** True when a string survives a round trip through UTF-8 unchanged. */
export function isWellFormed(value: string): boolean {
  return !LONE_SURROGATE.test(value);
}

export const conversationIdSchema = id(128);
export const clientIdSchema = id(64);

export const requestIdSchema = id(64);
/** A seq bound: at most 2^53 − 2, so the store's `seq + 1` is still an exact (safe) integer. */
const seqSchema = z.int().check(z.minimum(0), z.maximum(Number.MAX_SAFE_INTEGER - 1));

export const connectParamsSchema = z.object({
  token: z.string().check(z.minLength(1, 'token is required')),
  /** Optional since v2: subscribes the connection to this conversation at once (the v1 behaviour). */
  conversationId: z.optional(conversationIdSchema),
  clientId: clientIdSchema,
});
export type ConnectParams = z.infer<typeof connectParamsSchema>;

/** The client's `requestId`, if the frame carries a well-formed one (so even a refused frame's error echoes it). */
export function requestIdIn(raw: unknown): string | undefined {
  if (typeof raw !== 'object' || raw === null || !('requestId' in raw)) return undefined;
  const parsed = requestIdSchema.safeParse(raw.requestId);
  return parsed.success ? parsed.data : undefined;
}


export const typingFrameSchema = z.object({
  action: z.literal('typing'),
  requestId: z.optional(requestIdSchema),
  conversationId: conversationIdSchema,
  userId: z.optional(text(1, 256)),
  state: z._default(z.enum(['start', 'stop']), 'start'),
});

const bodySchema = z.string().check(
  z.refine((b) => Buffer.byteLength(b, 'utf8') <= MAX_BODY_BYTES, {
    message: `body must be at most ${MAX_BODY_BYTES} bytes of UTF-8`,
    abort: true,
  }),
  wellFormed,
);

export const sendMessageFrameSchema = z.object({
  action: z.literal('sendMessage'),
  requestId: z.optional(requestIdSchema),
  conversationId: conversationIdSchema,
  clientMessageId: text(1, 64),
  body: bodySchema,
});

export const editMessageFrameSchema = z.object({
  action: z.literal('editMessage'),
  requestId: z.optional(requestIdSchema),
  conversationId: conversationIdSchema,
  messageId: text(1, 128),
  body: bodySchema,
});

export const deleteMessageFrameSchema = z.object({
  action: z.literal('deleteMessage'),
  requestId: z.optional(requestIdSchema),
  conversationId: conversationIdSchema,
  messageId: text(1, 128),
});

export const ackFrameSchema = z
  .object({
    action: z.literal('ack'),
    requestId: z.optional(requestIdSchema),
    conversationId: conversationIdSchema,
    messageIds: z._default(z.array(text(1, 128)).check(z.maxLength(100)), []),
    /** Everything through this seq is done for this device. */
    upToSeq: z.optional(seqSchema),
  })
  .check(
    z.refine((f) => f.messageIds.length > 0 || f.upToSeq !== undefined, {
      message: 'give messageIds (1–100) and/or upToSeq',
      path: ['messageIds'],
    }),
  );

export const getUnackedFrameSchema = z.object({
  action: z.literal('getUnacked'),
  requestId: z.optional(requestIdSchema),
  conversationId: conversationIdSchema,
  limit: z._default(z.int().check(z.minimum(1), z.maximum(100)), 50),
  afterSeq: z.optional(seqSchema),
});

export const getHistoryFrameSchema = z
  .object({
    action: z.literal('getHistory'),
    requestId: z.optional(requestIdSchema),
    conversationId: conversationIdSchema,
    beforeSeq: z.optional(seqSchema),
    afterSeq: z.optional(seqSchema),
    limit: z._default(z.int().check(z.minimum(1), z.maximum(100)), 50),
  })
  .check(
    z.refine((f) => f.beforeSeq === undefined || f.afterSeq === undefined, {
      message: 'give beforeSeq or afterSeq, not both',
      path: ['afterSeq'],
    }),
  );

/** Conversations of one subscribe/unsubscribe frame: 1–100, each named once. */
const conversationIdList = z.array(conversationIdSchema).check(
  z.minLength(1),
  z.maxLength(100),
  z.refine((ids) => new Set(ids).size === ids.length, 'must not name a conversation twice'),
);

/**
 * `afterSeq` of a subscribe, read into a Map. Not a zod record: building an object from the client's keys would
 * turn a conversation named `__proto__` into a prototype (dropping it) and find `constructor` on every object.
 */
const afterSeqSchema = z.pipe(
  z
    .custom<Record<string, unknown>>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), 'must be an object of conversationId → seq')
    .check(
      z.refine(
        (entries) => Object.entries(entries).every(([c, seq]) => conversationIdSchema.safeParse(c).success && seqSchema.safeParse(seq).success),
        'each key must be a conversationId and each value a seq (an integer ≥ 0)',
      ),
    ),
  z.transform((entries: Record<string, unknown>) => new Map(Object.entries(entries).map(([c, seq]) => [c, Number(seq)]))),
);

export const subscribeFrameSchema = z
  .object({
    action: z.literal('subscribe'),
    requestId: z.optional(requestIdSchema),
    conversationIds: conversationIdList,
    /** conversationId → the highest seq this device has seen there: what comes after it is sent (resume). */
    afterSeq: z.optional(afterSeqSchema),
  })
  .check(
    // (zod runs this even when afterSeq itself failed, so it may not be a Map yet: that failure is reported already.)
    z.refine((f) => !(f.afterSeq instanceof Map) || [...f.afterSeq.keys()].every((c) => f.conversationIds.includes(c)), {
      message: 'afterSeq may only name conversations listed in conversationIds',
      path: ['afterSeq'],
    }),
  );

export const unsubscribeFrameSchema = z.object({
  action: z.literal('unsubscribe'),
  requestId: z.optional(requestIdSchema),
  conversationIds: conversationIdList,
});

/** `ping` → `pong`: keeps an idle connection open, and its presence live in every conversation it is subscribed to. */
export const pingFrameSchema = z.object({
  action: z.literal('ping'),
  requestId: z.optional(requestIdSchema),
});

/** `markRead`: everything through `seq` is read by this user (their read position, one per conversation). */
export const markReadFrameSchema = z.object({
  action: z.literal('markRead'),
  requestId: z.optional(requestIdSchema),
  conversationId: conversationIdSchema,
  seq: seqSchema,
});

/** The opaque cursor of `getConversations` (base64url; what it holds is checked when it is read). */
export const CONVERSATIONS_CURSOR_MAX = 256;
export const getConversationsFrameSchema = z.object({
  action: z.literal('getConversations'),
  requestId: z.optional(requestIdSchema),
  limit: z._default(z.int().check(z.minimum(1), z.maximum(100)), 50),
  cursor: z.optional(
    z.string().check(z.minLength(1), z.maxLength(CONVERSATIONS_CURSOR_MAX), z.regex(/^[A-Za-z0-9_-]+$/, 'must be a cursor from a conversations answer')),
  ),
});

export type MarkReadFrame = z.output<typeof markReadFrameSchema>;
export type GetConversationsFrame = z.output<typeof getConversationsFrameSchema>;

/** `getPresence`: who is online in a conversation the connection is subscribed to. */
export const getPresenceFrameSchema = z.object({
  action: z.literal('getPresence'),
  requestId: z.optional(requestIdSchema),
  conversationId: conversationIdSchema,
});
export type GetPresenceFrame = z.output<typeof getPresenceFrameSchema>;

/** base64url without padding, as browsers give PushSubscription keys (a 65-byte P-256 point, a 16-byte secret). */
const base64url = (min: number, max: number) =>
  z.string().check(z.minLength(min), z.maxLength(max), z.regex(/^[A-Za-z0-9_-]+=*$/, 'must be base64url'));
/**
 * A push target: exactly one of a browser `PushSubscription` (JSON), an APNs device token (hex) or an FCM token.
 * The endpoint's host is checked against the stage's allow-list by the route (it is configuration).
 */
const pushTargetFields = {
  webPush: z.optional(
    z.object({
      endpoint: z.url().check(z.maxLength(2048)),
      keys: z.object({ p256dh: base64url(80, 100), auth: base64url(16, 32) }),
      expirationTime: z.optional(z.nullable(z.number())),
    }),
  ),
  apns: z.optional(z.string().check(z.minLength(32), z.maxLength(200), z.regex(/^[0-9a-fA-F]+$/, 'must be a hex device token'))),
  fcm: z.optional(z.string().check(z.minLength(32), z.maxLength(4096), z.regex(/^[A-Za-z0-9_:.-]+$/, 'must be an FCM registration token'))),
};
const exactlyOneTarget = z.refine<{ webPush?: unknown; apns?: unknown; fcm?: unknown }>(
  (f) => [f.webPush, f.apns, f.fcm].filter((t) => t !== undefined).length === 1,
  { message: 'give exactly one of webPush, apns, fcm', path: ['webPush'] },
);

/** `registerPush`: this device (of this connection) is woken through this target while it has no live connection. */
export const registerPushFrameSchema = z
  .object({ action: z.literal('registerPush'), requestId: z.optional(requestIdSchema), ...pushTargetFields })
  .check(exactlyOneTarget);

/** `unregisterPush`: this device is no longer woken (the target named, if any, is not checked: the device has one). */
export const unregisterPushFrameSchema = z.object({ action: z.literal('unregisterPush'), requestId: z.optional(requestIdSchema), ...pushTargetFields });

export type RegisterPushFrame = z.output<typeof registerPushFrameSchema>;
export type UnregisterPushFrame = z.output<typeof unregisterPushFrameSchema>;

export type PingFrame = z.output<typeof pingFrameSchema>;
export type SubscribeFrame = z.output<typeof subscribeFrameSchema>;
export type UnsubscribeFrame = z.output<typeof unsubscribeFrameSchema>;
export type TypingFrame = z.output<typeof typingFrameSchema>;
export type SendMessageFrame = z.output<typeof sendMessageFrameSchema>;
export type EditMessageFrame = z.output<typeof editMessageFrameSchema>;
export type DeleteMessageFrame = z.output<typeof deleteMessageFrameSchema>;
export type AckFrame = z.output<typeof ackFrameSchema>;
export type GetUnackedFrame = z.output<typeof getUnackedFrameSchema>;
export type GetHistoryFrame = z.output<typeof getHistoryFrameSchema>;

export const clientFrameSchemas = {
  subscribe: subscribeFrameSchema,
  unsubscribe: unsubscribeFrameSchema,
  ping: pingFrameSchema,
  typing: typingFrameSchema,
  sendMessage: sendMessageFrameSchema,
  editMessage: editMessageFrameSchema,
  deleteMessage: deleteMessageFrameSchema,
  ack: ackFrameSchema,
  getUnacked: getUnackedFrameSchema,
  getHistory: getHistoryFrameSchema,
  markRead: markReadFrameSchema,
  getConversations: getConversationsFrameSchema,
  getPresence: getPresenceFrameSchema,
  registerPush: registerPushFrameSchema,
  unregisterPush: unregisterPushFrameSchema,
} as const;
export type ClientAction = keyof typeof clientFrameSchemas;

// Server → client frames.

/** A message as clients get it (the `message` frame without its `type`). */
export interface MessageData {
  conversationId: string;
  messageId: string;
  seq: number;
  senderId: string;
  clientMessageId: string;
  body: string;
  sentAt: number;
  /** Set once the sender edited it: `body` is the edited text. */
  editedAt?: number;
}
/** A message its sender deleted: it keeps its seq (a tombstone), and has no body. */
export interface DeletedMessageData {
  conversationId: string;
  messageId: string;
  seq: number;
  senderId: string;
  clientMessageId: string;
  sentAt: number;
  deleted: true;
}
export type MessageFrame = { type: 'message' } & MessageData;
/** A stored message whose body could not be opened: the client can still ack it and move on. */
export interface UndecryptableMessage {
  conversationId: string;
  messageId: string;
  seq: number;
  error: 'undecryptable';
}
/** An entry of an `unacked` or `history` page. */
export type PageEntry = MessageData | DeletedMessageData | UndecryptableMessage;
export interface TypingEventFrame {
  type: 'typing';
  conversationId: string;
  userId: string;
  state: 'start' | 'stop';
  at: number;
  /** Epoch ms after which receivers clear this state: `at` + TYPING_EXPIRES_MS for `start`, `at` for `stop`. */
  expiresAt: number;
}
/** What an answer to a client frame carries: the frame's `requestId`, when it sent one. */
export interface Answer {
  requestId?: string;
}
export interface ConversationStatus {
  conversationId: string;
  status: 'ok' | 'forbidden';
  /** The conversation's last seq (for `ok` in `subscribed`). */
  lastSeq?: number;
}
export interface SubscribedFrame extends Answer {
  type: 'subscribed';
  conversations: ConversationStatus[];
}
export interface UnsubscribedFrame extends Answer {
  type: 'unsubscribed';
  conversations: ConversationStatus[];
}
export interface PongFrame extends Answer {
  type: 'pong';
  at: number;
}
/** Seqs that existed but are gone (history retention) although the device never acked them. */
export interface Gap {
  fromSeq: number;
  toSeq: number;
}
export interface SentFrame extends Answer {
  type: 'sent';
  conversationId: string;
  clientMessageId: string;
  messageId: string;
  seq: number;
  sentAt: number;
  duplicate: boolean;
}
export interface AckedFrame extends Answer {
  type: 'acked';
  conversationId: string;
  messageIds: string[];
  upToSeq?: number;
}
export interface UnackedFrame extends Answer {
  type: 'unacked';
  conversationId: string;
  messages: PageEntry[];
  hasMore: boolean;
  gap?: Gap;
}
export interface HistoryFrame extends Answer {
  type: 'history';
  conversationId: string;
  messages: PageEntry[];
  hasMore: boolean;
}
/** What an edit changed: the new body and when (answer `edited`, pushed `messageEdited`). */
export interface EditData {
  conversationId: string;
  messageId: string;
  seq: number;
  body: string;
  editedAt: number;
}
export interface EditedFrame extends Answer, EditData {
  type: 'edited';
}
export interface MessageEditedFrame extends EditData {
  type: 'messageEdited';
}
/** Which message is now a tombstone (answer `deleted`, pushed `messageDeleted`). */
export interface DeleteData {
  conversationId: string;
  messageId: string;
  seq: number;
}
export interface DeletedFrame extends Answer, DeleteData {
  type: 'deleted';
}
export interface MessageDeletedFrame extends DeleteData {
  type: 'messageDeleted';
}
/** A user's read position in a conversation: the answer to `markRead`, and posted when it moved. */
export interface ReadFrame extends Answer {
  type: 'read';
  conversationId: string;
  userId: string;
  seq: number;
  at: number;
}
/** One conversation of a `conversations` page. */
export interface ConversationSummary {
  conversationId: string;
  lastSeq: number;
  readSeq: number;
  /** Messages by others after `readSeq` (deleted ones excluded). */
  unreadCount: number;
  /** `sentAt` of the newest readable message; null when there is none. */
  lastMessageAt: number | null;
}
export interface ConversationsFrame extends Answer {
  type: 'conversations';
  conversations: ConversationSummary[];
  /** Only when there are more: give it back to get the next page. */
  cursor?: string;
}
/** The answer to `registerPush`: which kind of target this device now has. */
export interface PushRegisteredFrame extends Answer {
  type: 'pushRegistered';
  kind: 'webPush' | 'apns' | 'fcm';
}
/** The answer to `unregisterPush`: `removed` is false when the device had no target. */
export interface PushUnregisteredFrame extends Answer {
  type: 'pushUnregistered';
  removed: boolean;
}
export interface ErrorFrame {
  type: 'error';
  code: ErrorCode;
  message: string;
  action?: string;
  requestId?: string;
  /** `rate_limited` by a fan-out budget: how long until the same frame can succeed. */
  retryAfterMs?: number;
}
/**
 * `presence`: the answer to `getPresence` (`online`), a pushed change of one user (`userId`, `state`, `at`), or, in a
 * conversation above the size limit, its `occupancy` (answer and push alike).
 */
export type PresenceFrame = Answer & { type: 'presence'; conversationId: string } & (
    | { online: string[] }
    | { userId: string; state: 'online' | 'offline'; at: number }
    | { occupancy: number }
  );
export type ServerFrame =
  | PresenceFrame
  | MessageFrame
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
  | PushRegisteredFrame
  | PushUnregisteredFrame
  | ErrorFrame;

/** UTF-8 size of a frame as it goes on the wire. */
export function frameBytes(frame: ServerFrame | string): number {
  return Buffer.byteLength(typeof frame === 'string' ? frame : JSON.stringify(frame), 'utf8');
}

let fields: ReadonlySet<string> | undefined;
/** Every field name of every client frame. */
function frameFields(): ReadonlySet<string> {
  fields ??= new Set(Object.values(clientFrameSchemas).flatMap((schema) => Object.keys(schema.shape)));
  return fields;
}

/**
 * A short, human-readable reason for a rejected frame. It names fields and rules but never echoes values,
 * so a body or token cannot leak into an error frame.
 */
export function describeIssues(error: { issues: readonly z.core.$ZodIssue[] }): string {
  const parts = error.issues.slice(0, 3).map((issue) => {
    // A path may hold a client's record key (afterSeq's): only the protocol's own field names and indexes go back.
    const path = issue.path.map((step) => (typeof step === 'number' || frameFields().has(String(step)) ? String(step) : '…')).join('.');
    if (issue.code === 'invalid_type') return `${path || 'frame'}: expected ${issue.expected}`;
    return `${path || 'frame'}: ${issue.message}`.slice(0, 160);
  });
  return parts.join('; ');
}

/**
 * The interfaces the domain needs. Adapters implement them against DynamoDB, Redis, SQS and the Management
 * API (and, for the embedded default of `npm start` only, in memory). The domain imports nothing else.
 */

/** Who a connection is: fixed at $connect, checked on every later frame. */
export interface Binding {
  connectionId: string;
  userId: string;
  deviceId: string;
  conversationId: string;
}

export interface ConnectionRecord extends Binding {
  connectedAt: number;
  /** Epoch seconds after which the row is treated as gone (TTL attribute in AWS). */
  expiresAt: number;
}

export interface ConnectionRegistry {
  register(record: ConnectionRecord): Promise<void>;
  /** The binding of a live connection, or undefined if it is unknown or expired. */
  get(connectionId: string): Promise<ConnectionRecord | undefined>;
  /** Every live connection of a conversation (a Query on the conversation index, paginated; never a Scan). */
  listByConversation(conversationId: string): Promise<ConnectionRecord[]>;
  remove(connectionId: string): Promise<void>;
}

export interface MembershipStore {
  isMember(conversationId: string, userId: string): Promise<boolean>;
  add(conversationId: string, userId: string): Promise<void>;
  remove(conversationId: string, userId: string): Promise<void>;
}

export type PostOutcome = 'delivered' | 'gone' | 'failed';

/** Posts to connections through the Management API of one endpoint. */
export interface ConnectionPoster {
  post(connectionId: string, data: string): Promise<PostOutcome>;
}

/** A message as stored at rest: metadata in clear, the body sealed with the conversation key. */
export interface StoredMessage {
  conversationId: string;
  messageId: string;
  seq: number;
  senderId: string;
  senderDevice: string;
  clientMessageId: string;
  sentAt: number;
  /** Sealed body (see encryption). */
  sealed: string;
}

export interface Device {
  userId: string;
  deviceId: string;
}

/** Admission of one frame of a connection by the shared per-connection rate limit. */
export interface RateLimit {
  connectionId: string;
  perSecond: number;
  burst: number;
}

export type AppendResult =
  | { status: 'stored'; seq: number }
  | { status: 'duplicate'; messageId: string; seq: number; sentAt: number }
  | { status: 'rate_limited' };

export type PendingResult =
  | { status: 'ok'; messages: StoredMessage[]; hasMore: boolean }
  | { status: 'rate_limited' };

/**
 * Messages, their order, idempotency and what each device still has to ack (Redis in AWS). Every call that
 * comes from a client frame first takes a token from that connection's bucket, in the same round trip.
 */
export interface MessageStore {
  /** Rate limit alone (for frames that need nothing else from the store). */
  admit(conversationId: string, limit: RateLimit): Promise<boolean>;
  /** Makes a device a member device of the conversation: it will have messages pending from now on. */
  registerDevice(conversationId: string, device: Device): Promise<void>;
  /** Forgets every device of a user in a conversation (removed member) and what they had pending. */
  forgetUser(conversationId: string, userId: string): Promise<void>;
  /**
   * Idempotently stores a message under the next seq of its conversation and makes it pending for every member
   * device except the sender's. `message.seq` is ignored: the store assigns it.
   */
  append(message: StoredMessage, limit: RateLimit): Promise<AppendResult>;
  /** Removes messages from a device's pending set; unknown ids are ignored. */
  ack(conversationId: string, device: Device, messageIds: readonly string[], limit: RateLimit): Promise<'ok' | 'rate_limited'>;
  /** A device's pending messages with seq > afterSeq, ascending, at most `limit` and about `maxBytes` of sealed data. */
  pending(
    conversationId: string,
    device: Device,
    page: { afterSeq: number; limit: number; maxBytes: number },
    limit: RateLimit,
  ): Promise<PendingResult>;
  /** One stored message (for the fan-out worker), or undefined once it has expired. */
  load(conversationId: string, messageId: string): Promise<StoredMessage | undefined>;
}

/** A batch of deliveries handed to the fan-out worker through the queue. */
export type FanoutJob =
  | { kind: 'message'; endpoint: string; conversationId: string; messageId: string; connectionIds: string[] }
  | { kind: 'frame'; endpoint: string; frame: string; connectionIds: string[] };

export interface FanoutQueue {
  enqueue(jobs: readonly FanoutJob[]): Promise<void>;
}

export interface Clock {
  now(): number;
}

export interface Sealer {
  seal(conversationId: string, messageId: string, body: string): string;
  open(conversationId: string, messageId: string, sealed: string): string;
}

/**
 * The interfaces the domain needs, all of them, in one place. Adapters implement them against DynamoDB, Redis,
 * SQS and the Management API; each route's services (handlers/) are a subset of `Services`. The domain
 * imports nothing else.
 */

/** Structured log sink; fields must never carry tokens, message bodies or keys. */
export interface Log {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** A valid token names its user and when it expires (`exp`, epoch ms): frames after that are refused. */
export type TokenCheck = { ok: true; userId: string; expiresAt: number } | { ok: false; reason: 'expired' | 'invalid' | 'unavailable' };

export interface TokenVerifier {
  verify(token: string): Promise<TokenCheck>;
}

/** The rate limits: per connection, and per user across all of the user's connections. */
export interface RateSettings {
  ratePerSecond: number;
  rateBurst: number;
  userRatePerSecond: number;
  userRateBurst: number;
}

/** How live delivery is spread: inline up to the threshold, else in SQS batches. */
export interface DeliverySettings {
  fanoutThreshold: number;
  fanoutBatchSize: number;
  postConcurrency: number;
  /** A connection that answers 410 this young is kept: its `$connect` may not have returned yet. */
  pruneGraceMs: number;
}

export interface HandshakeSettings {
  connectionTtlSeconds: number;
  originAllowList: readonly string[];
  maxConnectionsPerUser: number;
}

export interface SubscriptionSettings {
  maxSubscriptionsPerConnection: number;
}

/** Above this many members a conversation is "large": typing is not fanned out, presence is an occupancy count. */
export interface ConversationSizeSettings {
  largeConversationMembers: number;
}

/** Everything the domain can be given. A route's services pick what that route uses, each member present. */
export interface Services {
  limits: RateSettings;
  delivery: DeliverySettings;
  handshake: HandshakeSettings;
  subscriptions: SubscriptionSettings;
  registry: ConnectionRegistry;
  members: MembershipStore;
  roster: MemberRoster;
  /** The message log (DynamoDB): messages, seqs, idempotency. */
  messages: MessageLog;
  positions: DevicePositions;
  limiter: RateLimiter;
  /** What live fan-out may cost per conversation and per sender (posts per second). */
  fanoutBudget: FanoutBudget;
  seqCache: SeqCache;
  fanout: FanoutQueue;
  sealer: Sealer;
  clock: Clock;
  log: Log;
  auth: TokenVerifier;
  /** The Management API poster of one endpoint (kept per endpoint by whoever builds it). */
  posterFor(endpoint: string): ConnectionPoster;
  newMessageId(): string;
  conversationSize: ConversationSizeSettings;
  typing: TypingSettings;
  typingGate: TypingGate;
  /** Who is online in each conversation (Redis; in process without one). */
  presence: Presence;
  /** Counters of what happened (EMF metrics on AWS, nothing locally), flushed once per invocation. */
  metrics: Metrics;
  /** Hands a stored message's ids to the notifier (SQS), off the send path. */
  notify: NotifyQueue;
  /** Each (user, device)'s push target (DynamoDB). */
  pushTargets: PushTargetStore;
  /** The "pushed this offline period" marker on each device position (DynamoDB, the positions table). */
  pushMarks: PushMarks;
  /** The push services (Web Push with VAPID; APNs and FCM through SNS mobile push). */
  pusher: PushSender;
  push: PushSettings;
}

/**
 * What the counters are (namespace `RelayWs`, dimensions `service` and `stage`): `requests` frames and
 * handshakes that reached their services; the `unavailable` and `rate_limited` answers among them; post outcomes
 * (`deliveries`, `gone`, `failed`); `fanout_jobs` handed to the queue.
 */
export type MetricName =
  | 'requests'
  | 'unavailable'
  | 'rate_limited'
  | 'deliveries'
  | 'gone'
  | 'failed'
  | 'fanout_jobs'
  /** Notify jobs handed to the notifier's queue, and those that could not be (the message is stored all the same). */
  | 'notify_jobs'
  | 'notify_enqueue_failed'
  /** Push outcomes: accepted by the push service, target gone (removed), failed (the job is retried). */
  | 'pushes'
  | 'push_gone'
  | 'push_failed';

/** Counters summed in the container and emitted at the end of each invocation. Neither call ever throws. */
export interface Metrics {
  count(name: MetricName, value?: number): void;
  /** Emits what was counted since the last flush (nothing when nothing was). */
  flush(): void;
}

/** Who a connection is: fixed at $connect (a connection is one device of one user), never changed. */
export interface ConnectionRecord {
  connectionId: string;
  userId: string;
  deviceId: string;
  connectedAt: number;
  /** Epoch seconds after which the connection is treated as gone (TTL attribute in AWS). */
  expiresAt: number;
  /**
   * Epoch ms at which the token it connected with expires: frames after it are refused (`token_expired`). Absent
   * on records written before this was kept.
   */
  tokenExpiresAt?: number;
}

/** A connection subscribed to one conversation: what a frame for that conversation is checked against. */
export interface Binding {
  connectionId: string;
  userId: string;
  deviceId: string;
  conversationId: string;
}

/** One subscription row: the connection's record and the conversation it receives. */
export type Subscription = ConnectionRecord & Binding;

export interface ConnectionRegistry {
  /**
   * Records an open connection, unless its user already has `maxPerUser` open ones: then nothing is left stored
   * and the answer is false. Connections that are gone without a `$disconnect` (expired, or pruned) do not count.
   */
  open(record: ConnectionRecord, maxPerUser: number): Promise<boolean>;
  /** The connection's record, or undefined if it is unknown or expired. */
  connection(connectionId: string): Promise<ConnectionRecord | undefined>;
  /** The connection's subscription to a conversation (a strongly consistent read), or undefined. */
  subscription(connectionId: string, conversationId: string): Promise<Subscription | undefined>;
  /** The conversations the connection is subscribed to. */
  subscriptionsOf(connectionId: string): Promise<string[]>;
  subscribe(record: ConnectionRecord, conversationIds: readonly string[], now: number): Promise<void>;
  unsubscribe(connectionId: string, conversationIds: readonly string[]): Promise<void>;
  /** Every live subscription to a conversation (a Query on the conversation index, paginated; never a Scan). */
  listByConversation(conversationId: string): Promise<Subscription[]>;
  /**
   * The devices of one user with a live subscription to the conversation: the user's open connections (one read)
   * and their subscriptions there (one batched read), however many devices the conversation has.
   */
  devicesSubscribed(userId: string, conversationId: string): Promise<Set<string>>;
  /**
   * Forgets the connection: its record, every subscription, its place among its user's open connections. Answers
   * whose connection it was and what it was subscribed to (undefined when nothing was stored).
   */
  remove(connectionId: string): Promise<RemovedConnection | undefined>;
}

/** What `remove` found: the connection's user and the conversations it was subscribed to (for presence). */
export interface RemovedConnection {
  userId: string;
  conversationIds: string[];
}

/** A member of a conversation; `sinceSeq` is the conversation's last seq when they were (re-)added. */
export interface Membership {
  conversationId: string;
  userId: string;
  sinceSeq: number;
  /** The user's read position (messages through it are read); absent = 0. Only ever moves forward. */
  readSeq?: number;
}

/** One page of a user's memberships, in conversationId order. */
export interface MembershipPage {
  memberships: Membership[];
  /** The conversationId to continue after, only when there really are more. */
  nextAfter?: string;
}

/** The outcome of raising a read position: where it stands now, and whether this call moved it. */
export interface ReadMark {
  readSeq: number;
  moved: boolean;
}

export interface MembershipStore {
  /** The membership, or undefined for a non-member. */
  get(conversationId: string, userId: string): Promise<Membership | undefined>;
  /** The user's memberships among these conversations (one batched read; non-members are left out). */
  getMany(userId: string, conversationIds: readonly string[]): Promise<Map<string, Membership>>;
  /** Every member of a conversation (a paginated, strongly consistent Query of its partition). */
  list(conversationId: string): Promise<string[]>;
  isMember(conversationId: string, userId: string): Promise<boolean>;
  /**
   * (Re-)adds a member: their devices collect the messages after `sinceSeq`. A new member's read position
   * starts at `sinceSeq`; a re-add of a current member keeps theirs (it never moves backwards).
   */
  add(conversationId: string, userId: string, sinceSeq: number): Promise<void>;
  remove(conversationId: string, userId: string): Promise<void>;
  /**
   * The user's memberships, `limit` at most, in conversationId order after `after` (the user index: eventually
   * consistent, so a change shows there within about a second).
   */
  listByUser(userId: string, page: { limit: number; after?: string }): Promise<MembershipPage>;
  /**
   * Raises the user's read position to `seq` if it is below (a conditional write: it never moves backwards).
   * Undefined when the user is not a member.
   */
  raiseReadSeq(conversationId: string, userId: string, seq: number): Promise<ReadMark | undefined>;
}

/**
 * Who is a member now, as seen by this container: a removal shows within `MEMBERSHIP_CACHE_SECONDS` (the
 * roster is re-read that often), an addition at once (a user missing from the roster is looked up).
 */
export interface MemberRoster {
  isMember(conversationId: string, userId: string): Promise<boolean>;
  /** The members among these users. */
  membersAmong(conversationId: string, userIds: readonly string[]): Promise<Set<string>>;
  /** How many members the conversation has (as of the roster's last read): what the size limits compare. */
  count(conversationId: string): Promise<number>;
}

export type PostOutcome = 'delivered' | 'gone' | 'failed';

/** Posts to connections through the Management API of one endpoint. */
export interface ConnectionPoster {
  post(connectionId: string, data: string): Promise<PostOutcome>;
}

export interface Device {
  userId: string;
  deviceId: string;
}

/**
 * A batch of deliveries handed to the fan-out worker through the queue. A job names what to deliver by ids only
 * (never a body, a frame or an endpoint): the worker reloads stored messages, rebuilds the other frames itself
 * and posts only to its own stage's callback endpoint, so a job put on the queue by someone else can neither
 * speak for a user nor send anything elsewhere.
 */
export type FanoutJob = { connectionIds: string[] } & (
  /** A stored message or its edit, reloaded and opened by the worker. */
  | { kind: 'message' | 'edited'; conversationId: string; seq: number; messageId: string }
  /** A deletion: posted only if the log holds that message as a tombstone. */
  | { kind: 'deleted'; conversationId: string; seq: number; messageId: string }
  | { kind: 'typing'; conversationId: string; userId: string; state: 'start' | 'stop'; at: number }
  | { kind: 'read'; conversationId: string; userId: string; seq: number; at: number }
  /** Presence is ephemeral: a 410 may be a connection still in its `$connect`, so these never prune. */
  | { kind: 'presence'; conversationId: string; userId: string; state: 'online' | 'offline'; at: number }
  | { kind: 'occupancy'; conversationId: string; occupancy: number }
);

export interface FanoutQueue {
  enqueue(jobs: readonly FanoutJob[]): Promise<void>;
}

export interface Clock {
  now(): number;
}

/** What a sealed body is bound to: every field of its log entry. */
export type SealedFields = Omit<LogEntry, 'sealed'>;

export interface Sealer {
  seal(fields: SealedFields, body: string): string;
  /** Throws DecryptionError when the body does not open (wrong key, altered, not ours). */
  open(fields: SealedFields, sealed: string): string;
}

// ---------------------------------------------------------------------------------------------------------
// The durable store (DynamoDB is the record) and the fast, disposable helpers (Redis).
// ---------------------------------------------------------------------------------------------------------

/** One message of a conversation's log: one DynamoDB item keyed by (conversationId, seq). */
export interface LogEntry {
  conversationId: string;
  seq: number;
  messageId: string;
  senderId: string;
  senderDevice: string;
  clientMessageId: string;
  sentAt: number;
  /** Set when the sender edited the message (the sealed body is then the edited one). */
  editedAt?: number;
  /** A tombstone: the sender deleted the message; it keeps its seq and its body is erased (`sealed` is empty). */
  deleted?: true;
  /** The sealed body (see encryption): its associated data binds every field above. */
  sealed: string;
}

/** What the sender changes in a stored message: a new body (sealed for the new `editedAt`), or its deletion. */
export type LogChange = { kind: 'edit'; editedAt: number; sealed: string } | { kind: 'delete'; deletedAt: number };

export type ChangeOutcome =
  /** The change is stored: the entry as it now is. */
  | { status: 'changed'; entry: LogEntry }
  /** The message is deleted (by this change's earlier run, or another one): nothing was written. */
  | { status: 'deleted'; entry: LogEntry }
  /** No such message at that seq (or another one holds it), or it is not this sender's. */
  | { status: 'missing' };

/** What the sender asks to store; the log assigns the seq. */
export interface MessageDraft {
  conversationId: string;
  senderId: string;
  senderDevice: string;
  clientMessageId: string;
  /** Used unless an earlier, unfinished attempt with the same clientMessageId already chose its own. */
  messageId: string;
  sentAt: number;
}

/** Seals the body for the ids the log settled on (the seq is part of the associated data). */
export type SealFor = (entry: Omit<LogEntry, 'sealed'>) => string;

export type AppendOutcome =
  /** Written by this call (`completed`: an earlier attempt had claimed the id and this call finished it). */
  | { status: 'stored'; entry: LogEntry; completed: boolean }
  /** The clientMessageId was stored before, within the idempotency window: nothing new was written. */
  | { status: 'duplicate'; messageId: string; seq: number; sentAt: number };

export interface LogPage {
  entries: LogEntry[];
  hasMore: boolean;
}

/**
 * The message log, the idempotency records and the conversation's last seq, in DynamoDB. `seq` is gap-free and
 * strictly increasing per conversation whatever happens between two writes (no transactions are used).
 */
export interface MessageLog {
  /**
   * Idempotently stores the draft under the next seq. `lastSeqHint` (the seq cache) makes the common case one
   * attempt; a wrong hint only costs a retry.
   */
  append(draft: MessageDraft, seal: SealFor, lastSeqHint?: number): Promise<AppendOutcome>;
  /** The highest seq ever written in the conversation (0 when none). */
  lastSeq(conversationId: string): Promise<number>;
  get(conversationId: string, seq: number): Promise<LogEntry | undefined>;
  /**
   * messageId → seq for the ids that exist in the conversation (unknown ids are left out). `afterSeq` is a hint
   * that the ids are above it (a device acks what is above its position): they are then looked up in one read.
   */
  seqsOf(conversationId: string, messageIds: readonly string[], afterSeq?: number): Promise<Map<string, number>>;
  /**
   * Entries with afterSeq < seq < beforeSeq (either bound optional), ascending in the result. `newestFirst`
   * picks which end the page is taken from. Stops at `limit` entries or about `maxBytes` of sealed data
   * (at least one entry); `hasMore` says entries were left on that side.
   */
  page(
    conversationId: string,
    range: { afterSeq?: number; beforeSeq?: number; limit: number; maxBytes: number; newestFirst: boolean },
  ): Promise<LogPage>;
  /**
   * Edits or deletes the message at `seq`, in one conditional write: only while it is still that message, by
   * that sender, and not deleted. A delete erases the sealed body at rest. The seq never changes.
   */
  change(conversationId: string, seq: number, by: { messageId: string; senderId: string }, change: LogChange): Promise<ChangeOutcome>;
  /**
   * The conversation's last seq (as `lastSeq`) and the `sentAt` of its newest readable message (absent when there
   * is none): one read of the log's top item (and of its head item with a retention).
   */
  latest(conversationId: string): Promise<LogTop>;
  /**
   * How many readable messages with seq > afterSeq were sent by someone other than `userId`; deleted messages
   * (tombstones) do not count. Reads only the items above `afterSeq`.
   */
  countByOthers(conversationId: string, afterSeq: number, userId: string): Promise<number>;
}

/** The end of a conversation's log. */
export interface LogTop {
  lastSeq: number;
  lastMessageAt?: number;
}

/** Where one device of a member stands in one conversation. */
export interface DevicePosition {
  conversationId: string;
  userId: string;
  deviceId: string;
  /** Every message with seq ≤ this is done for the device (acked, its own, or from before it registered). */
  ackedThrough: number;
  /** Seqs above ackedThrough acked out of order (kept sorted and short: they are compacted into ackedThrough). */
  acked: number[];
  lastSeenAt: number;
  /** Optimistic concurrency: `save` succeeds only when the stored version is still this one. */
  version: number;
  /**
   * Present (true) when the position is in the push index (the device had a push target when it was flagged).
   * Only `PushMarks.setPushable` changes it; `save` keeps it whatever the position says.
   */
  pushable?: true;
}

export interface DevicePositions {
  /**
   * Makes the device known in the conversation from `startAfterSeq` on, or refreshes its `lastSeenAt` if it is
   * known. A user keeps at most `maxDevicesPerUser` devices per conversation: registering one more drops the
   * least recently seen.
   */
  register(conversationId: string, device: Device, startAfterSeq: number, now: number): Promise<DevicePosition>;
  /** The device's position, or undefined when it is unknown or has not been seen for the device TTL. */
  get(conversationId: string, device: Device): Promise<DevicePosition | undefined>;
  /** Writes `next` if the stored version is still `next.version - 1`; false when someone else saved first. */
  save(next: DevicePosition): Promise<boolean>;
  /** Forgets every device of a user in a conversation (a removed member). */
  forgetUser(conversationId: string, userId: string): Promise<void>;
}

/** Token buckets shared by all containers (Redis), falling back to this container's own when Redis is down. */
export interface RateLimiter {
  /** Takes one token from each bucket; true when every bucket had one. */
  admit(buckets: readonly RateBucket[]): Promise<boolean>;
}

export interface RateBucket {
  /** e.g. `conn:<connectionId>` or `user:<userId>`. */
  key: string;
  perSecond: number;
  burst: number;
}

/**
 * Fan-out budgets: the Management API posts a conversation, and a sender, may cause per second (one message to
 * N live connections costs N posts). Token buckets that start full (one second's worth) and may go into debt:
 * the posts of a message are spent after it is stored, when they are known; a send (or typing frame) is only
 * turned away while a budget is in debt. Shared by every container (Redis), this container's own while Redis is
 * down (it fails open: a budget that knows nothing is full).
 */
export interface FanoutBudget {
  /** How long until the conversation's and the sender's budgets both have room for a post again; 0 when they have now. */
  waitMs(conversationId: string, senderId: string): Promise<number>;
  /** Spends `posts` from both budgets (they may go into debt, which later sends wait out). */
  spend(conversationId: string, senderId: string, posts: number): Promise<void>;
}

export interface FanoutBudgetSettings {
  /** Posts per second one conversation may cause, whoever sends. */
  conversationPerSecond: number;
  /** Posts per second one user may cause, in all of their conversations. */
  senderPerSecond: number;
}

/** The last seq of each conversation, cached so an append usually needs one attempt. Never the truth. */
export interface SeqCache {
  get(conversationId: string): Promise<number | undefined>;
  /** Raises the cached value to `seq` (never lowers it). */
  raise(conversationId: string, seq: number): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------------
// Typing: coalesced on the server (shared by every container and every device of a user), expiring on clients.
// ---------------------------------------------------------------------------------------------------------

export type TypingState = 'start' | 'stop';

export interface TypingSettings {
  /** A user's repeated state in a conversation goes out at most once per this many ms (0: every frame goes out). */
  coalesceMs: number;
  /** A `start` counts on the receivers until `at` + this many ms (the frame's `expiresAt`), unless refreshed. */
  expiresMs: number;
}

/**
 * Which typing frames go out. A frame goes out when its state differs from the last one that went out for this
 * user in this conversation, or when that one went out at least the coalescing window ago (by the callers'
 * clocks, `now`); then it is the new "last one". Shared by every container (Redis), this container's own while
 * Redis is down (it fails open: a gate that knows nothing lets the frame out).
 */
export interface TypingGate {
  shouldSend(conversationId: string, userId: string, state: TypingState, now: number): Promise<boolean>;
}

// ---------------------------------------------------------------------------------------------------------
// Presence: who is online in a conversation (Redis, never the record; in process without a Redis).
// ---------------------------------------------------------------------------------------------------------

/** A user whose last live connection in a conversation lapsed more than the grace window ago. */
export interface PresenceChange {
  conversationId: string;
  userId: string;
  /** When that last connection stopped being live (epoch ms). */
  at: number;
}

/**
 * Liveness per (conversation, user, connection) with a TTL and a grace window. A user is online in a conversation
 * from the `touch` that brought them online until every entry of theirs there is older than expiry + grace and a
 * `sweep` has claimed them: so a reconnect within the grace window neither announces offline nor online.
 * Implementations with the same semantics: RedisPresence (shared) and MemoryPresence (one process).
 */
export interface Presence {
  /** The connection is live in the conversation until now + TTL; true when the user just came online there. */
  touch(conversationId: string, userId: string, connectionId: string, now: number): Promise<boolean>;
  /** As `touch`, but only for a user online there already: activity keeps presence, only touch brings it. */
  refresh(conversationId: string, userId: string, connectionId: string, now: number): Promise<void>;
  /** The connection stops being live there (its expiry becomes `now`); the user goes offline after the grace. */
  leave(conversationId: string, userId: string, connectionId: string, now: number): Promise<void>;
  /** Claims (each once, whoever else sweeps) up to about `limit` conversations' users that went offline. */
  sweep(now: number, limit: number): Promise<PresenceChange[]>;
  /** The users online in the conversation. */
  online(conversationId: string): Promise<string[]>;
  count(conversationId: string): Promise<number>;
  /** True at most once per occupancy interval per conversation: an `occupancy` frame may go out now. */
  claimOccupancy(conversationId: string, now: number): Promise<boolean>;
}

// ---------------------------------------------------------------------------------------------------------
// Push notifications: a member device with no live connection is woken once per offline period.
// ---------------------------------------------------------------------------------------------------------

/** A browser's `PushSubscription` as JSON (RFC 8030 endpoint, RFC 8291 keys, base64url). */
export interface WebPushSubscription {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

/** Where a device is woken: a Web Push subscription, an APNs device token or an FCM registration token. */
export type PushTarget = { kind: 'webPush'; subscription: WebPushSubscription } | { kind: 'apns'; token: string } | { kind: 'fcm'; token: string };

/** One device's stored push target. */
export interface StoredPushTarget {
  userId: string;
  deviceId: string;
  target: PushTarget;
  /** Epoch ms of the registration: which target is the oldest, and which one a removal may remove. */
  registeredAt: number;
  /** APNs / FCM: the SNS platform endpoint made for the token on its first push. */
  endpointArn?: string;
}

export interface PushTargetStore {
  /**
   * Stores (or replaces) the device's target. A user keeps at most `maxPerUser` targets: registering one more
   * removes the oldest (answered, so the caller can log it).
   */
  put(stored: StoredPushTarget, maxPerUser: number): Promise<{ evicted: string[] }>;
  /** Forgets the device's target; false when it had none. */
  remove(userId: string, deviceId: string): Promise<boolean>;
  /** Forgets this target only if it is still the one stored (a registration made since is kept). */
  removeIf(stored: StoredPushTarget): Promise<void>;
  /** The user's targets (one Query of the user's partition). */
  ofUser(userId: string): Promise<StoredPushTarget[]>;
  /** The device's target, or undefined (one strongly consistent read). */
  get(userId: string, deviceId: string): Promise<StoredPushTarget | undefined>;
  /** Remembers the SNS endpoint of a target, if it is still the one stored. */
  setEndpointArn(stored: StoredPushTarget, endpointArn: string): Promise<void>;
}

/** A device position and whether the device was pushed since it last acked or reconnected. */
export type PushCandidate = DevicePosition & { pushedAt?: number };

/**
 * Push state on the device position items:
 * - the push flag (`pushable`): the position is in the sparse push index, so the notifier reads only the
 *   positions of devices with a push target, never every device the conversation ever had. Set by `registerPush`
 *   (the device's positions in each of its user's conversations) and on `subscribe` / `$connect` (a device with a
 *   target, in a conversation it was not flagged in); cleared by the notifier when it finds no target any more.
 * - the "at most one push per offline period" marker (`pushedAt`): set by the notifier with a conditional write
 *   (only while unset, and only while the message is still pending for the device), cleared by every `save` (an
 *   ack, a read walking over own messages) and every `register` (a reconnect or subscribe).
 */
export interface PushMarks {
  /**
   * The live positions of the conversation's push-flagged devices (a paginated Query of the sparse index: eventually
   * consistent, which `mark` makes up for).
   */
  candidates(conversationId: string): Promise<PushCandidate[]>;
  /**
   * Sets the marker if it is unset and `seq` is still pending for the device (above its acked-through position and
   * not acked out of order), read from the item itself; true when this call set it.
   */
  mark(position: DevicePosition, seq: number, at: number): Promise<boolean>;
  /** Clears the marker this call set (`at`), so a push that failed can be tried again. */
  unmark(position: DevicePosition, at: number): Promise<void>;
  /** Puts the device's position in the push index (or takes it out); nothing when there is no such position. */
  setPushable(conversationId: string, device: Device, pushable: boolean): Promise<void>;
}

/** What a push says: ids and a count, never a body; `preview` only over Web Push's end-to-end encryption. */
export interface PushNotification {
  conversationId: string;
  senderId: string;
  seq: number;
  /** Messages pending for the device in the conversation when it was pushed. */
  count: number;
  preview?: string;
}

/** `delivered`: accepted by the push service; `gone`: the service says the target no longer exists. */
export type PushResult = { outcome: 'delivered'; endpointArn?: string } | { outcome: 'gone' };

/** The push services. Any other failure throws (PushFailedError, UnavailableError): the job is retried. */
export interface PushSender {
  send(stored: StoredPushTarget, notification: PushNotification): Promise<PushResult>;
}

export interface PushSettings {
  /** Push targets a user keeps; registering one more removes the oldest. */
  maxTargetsPerUser: number;
  /** Host names (`*.` for any subdomain) Web Push endpoints may be on; https only. */
  webAllowedHosts: readonly string[];
  /** Also `http://127.0.0.1:*` / `http://localhost:*` endpoints (the local backend only). */
  allowLoopback: boolean;
  /** Web Push carries the first PREVIEW_CHARS of the body (end-to-end encrypted). Never APNs or FCM. */
  preview: boolean;
  /** Pushes one notifier job sends at once. */
  concurrency: number;
  /** Which SNS platforms this stage has (registration of the others is refused). */
  apns: boolean;
  fcm: boolean;
}

/** A stored message, by ids only: what the notifier is told after an append. */
export interface NotifyJob {
  conversationId: string;
  seq: number;
  messageId: string;
  senderId: string;
  senderDevice: string;
}

export interface NotifyQueue {
  enqueue(job: NotifyJob): Promise<void>;
}

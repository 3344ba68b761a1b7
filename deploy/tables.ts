/**
 * Table key schemas, defined once: the CDK stack and the local dev server both build their tables from
 * these, so local and cloud cannot drift.
 */
export interface KeyAttribute {
  name: string;
  type: 'S' | 'N';
}

/** A local secondary index: same partition key as the table, another sort key. */
export interface LocalIndexShape {
  name: string;
  sortKey: KeyAttribute;
  /** KEYS_ONLY keeps the index small: it holds the table keys and its own sort key, never a message body. */
  projection: 'KEYS_ONLY' | 'ALL';
}

export interface TableShape {
  partitionKey: KeyAttribute;
  sortKey?: KeyAttribute;
  indexes: { name: string; partitionKey: KeyAttribute; sortKey?: KeyAttribute }[];
  /**
   * Local secondary indexes (need a table sort key; can only be created with the table). They cap each
   * partition's item collection (table items plus index entries) at 10 GB.
   */
  localIndexes?: LocalIndexShape[];
  /** Epoch-seconds attribute that AWS TTL removes; correctness never depends on it (reads filter it). */
  ttlAttribute?: string;
}

export const CONVERSATION_INDEX = 'byConversation';
/** messages: messageId → seq within a conversation (KEYS_ONLY). */
export const MESSAGE_ID_INDEX = 'byMessageId';
/** members: a user's conversations, by (userId, conversationId): what `getConversations` pages. */
export const MEMBER_USER_INDEX = 'byUser';
/**
 * positions: the positions of push-registered devices, by conversation (sparse: only items with `pushConversation`,
 * which is the conversationId again). The notifier reads this instead of every device the conversation ever had.
 */
export const PUSH_POSITIONS_INDEX = 'byPushConversation';

/**
 * Connections, their subscriptions and each user's set of open connections, in one table keyed by
 * (`connectionId`, `entry`):
 *
 *   (<connectionId>, `#connection`)      who the connection is: userId, deviceId, connectedAt, expiresAt
 *   (<connectionId>, `c#<conversation>`)  one subscription: conversationId (the index key), userId, deviceId, …
 *   (`user#<userId>`, `#connections`)    `open`: the ids of the user's open connections (the per-user limit)
 *
 * The conversation index holds only subscriptions (the other items have no `conversationId`), so a
 * conversation's connections are one paginated Query; a connection's entries are one Query on its id.
 */
export const connectionsTable = {
  partitionKey: { name: 'connectionId', type: 'S' },
  sortKey: { name: 'entry', type: 'S' },
  indexes: [
    {
      name: CONVERSATION_INDEX,
      partitionKey: { name: 'conversationId', type: 'S' },
      sortKey: { name: 'connectionId', type: 'S' },
    },
  ],
  ttlAttribute: 'expiresAt',
} as const satisfies TableShape;

/**
 * Membership: one small item per (conversationId, userId) holding `sinceSeq`, `addedAt` and the user's read
 * position `readSeq`. The user index (projecting ALL: the items are a few attributes, nothing to leave out) lists a
 * user's conversations in conversationId order.
 */
export const membersTable = {
  partitionKey: { name: 'conversationId', type: 'S' },
  sortKey: { name: 'userId', type: 'S' },
  indexes: [
    {
      name: MEMBER_USER_INDEX,
      partitionKey: { name: 'userId', type: 'S' },
      sortKey: { name: 'conversationId', type: 'S' },
    },
  ],
} as const satisfies TableShape;

/**
 * The message log: one item per (conversationId, seq). With a history retention, seq 0 is the head item
 * `{ lastSeq }` that never expires, so the numbering survives the expiry of every message.
 */
export const messagesTable = {
  partitionKey: { name: 'conversationId', type: 'S' },
  sortKey: { name: 'seq', type: 'N' },
  indexes: [],
  localIndexes: [{ name: MESSAGE_ID_INDEX, sortKey: { name: 'messageId', type: 'S' }, projection: 'KEYS_ONLY' }],
  ttlAttribute: 'expiresAt',
} as const satisfies TableShape;

/** Idempotency claims: `key` = `${encodeURIComponent(senderId)}#${clientMessageId}`. */
export const idempotencyTable = {
  partitionKey: { name: 'conversationId', type: 'S' },
  sortKey: { name: 'key', type: 'S' },
  indexes: [],
  ttlAttribute: 'expiresAt',
} as const satisfies TableShape;

/**
 * Device positions: `device` = `${encodeURIComponent(userId)}/${deviceId}`, so a user's devices share a prefix. A
 * position of a device with a push target also holds `pushConversation` (= conversationId), which puts it in the
 * sparse push index.
 */
export const positionsTable = {
  partitionKey: { name: 'conversationId', type: 'S' },
  sortKey: { name: 'device', type: 'S' },
  indexes: [
    {
      name: PUSH_POSITIONS_INDEX,
      partitionKey: { name: 'pushConversation', type: 'S' },
      sortKey: { name: 'device', type: 'S' },
    },
  ],
  ttlAttribute: 'expiresAt',
} as const satisfies TableShape;

/**
 * Push targets: one item per (userId, deviceId) — a Web Push subscription, an APNs or an FCM token, with its SNS
 * endpoint once made. A user's targets are one Query of their partition (the notifier, the per-user bound).
 */
export const pushTargetsTable = {
  partitionKey: { name: 'userId', type: 'S' },
  sortKey: { name: 'deviceId', type: 'S' },
  indexes: [],
} as const satisfies TableShape;

/** Every table of a stage, by its name in the manifest. */
export const tableShapes = {
  connections: connectionsTable,
  members: membersTable,
  messages: messagesTable,
  idempotency: idempotencyTable,
  positions: positionsTable,
  pushTargets: pushTargetsTable,
} as const satisfies Record<string, TableShape>;

export type TableName = keyof typeof tableShapes;

export type TableNames = Record<TableName, string>;

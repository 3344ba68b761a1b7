/**
 * Table key schemas, defined once: the CDK stack and the local dev server both build their tables from
 * these, so local and cloud cannot drift.
 */
export interface KeyAttribute {
  name: string;
  type: 'S' | 'N';
}

export interface TableShape {
  partitionKey: KeyAttribute;
  sortKey?: KeyAttribute;
  indexes: { name: string; partitionKey: KeyAttribute; sortKey?: KeyAttribute }[];
  /** Epoch-seconds attribute that AWS TTL removes; correctness never depends on it (reads filter it). */
  ttlAttribute?: string;
}

export const CONVERSATION_INDEX = 'byConversation';

export const connectionsTable = {
  partitionKey: { name: 'connectionId', type: 'S' },
  indexes: [
    {
      name: CONVERSATION_INDEX,
      partitionKey: { name: 'conversationId', type: 'S' },
      sortKey: { name: 'connectionId', type: 'S' },
    },
  ],
  ttlAttribute: 'expiresAt',
} as const satisfies TableShape;

export const membersTable = {
  partitionKey: { name: 'conversationId', type: 'S' },
  sortKey: { name: 'userId', type: 'S' },
  indexes: [],
} as const satisfies TableShape;

export interface TableNames {
  connections: string;
  members: string;
}

import type { FunctionName } from '../lambdas/config.js';
import type { TableName } from './tables.js';

/**
 * The route table, defined once: the CDK stack makes one function per entry and wires it to its route;
 * the local backend loads the same handler modules for the same route keys.
 */
export interface FunctionSpec {
  /**
   * Function name suffix, e.g. `sendMessage` → `${stack}-sendMessage`; also the key of the function's
   * environment schema (lambdas/config.ts), which decides the variables the stack gives it.
   */
  name: FunctionName;
  /**
   * Handler module, relative to the repository root. It exports `handler` (the Lambda entry) and `route`
   * (how its services are built and used, for the local backend and tests to build with their own).
   */
  entry: string;
  /** What it needs, for least-privilege grants. */
  access: {
    /** Each table it reads (GetItem, Query on the table and its indexes) and/or writes (Put, Update, Delete). */
    tables: Partial<Record<TableName, TableAccess>>;
    /** Sends to the fan-out queue. */
    enqueue: boolean;
    /** Posts to connections through the Management API. */
    posts: boolean;
    /** Reaches Redis (placed in the VPC when Redis is ElastiCache). */
    redis: boolean;
  };
}

export type TableAccess = 'read' | 'write' | 'readwrite';

export interface RouteSpec extends FunctionSpec {
  routeKey: string;
  /** The handler's `body` goes back to the sender (route response). */
  twoWay: boolean;
}

export const routes: readonly RouteSpec[] = [
  {
    routeKey: '$connect',
    name: 'connect',
    entry: 'lambdas/handlers/connect.ts',
    twoWay: false,
    // Posts (and may enqueue) the presence of a v1 connection to the other members.
    access: {
      tables: { connections: 'readwrite', members: 'read', messages: 'read', positions: 'readwrite' },
      enqueue: true,
      posts: true,
      redis: true,
    },
  },
  {
    routeKey: '$disconnect',
    name: 'disconnect',
    entry: 'lambdas/handlers/disconnect.ts',
    twoWay: false,
    // Redis: the connection stops being live for presence.
    access: { tables: { connections: 'readwrite' }, enqueue: false, posts: false, redis: true },
  },
  {
    routeKey: '$default',
    name: 'default',
    entry: 'lambdas/handlers/default.ts',
    twoWay: true,
    access: { tables: {}, enqueue: false, posts: false, redis: false },
  },
  {
    routeKey: 'subscribe',
    name: 'subscribe',
    entry: 'lambdas/handlers/subscribe.ts',
    twoWay: true,
    access: {
      tables: { connections: 'readwrite', members: 'read', messages: 'read', positions: 'readwrite' },
      enqueue: true,
      posts: true,
      redis: true,
    },
  },
  {
    routeKey: 'unsubscribe',
    name: 'unsubscribe',
    entry: 'lambdas/handlers/unsubscribe.ts',
    twoWay: true,
    access: { tables: { connections: 'readwrite' }, enqueue: false, posts: false, redis: true },
  },
  {
    routeKey: 'typing',
    name: 'typing',
    entry: 'lambdas/handlers/typing.ts',
    twoWay: true,
    access: { tables: { connections: 'readwrite', members: 'read' }, enqueue: true, posts: true, redis: true },
  },
  {
    routeKey: 'sendMessage',
    name: 'sendMessage',
    entry: 'lambdas/handlers/send-message.ts',
    twoWay: true,
    access: {
      tables: { connections: 'readwrite', members: 'read', messages: 'readwrite', idempotency: 'readwrite' },
      enqueue: true,
      posts: true,
      redis: true,
    },
  },
  {
    routeKey: 'editMessage',
    name: 'editMessage',
    entry: 'lambdas/handlers/edit-message.ts',
    twoWay: true,
    access: { tables: { connections: 'readwrite', members: 'read', messages: 'readwrite' }, enqueue: true, posts: true, redis: true },
  },
  {
    routeKey: 'deleteMessage',
    name: 'deleteMessage',
    entry: 'lambdas/handlers/delete-message.ts',
    twoWay: true,
    access: { tables: { connections: 'readwrite', members: 'read', messages: 'readwrite' }, enqueue: true, posts: true, redis: true },
  },
  {
    routeKey: 'ack',
    name: 'ack',
    entry: 'lambdas/handlers/ack.ts',
    twoWay: true,
    access: { tables: { connections: 'readwrite', members: 'read', messages: 'read', positions: 'readwrite' }, enqueue: false, posts: false, redis: true },
  },
  {
    routeKey: 'getUnacked',
    name: 'getUnacked',
    entry: 'lambdas/handlers/get-unacked.ts',
    twoWay: true,
    access: { tables: { connections: 'readwrite', members: 'read', messages: 'read', positions: 'readwrite' }, enqueue: false, posts: false, redis: true },
  },
  {
    routeKey: 'getHistory',
    name: 'getHistory',
    entry: 'lambdas/handlers/get-history.ts',
    twoWay: true,
    access: { tables: { connections: 'readwrite', members: 'read', messages: 'read' }, enqueue: false, posts: false, redis: true },
  },
  {
    routeKey: 'markRead',
    name: 'markRead',
    entry: 'lambdas/handlers/mark-read.ts',
    twoWay: true,
    // members: the read position is written there; connections: a gone recipient's rows are pruned.
    access: { tables: { connections: 'readwrite', members: 'readwrite', messages: 'read' }, enqueue: true, posts: true, redis: true },
  },
  {
    routeKey: 'getConversations',
    name: 'getConversations',
    entry: 'lambdas/handlers/get-conversations.ts',
    twoWay: true,
    access: { tables: { connections: 'read', members: 'read', messages: 'read' }, enqueue: false, posts: false, redis: true },
  },
  {
    // A Lambda route (not a MOCK one): it keeps the connection's presence live, which API Gateway alone cannot.
    routeKey: 'ping',
    name: 'ping',
    entry: 'lambdas/handlers/ping.ts',
    twoWay: true,
    access: { tables: { connections: 'readwrite', members: 'read' }, enqueue: true, posts: true, redis: true },
  },
  {
    routeKey: 'getPresence',
    name: 'getPresence',
    entry: 'lambdas/handlers/get-presence.ts',
    twoWay: true,
    access: { tables: { connections: 'readwrite', members: 'read' }, enqueue: false, posts: false, redis: true },
  },
];

/** The SQS consumer that posts large fan-outs in batches. */
export const fanoutWorker: FunctionSpec = {
  name: 'fanoutWorker',
  entry: 'lambdas/handlers/fanout-worker.ts',
  // Reads messages from the log (DynamoDB) and prunes gone connections: no Redis, so it runs outside the VPC.
  access: { tables: { connections: 'readwrite', messages: 'read' }, enqueue: false, posts: true, redis: false },
};

/** The scheduled function that announces `offline` once a user's presence lapsed (lib/: every minute). */
export const presenceSweeper: FunctionSpec = {
  name: 'presenceSweeper',
  entry: 'lambdas/handlers/presence-sweeper.ts',
  access: { tables: { connections: 'readwrite', members: 'read' }, enqueue: true, posts: true, redis: true },
};

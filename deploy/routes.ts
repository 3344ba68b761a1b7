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
    access: {
      tables: { connections: 'readwrite', members: 'read', messages: 'read', positions: 'readwrite' },
      enqueue: false,
      posts: false,
      redis: true,
    },
  },
  {
    routeKey: '$disconnect',
    name: 'disconnect',
    entry: 'lambdas/handlers/disconnect.ts',
    twoWay: false,
    access: { tables: { connections: 'readwrite' }, enqueue: false, posts: false, redis: false },
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
      enqueue: false,
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
];

/** The SQS consumer that posts large fan-outs in batches. */
export const fanoutWorker: FunctionSpec = {
  name: 'fanoutWorker',
  entry: 'lambdas/handlers/fanout-worker.ts',
  // Reads messages from the log (DynamoDB) and prunes gone connections: no Redis, so it runs outside the VPC.
  access: { tables: { connections: 'readwrite', messages: 'read' }, enqueue: false, posts: true, redis: false },
};

/**
 * A route API Gateway answers itself (a MOCK integration): no Lambda runs, nothing is billed but the message.
 * The emulator renders the same template (local/gateway) so local and cloud answer alike.
 */
export interface MockRouteSpec {
  routeKey: string;
  /** The integration response template (VTL): `$context` is the request context, `$input` the client frame. */
  responseTemplate: string;
}

/**
 * `ping` → `pong`: keeps an idle connection open (API Gateway closes one after 10 minutes without a client
 * frame, and does not count WebSocket protocol pings). `requestId` is echoed when the frame has a well-formed one.
 */
export const PONG_TEMPLATE =
  '#set($requestId = $input.path(\'$.requestId\'))' +
  '{"type":"pong","at":$context.requestTimeEpoch' +
  // Echoed only when well-formed (1–64 of A-Z a-z 0-9 _ -): nothing in it then needs escaping in JSON.
  '#if($requestId.matches(\'[A-Za-z0-9_-]{1,64}\')),"requestId":"$requestId"#end}';

export const mockRoutes: readonly MockRouteSpec[] = [{ routeKey: 'ping', responseTemplate: PONG_TEMPLATE }];

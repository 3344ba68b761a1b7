import type { FunctionName } from '../lambdas/config.js';
import type { tableShapes, TableName } from './tables.js';

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
    /**
     * The DynamoDB actions it calls, per table: exactly those (test/e2e/dynamo-grants.test.ts records the calls
     * each handler makes and fails on one missing here, or one granted here but never made). `Query:<index>` is
     * a Query on that index.
     */
    tables: TableGrants;
    /** Sends to the fan-out queue. */
    enqueue: boolean;
    /** Sends to the notifier's queue (push notifications). */
    notifies?: true;
    /** Pushes through SNS mobile push (the stage's platform applications). */
    mobilePush?: true;
    /** Posts to connections through the Management API. */
    posts: boolean;
    /** Reaches Redis (placed in the VPC when Redis is ElastiCache). */
    redis: boolean;
  };
}

/** DynamoDB actions as IAM names them (a batch call needs its own action, not those of its items). */
export type DynamoAction = 'GetItem' | 'BatchGetItem' | 'Query' | 'PutItem' | 'UpdateItem' | 'DeleteItem' | 'BatchWriteItem' | 'ConditionCheckItem';

type Shape<N extends TableName> = (typeof tableShapes)[N];
/** The global and local index names of a table. */
export type IndexNameOf<N extends TableName> =
  | (Shape<N>['indexes'] extends readonly { name: infer I extends string }[] ? I : never)
  | (Shape<N> extends { localIndexes: readonly { name: infer L extends string }[] } ? L : never);

/** What a function may call on one table: actions on the table itself, and `Query:<index>` per index it queries. */
export type TableGrant<N extends TableName> = readonly (DynamoAction | `Query:${IndexNameOf<N>}`)[];
export type TableGrants = { readonly [N in TableName]?: TableGrant<N> };

/*
 * What each adapter call needs (lambdas/adapters/dynamo-*.ts), so the entries below read as what a function does.
 * The connections table:
 */
/** A frame's connection record and subscription (`connection`, `subscription`). */
const FRAME = ['GetItem'] as const;
/** A conversation's subscriptions, the recipients of a post (`listByConversation`). */
const RECIPIENTS = ['Query:byConversation'] as const;
/** A connection's subscriptions (`subscriptionsOf`). */
const SUBSCRIPTIONS = ['Query'] as const;
/** (Un)subscribing: one batch of puts or deletes (`subscribe`, `unsubscribe`). */
const SUBSCRIBE = ['BatchWriteItem'] as const;
/** Removing a connection (`remove`: its entries, then its slot in the user's set). */
const REMOVE = ['Query', 'BatchWriteItem', 'UpdateItem'] as const;
/**
 * What posting may lead to: a connection that met 410 is removed (its record read first, for its age), a removed
 * member's subscription is dropped (`unsubscribe`).
 */
const PRUNE = ['GetItem', ...REMOVE] as const;
/** Opening one (`open`): record, slot, stale slots looked for, a refused one deleted. */
const OPEN = ['PutItem', 'UpdateItem', 'GetItem', 'BatchGetItem', 'DeleteItem'] as const;
/** The members table: the roster (a conversation's members, and one user not in the cached list). */
const ROSTER = ['Query', 'GetItem'] as const;
/** The messages table: the last seq (the top item, and with a retention the head item). */
const LAST_SEQ = ['Query', 'GetItem'] as const;
/** Pages of the log (`page`, `countByOthers`). */
const PAGES = ['Query'] as const;
/** Message ids to seqs (`seqsOf`: the log above a seq, and the message-id index). */
const SEQS = ['Query', 'Query:byMessageId'] as const;
/** One message id to its seq (the message-id index). */
const MESSAGE_ID = ['Query:byMessageId'] as const;
/** An edit or delete (`change`, and the read that explains a refusal). */
const CHANGE = ['UpdateItem', 'GetItem'] as const;
/** An append: claim (idempotency Put, Get, Update), the message (Put, Query for who holds a seq), the head (Update). */
const APPEND_MESSAGES = ['PutItem', 'Query', 'GetItem', 'UpdateItem'] as const;
const APPEND_CLAIMS = ['PutItem', 'GetItem', 'UpdateItem'] as const;
/** The positions table: registering a device (refresh, its devices, the least recent dropped, put, a racing one read). */
const REGISTER = ['UpdateItem', 'Query', 'DeleteItem', 'PutItem', 'GetItem'] as const;
/** A device's position read and saved (`get`, `save`: an update, which keeps the push flag). */
const POSITION = ['GetItem', 'UpdateItem'] as const;
/** A device's positions flagged for push (`setPushable`), after its target was read (`get`). */
const PUSH_FLAGS = ['UpdateItem'] as const;
const PUSH_TARGET = ['GetItem'] as const;
/** A user's conversations (the members' user index), for the positions `registerPush` flags. */
const CONVERSATIONS_OF_USER = ['Query:byUser'] as const;

/** The push targets table: a registration (the user's targets, the oldest removed, the put), an unregistration. */
const REGISTER_PUSH = ['Query', 'DeleteItem', 'PutItem'] as const;
const UNREGISTER_PUSH = ['DeleteItem'] as const;
/**
 * The notifier: the push-flagged positions of a conversation (the sparse index), their push markers (set, and
 * cleared after a failed push) and flags (cleared when the target is gone).
 */
const PUSH_MARKS = ['Query:byPushConversation', 'UpdateItem'] as const;
/** The notifier: whether a user's device is subscribed (`devicesSubscribed`: the user's set, then a batch of subscriptions). */
const SUBSCRIBED_DEVICES = ['GetItem', 'BatchGetItem'] as const;
/** The notifier: a user's targets, a gone one removed, an SNS endpoint remembered. */
const PUSH_TARGETS = ['Query', 'DeleteItem', 'UpdateItem'] as const;

/** The union of some building blocks, each action once. */
function grant<const A extends string>(...parts: readonly (readonly A[])[]): A[] {
  return [...new Set(parts.flat())];
}

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
      tables: {
        connections: grant(OPEN, FRAME, RECIPIENTS, SUBSCRIBE, PRUNE),
        members: grant(ROSTER),
        messages: grant(LAST_SEQ),
        positions: grant(REGISTER, PUSH_FLAGS),
        pushTargets: grant(PUSH_TARGET),
      },
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
    access: { tables: { connections: grant(REMOVE) }, enqueue: false, posts: false, redis: true },
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
      tables: {
        connections: grant(FRAME, SUBSCRIPTIONS, SUBSCRIBE, RECIPIENTS, PRUNE),
        members: grant(ROSTER, ['BatchGetItem']),
        messages: grant(LAST_SEQ, PAGES),
        positions: grant(REGISTER, PUSH_FLAGS),
        pushTargets: grant(PUSH_TARGET),
      },
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
    access: { tables: { connections: grant(FRAME, SUBSCRIBE) }, enqueue: false, posts: false, redis: true },
  },
  {
    routeKey: 'typing',
    name: 'typing',
    entry: 'lambdas/handlers/typing.ts',
    twoWay: true,
    access: { tables: { connections: grant(FRAME, RECIPIENTS, PRUNE), members: grant(ROSTER) }, enqueue: true, posts: true, redis: true },
  },
  {
    routeKey: 'sendMessage',
    name: 'sendMessage',
    entry: 'lambdas/handlers/send-message.ts',
    twoWay: true,
    access: {
      tables: { connections: grant(FRAME, RECIPIENTS, PRUNE), members: grant(ROSTER), messages: grant(APPEND_MESSAGES, LAST_SEQ), idempotency: grant(APPEND_CLAIMS) },
      enqueue: true,
      notifies: true,
      posts: true,
      redis: true,
    },
  },
  {
    routeKey: 'editMessage',
    name: 'editMessage',
    entry: 'lambdas/handlers/edit-message.ts',
    twoWay: true,
    access: { tables: { connections: grant(FRAME, RECIPIENTS, PRUNE), members: grant(ROSTER), messages: grant(MESSAGE_ID, CHANGE) }, enqueue: true, posts: true, redis: true },
  },
  {
    routeKey: 'deleteMessage',
    name: 'deleteMessage',
    entry: 'lambdas/handlers/delete-message.ts',
    twoWay: true,
    access: { tables: { connections: grant(FRAME, RECIPIENTS, PRUNE), members: grant(ROSTER), messages: grant(MESSAGE_ID, CHANGE) }, enqueue: true, posts: true, redis: true },
  },
  {
    routeKey: 'ack',
    name: 'ack',
    entry: 'lambdas/handlers/ack.ts',
    twoWay: true,
    access: { tables: { connections: grant(FRAME), members: grant(ROSTER), messages: grant(SEQS, LAST_SEQ, PAGES), positions: grant(POSITION) }, enqueue: false, posts: false, redis: true },
  },
  {
    routeKey: 'getUnacked',
    name: 'getUnacked',
    entry: 'lambdas/handlers/get-unacked.ts',
    twoWay: true,
    access: { tables: { connections: grant(FRAME), members: grant(ROSTER), messages: grant(PAGES, LAST_SEQ), positions: grant(POSITION, REGISTER) }, enqueue: false, posts: false, redis: true },
  },
  {
    routeKey: 'getHistory',
    name: 'getHistory',
    entry: 'lambdas/handlers/get-history.ts',
    twoWay: true,
    access: { tables: { connections: grant(FRAME), members: grant(ROSTER), messages: grant(PAGES) }, enqueue: false, posts: false, redis: true },
  },
  {
    routeKey: 'markRead',
    name: 'markRead',
    entry: 'lambdas/handlers/mark-read.ts',
    twoWay: true,
    // members: the read position is written there; connections: a gone recipient's rows are pruned.
    access: { tables: { connections: grant(FRAME, RECIPIENTS, PRUNE), members: grant(ROSTER, ['UpdateItem']), messages: grant(LAST_SEQ) }, enqueue: true, posts: true, redis: true },
  },
  {
    routeKey: 'getConversations',
    name: 'getConversations',
    entry: 'lambdas/handlers/get-conversations.ts',
    twoWay: true,
    access: { tables: { connections: grant(FRAME), members: grant(['Query:byUser']), messages: grant(LAST_SEQ, PAGES) }, enqueue: false, posts: false, redis: true },
  },
  {
    // A Lambda route (not a MOCK one): it keeps the connection's presence live, which API Gateway alone cannot.
    routeKey: 'ping',
    name: 'ping',
    entry: 'lambdas/handlers/ping.ts',
    twoWay: true,
    access: { tables: { connections: grant(FRAME, SUBSCRIPTIONS, RECIPIENTS, PRUNE), members: grant(ROSTER) }, enqueue: true, posts: true, redis: true },
  },
  {
    routeKey: 'getPresence',
    name: 'getPresence',
    entry: 'lambdas/handlers/get-presence.ts',
    twoWay: true,
    access: { tables: { connections: grant(FRAME), members: grant(ROSTER) }, enqueue: false, posts: false, redis: true },
  },
  {
    routeKey: 'registerPush',
    name: 'registerPush',
    entry: 'lambdas/handlers/register-push.ts',
    twoWay: true,
    access: {
      tables: { connections: grant(FRAME), pushTargets: grant(REGISTER_PUSH), members: grant(CONVERSATIONS_OF_USER), positions: grant(PUSH_FLAGS) },
      enqueue: false,
      posts: false,
      redis: true,
    },
  },
  {
    routeKey: 'unregisterPush',
    name: 'unregisterPush',
    entry: 'lambdas/handlers/unregister-push.ts',
    twoWay: true,
    access: { tables: { connections: grant(FRAME), pushTargets: grant(UNREGISTER_PUSH) }, enqueue: false, posts: false, redis: true },
  },
];

/** The SQS consumer that posts large fan-outs in batches. */
export const fanoutWorker: FunctionSpec = {
  name: 'fanoutWorker',
  entry: 'lambdas/handlers/fanout-worker.ts',
  // Reads messages from the log (DynamoDB) and prunes gone connections: no Redis, so it runs outside the VPC.
  access: { tables: { connections: grant(PRUNE), messages: grant(['GetItem']) }, enqueue: false, posts: true, redis: false },
};

/**
 * The SQS consumer that decides which offline devices to wake for a stored message and pushes them (Web Push,
 * SNS). No Redis: it runs outside the VPC, where the push services are reached directly. The log is read only for
 * a preview (PUSH_PREVIEW).
 */
export const notifier: FunctionSpec = {
  name: 'notifier',
  entry: 'lambdas/handlers/notifier.ts',
  access: {
    tables: { positions: grant(PUSH_MARKS), connections: grant(SUBSCRIBED_DEVICES), pushTargets: grant(PUSH_TARGETS), messages: grant(['GetItem']) },
    enqueue: false,
    posts: false,
    redis: false,
    mobilePush: true,
  },
};

/** The scheduled function that announces `offline` once a user's presence lapsed (lib/: every minute). */
export const presenceSweeper: FunctionSpec = {
  name: 'presenceSweeper',
  entry: 'lambdas/handlers/presence-sweeper.ts',
  access: { tables: { connections: grant(RECIPIENTS, PRUNE), members: grant(ROSTER) }, enqueue: true, posts: true, redis: true },
};

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { fanoutWorker, notifier, presenceSweeper, routes, type FunctionSpec } from '../../deploy/routes.js';
import { tableShapes, type TableName } from '../../deploy/tables.js';
import { DynamoMembershipStore } from '../../lambdas/adapters/dynamo-members.js';
import { grantedDynamoActions } from '../../lib/access.js';
import { startLocalBackend, type LocalBackend } from '../../local/backend.js';
import { refusedStatus } from '../../local/gateway/testing.js';
import { ChatClient, connectUrl, eventually, tokenFor, type Frame } from '../support/chat.js';
import { startDynamoRecorder, type DynamoRecorder } from '../support/dynamo-recorder.js';
import { startDynalite, type RunningService } from '../../local/services.js';
import { uniqueId } from '../support/env.js';
import { startLocalPushService, type LocalPushService } from '../../local/push-service.js';

/**
 * The DynamoDB grants of the route table, checked against what the handlers really call: the whole backend runs
 * with each function signing with its own access key id, behind a proxy that records every call's caller,
 * action, table and index, while a chat exercises every route (and the worker and the sweeper) through the paths
 * that reach DynamoDB differently. A handler calling an action its entry does not grant fails here, as it would
 * fail with AccessDenied on AWS; an action granted but never called fails too, so the grants stay "as used".
 */
const specs: readonly FunctionSpec[] = [...routes, fanoutWorker, presenceSweeper, notifier];
const CALLER_PREFIX = 'fn-';

let dynalite: RunningService;
let recorder: DynamoRecorder;
let backend: LocalBackend;
let pushService: LocalPushService;
let db: DynamoDBDocumentClient;
let members: DynamoMembershipStore;
const open: ChatClient[] = [];

beforeAll(async () => {
  pushService = await startLocalPushService();
  dynalite = await startDynalite();
  recorder = await startDynamoRecorder(dynalite.endpoint);
  backend = await startLocalBackend({
    dynamodbEndpoint: recorder.endpoint,
    redisUrl: inject('redisUrl'),
    env: {
      LOG_LEVEL: 'SILENT',
      // Small limits, so that the paths they guard (fan-out by the worker, pruning, device and connection limits,
      // the history head item) run in a short chat.
      FANOUT_THRESHOLD: '2',
      FANOUT_BATCH_SIZE: '2',
      PRUNE_GRACE_SECONDS: '0',
      HISTORY_RETENTION_SECONDS: '86400',
      MAX_DEVICES_PER_USER: '2',
      MAX_CONNECTIONS_PER_USER: '3',
      PRESENCE_GRACE_SECONDS: '1',
      PRESENCE_SWEEP_SECONDS: '1',
      MEMBERSHIP_CACHE_SECONDS: '1',
      RATE_LIMIT_PER_SECOND: '500',
      RATE_LIMIT_BURST: '1000',
      RATE_LIMIT_USER_PER_SECOND: '500',
      RATE_LIMIT_USER_BURST: '1000',
      // One push target per user: a second device's registration evicts the first.
      MAX_PUSH_TARGETS_PER_USER: '1',
    },
    functionEnv: (name) => ({ AWS_ACCESS_KEY_ID: `${CALLER_PREFIX}${name}` }),
  });
  db = DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint: dynalite.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'seed', secretAccessKey: 'seed' } }),
  );
  members = new DynamoMembershipStore(db, backend.tables.members);
}, 60_000);

afterAll(async () => {
  await Promise.all(open.splice(0).map((c) => c.close().catch(() => undefined)));
  db.destroy();
  await backend.close();
  await recorder.close();
  await dynalite.stop();
  await pushService.close();
});

async function conversationWith(...userIds: string[]): Promise<string> {
  const conversationId = uniqueId('grants');
  for (const userId of userIds) await members.add(conversationId, userId, 0);
  return conversationId;
}

async function join(conversationId: string, userId: string, deviceId: string): Promise<ChatClient> {
  const client = await ChatClient.connect(backend, conversationId, userId, deviceId);
  open.push(client);
  return client;
}

/** Connects and returns the client with its connection id (the one that appeared at the gateway). */
async function joinWithId(conversationId: string, userId: string, deviceId: string): Promise<{ client: ChatClient; connectionId: string }> {
  const before = new Set(backend.connectionIds());
  const client = await join(conversationId, userId, deviceId);
  const connectionId = backend.connectionIds().find((id) => !before.has(id)) ?? '';
  return { client, connectionId };
}

const historyLength = (frame: Frame) => (Array.isArray(frame.messages) ? frame.messages.length : 0);

const expectAnswer = (frame: Frame, type: string) => expect(frame, JSON.stringify(frame)).toMatchObject({ type });

/** Every route once, through the paths that call DynamoDB differently. */
async function chat(): Promise<void> {
  const big = await conversationWith('alice', 'bob', 'carol', 'dave', 'erin');
  const small = await conversationWith('alice', 'carol');

  // v1 connects (presence to the others), a v2 device that subscribes to two conversations.
  const alice = await join(big, 'alice', 'phone');
  const bob = await join(big, 'bob', 'phone');
  const dave = await joinWithId(big, 'dave', 'phone');
  await join(big, 'erin', 'phone');
  const carol = await ChatClient.connectDevice(backend, 'carol', 'laptop');
  open.push(carol);
  expectAnswer(await carol.request({ action: 'subscribe', conversationIds: [big, small] }, 'subscribed'), 'subscribed');
  await alice.send({ action: 'typing', conversationId: big });
  await alice.send({ action: 'typing', conversationId: big, state: 'stop' });

  // A send fanned out by the worker, its resend (a duplicate), then senders racing for the same seqs.
  const sent = await alice.request({ action: 'sendMessage', conversationId: big, clientMessageId: 'm1', body: 'hello' }, 'sent');
  expectAnswer(sent, 'sent');
  expect(await alice.request({ action: 'sendMessage', conversationId: big, clientMessageId: 'm1', body: 'hello' }, 'sent')).toMatchObject({ duplicate: true });
  await Promise.all(
    [alice, bob].flatMap((client, who) =>
      [1, 2, 3, 4].map((n) => client.send({ action: 'sendMessage', conversationId: big, clientMessageId: `race-${who}-${n}`, body: `race ${n}` })),
    ),
  );
  await eventually(async () => historyLength(await bob.request({ action: 'getHistory', conversationId: big, limit: 100 }, 'history')) >= 9, 10_000);
  expectAnswer(await alice.request({ action: 'editMessage', conversationId: big, messageId: sent.messageId, body: 'hello, edited' }, 'edited'), 'edited');
  expectAnswer(await bob.request({ action: 'editMessage', conversationId: big, messageId: sent.messageId, body: 'not mine' }, 'error'), 'error');
  expectAnswer(await alice.request({ action: 'deleteMessage', conversationId: big, messageId: sent.messageId }, 'deleted'), 'deleted');

  // The reading side.
  const unacked = await bob.request({ action: 'getUnacked', conversationId: big }, 'unacked');
  const pendingIds = (unacked.messages as { messageId: string; seq: number }[]).map((m) => m.messageId);
  expectAnswer(await bob.request({ action: 'ack', conversationId: big, messageIds: pendingIds.slice(0, 3) }, 'acked'), 'acked');
  expectAnswer(await bob.request({ action: 'ack', conversationId: big, messageIds: pendingIds.slice(3, 4) }, 'acked'), 'acked');
  expectAnswer(await bob.request({ action: 'ack', conversationId: big, upToSeq: 2 }, 'acked'), 'acked');
  // Past the end of the log: the log (not the seq cache) says where it ends.
  expectAnswer(await bob.request({ action: 'ack', conversationId: big, upToSeq: 1000 }, 'acked'), 'acked');
  expectAnswer(await bob.request({ action: 'getHistory', conversationId: big, beforeSeq: 5, limit: 2 }, 'history'), 'history');
  expectAnswer(await bob.request({ action: 'markRead', conversationId: big, seq: 3 }, 'read'), 'read');
  expectAnswer(await bob.request({ action: 'markRead', conversationId: big, seq: 1000 }, 'read'), 'read');
  expectAnswer(await carol.request({ action: 'markRead', conversationId: small, seq: 0 }, 'read'), 'read');
  const page = await carol.request({ action: 'getConversations', limit: 1 }, 'conversations');
  expectAnswer(page, 'conversations');
  if (typeof page.cursor === 'string') await carol.request({ action: 'getConversations', limit: 1, cursor: page.cursor }, 'conversations');
  expectAnswer(await bob.request({ action: 'getPresence', conversationId: big }, 'presence'), 'presence');
  expectAnswer(await bob.request({ action: 'ping' }, 'pong'), 'pong');

  // A send in the small conversation (not fanned out by the worker), from a second connection of alice's phone;
  // carol's device then leaves it.
  const aliceSmall = await join(small, 'alice', 'phone');
  expectAnswer(await aliceSmall.request({ action: 'sendMessage', conversationId: small, clientMessageId: 's1', body: 'hi carol' }, 'sent'), 'sent');
  expectAnswer(await carol.request({ action: 'unsubscribe', conversationIds: [small] }, 'unsubscribed'), 'unsubscribed');

  // A device whose position is gone (not seen for the device TTL) gets one registered by getUnacked.
  await db.send(new DeleteCommand({ TableName: backend.tables.positions, Key: { conversationId: big, device: 'bob/phone' } }));
  expectAnswer(await bob.request({ action: 'getUnacked', conversationId: big }, 'unacked'), 'unacked');

  // A gone connection met by a direct post (the small conversation is below the fan-out threshold) is pruned.
  const ghost = await joinWithId(small, 'carol', 'ghost');
  expect(backend.loseConnection(ghost.connectionId)).toBe(true);
  expectAnswer(await aliceSmall.request({ action: 'sendMessage', conversationId: small, clientMessageId: 's2', body: 'still there?' }, 'sent'), 'sent');

  // A member removed while subscribed: the next post finds them missing from the roster and drops the subscription.
  await members.remove(big, 'carol');
  await new Promise((resolve) => setTimeout(resolve, 1_100));
  expectAnswer(await alice.request({ action: 'sendMessage', conversationId: big, clientMessageId: 'm-after-removal', body: 'carol?' }, 'sent'), 'sent');
  await carol.waitFor((f) => f.type === 'unsubscribed');

  // Gone without $disconnect: the worker's posts meet 410 and prune the connection.
  expect(backend.loseConnection(dave.connectionId)).toBe(true);
  expectAnswer(await alice.request({ action: 'sendMessage', conversationId: big, clientMessageId: 'm-after-gone', body: 'anyone?' }, 'sent'), 'sent');
  await eventually(async () => recorder.calls.some((c) => c.caller === `${CALLER_PREFIX}fanoutWorker` && c.action === 'BatchWriteItem'), 10_000);

  // Device limit (a third device of alice in the conversation replaces the least recent one), then the per-user
  // connection limit (a fourth connection is refused after the stale slots were looked for).
  await (await join(big, 'alice', 'laptop')).close();
  const tablet = await join(big, 'alice', 'tablet');
  const refused = await refusedStatus(connectUrl(backend, { token: await tokenFor(backend, 'alice'), conversationId: big, clientId: 'watch' }));
  expect(refused).toBe(429);
  await tablet.close();

  // Push: frank's tablet registers, then his phone (evicting the tablet's), the tablet unregisters; both go offline.
  // A message wakes the phone (the notifier's marker), and meets gina's gone subscription (removed).
  const pushy = await conversationWith('alice', 'frank', 'gina');
  const aliceV2 = await ChatClient.connectDevice(backend, 'alice', 'desk');
  open.push(aliceV2);
  expectAnswer(await aliceV2.request({ action: 'subscribe', conversationIds: [pushy] }, 'subscribed'), 'subscribed');
  const devices: ChatClient[] = [];
  for (const [userId, deviceId] of [['frank', 'tablet'], ['frank', 'phone'], ['gina', 'phone']] as const) {
    const device = await join(pushy, userId, deviceId);
    devices.push(device);
    const subscription = await pushService.subscribe({ applicationServerKey: backend.vapidPublicKey });
    if (userId === 'gina') pushService.expire(subscription.endpoint);
    expectAnswer(await device.request({ action: 'registerPush', webPush: subscription }, 'pushRegistered'), 'pushRegistered');
  }
  const [frankTablet, ...phones] = devices;
  expect(await frankTablet?.request({ action: 'unregisterPush' }, 'pushUnregistered')).toMatchObject({ removed: false });
  for (const phone of phones) await phone.close();
  expectAnswer(await aliceV2.request({ action: 'sendMessage', conversationId: pushy, clientMessageId: 'p1', body: 'wake up' }, 'sent'), 'sent');
  await eventually(() => pushService.received().length === 1 && recorder.calls.some((c) => c.caller === `${CALLER_PREFIX}notifier` && c.action === 'DeleteItem'), 10_000);

  // $disconnect, and the sweeper announcing bob offline once his grace lapsed.
  await bob.close();
  await alice.waitFor((f) => f.type === 'presence' && f.userId === 'bob' && f.state === 'offline', 10_000);
}

/**
 * Granted for paths this chat does not reach, each with why it can happen on AWS. Listed here so that a grant
 * nobody needs any more, or a path the chat starts reaching, shows up as a change to this list.
 */
/** A post met 410 and the connection is removed (its entries, its slot); the chat prunes only in sendMessage and the worker. */
const PRUNE = ['connections:Query', 'connections:BatchWriteItem', 'connections:UpdateItem'];
/** A subscriber missing from the cached roster is looked up alone (the chat removes a member only before a send). */
const ROSTER_LOOKUP = ['members:GetItem'];
/** Two registrations of the same device racing: the loser reads the winner's position. */
const REGISTER_RACE = ['positions:GetItem'];
const NOT_REACHED: Partial<Record<string, readonly string[]>> = {
  // A failed subscribe at $connect removes the half-open connection; presence posts may prune.
  connect: ['connections:Query', ...REGISTER_RACE],
  subscribe: ['connections:UpdateItem', ...ROSTER_LOOKUP, ...REGISTER_RACE, 'positions:DeleteItem'],
  typing: [...PRUNE, ...ROSTER_LOOKUP],
  editMessage: [...PRUNE, ...ROSTER_LOOKUP],
  deleteMessage: [...PRUNE, ...ROSTER_LOOKUP],
  ack: ROSTER_LOOKUP,
  // The last seq read from the log's head item when the seq cache (Redis) has none; a device beyond the limit.
  getUnacked: ['messages:GetItem', 'positions:DeleteItem'],
  markRead: PRUNE,
  // A ping announces (and may prune) only for a user whose presence had lapsed.
  ping: ['connections/index/byConversation:Query', 'connections:BatchWriteItem', 'connections:UpdateItem', ...ROSTER_LOOKUP, 'members:Query'],
  getPresence: ROSTER_LOOKUP,
  presenceSweeper: ['connections:GetItem', ...PRUNE, ...ROSTER_LOOKUP],
  // An SNS endpoint remembered (APNs/FCM: no platform application locally); the log read only for a preview.
  notifier: ['pushTargets:UpdateItem', 'messages:GetItem'],
};

/** `table:action` and `table/index/name:Query` keys, by function name. */
function observedByFunction(): Map<string, Set<string>> {
  const tableOf = new Map((Object.keys(tableShapes) as TableName[]).map((name) => [backend.tables[name], name]));
  const observed = new Map<string, Set<string>>();
  for (const call of recorder.calls) {
    if (!call.caller.startsWith(CALLER_PREFIX)) continue;
    const name = call.caller.slice(CALLER_PREFIX.length);
    const table = tableOf.get(call.table) ?? `unknown table ${call.table}`;
    const key = call.index === undefined ? `${table}:${call.action}` : `${table}/index/${call.index}:${call.action}`;
    observed.set(name, new Set([...(observed.get(name) ?? []), key]));
  }
  return observed;
}

function grantedKeys(spec: FunctionSpec): Set<string> {
  return new Set(
    grantedDynamoActions(spec).flatMap(({ table, index, actions }) =>
      actions.map((action) => (index === undefined ? `${table}:${action}` : `${table}/index/${index}:${action}`)),
    ),
  );
}

describe('DynamoDB grants of the route table, against the calls the handlers make', () => {
  let observed: Map<string, Set<string>>;

  beforeAll(async () => {
    await chat();
    observed = observedByFunction();
  }, 120_000);

  it('saw calls from every function that has a table grant', () => {
    for (const spec of specs) {
      expect(observed.has(spec.name), spec.name).toBe(grantedKeys(spec).size > 0);
    }
  });

  it.each(specs.map((spec) => [spec.name, spec] as const))('%s calls only what it is granted', (name, spec) => {
    const calls = [...(observed.get(name) ?? [])].sort();
    const granted = [...grantedKeys(spec)];
    expect(calls.filter((key) => !granted.includes(key))).toEqual([]);
  });

  it.each(specs.map((spec) => [spec.name, spec] as const))('%s is granted only what it called here, or a path listed as not reached', (name, spec) => {
    const calls = observed.get(name) ?? new Set<string>();
    const unexercised = [...grantedKeys(spec)].filter((key) => !calls.has(key)).sort();
    expect(unexercised).toEqual([...(NOT_REACHED[name] ?? [])].sort());
  });
});

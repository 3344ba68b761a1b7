import { DeleteCommand, GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoMembershipStore } from '../../lambdas/adapters/dynamo-members.js';
import { DynamoMessageLog } from '../../lambdas/adapters/dynamo-message-log.js';
import { systemClock } from '../../lambdas/context/settings.js';
import { addMember } from '../../lambdas/domain/membership.js';
import { startLocalBackend, type LocalBackend } from '../../local/backend.js';
import { refusedStatus } from '../../local/gateway/testing.js';
import { ChatClient, connectUrl, tokenFor } from '../support/chat.js';
import { allHistory, allUnacked, documentClientOf, entriesOf, errorFrames, sendOne, type Sent } from '../support/durability.js';
import { uniqueId } from '../support/env.js';

/**
 * Membership decides what a device collects (PROTOCOL.md, "Guarantees"): removed, it collects nothing more at
 * once; re-added, only what is sent from then on; a current member reads the whole history. And one damaged
 * record never blocks the messages around it.
 */
let backend: LocalBackend;
let db: DynamoDBDocumentClient;
let members: DynamoMembershipStore;
let log: DynamoMessageLog;
const open: ChatClient[] = [];

beforeAll(async () => {
  backend = await startLocalBackend({
    redisUrl: inject('redisUrl'),
    env: { LOG_LEVEL: 'SILENT', RATE_LIMIT_PER_SECOND: '200', RATE_LIMIT_BURST: '400' },
  });
  db = documentClientOf(backend);
  members = new DynamoMembershipStore(db, backend.tables.members);
  log = new DynamoMessageLog(db, { messages: backend.tables.messages, idempotency: backend.tables.idempotency }, systemClock);
});

afterAll(async () => {
  await Promise.all(open.splice(0).map((c) => c.close().catch(() => undefined)));
  db?.destroy();
  await backend?.close();
});

async function join(conversationId: string, userId: string, deviceId: string): Promise<ChatClient> {
  const client = await ChatClient.connect(backend, conversationId, userId, deviceId);
  open.push(client);
  return client;
}

async function conversationWith(...userIds: string[]): Promise<string> {
  const conversationId = uniqueId('membership');
  for (const userId of userIds) await members.add(conversationId, userId, 0);
  return conversationId;
}

const ids = (items: { messageId: string }[]) => items.map((m) => m.messageId);

describe('membership changes', () => {
  it('a removed member stops collecting at once; re-added, collects only what is sent after; history stays whole', async () => {
    const conversationId = await conversationWith('alice', 'bob', 'carol');
    const alice = await join(conversationId, 'alice', 'phone');
    const bob = await join(conversationId, 'bob', 'laptop');
    const carol = await join(conversationId, 'carol', 'phone');
    const sent: Sent[] = [];
    const say = async (label: string, count: number) => {
      const batch: Sent[] = [];
      for (let i = 1; i <= count; i += 1) batch.push(await sendOne(alice, conversationId, `${label}-${i}`, `${label} ${i}`));
      sent.push(...batch);
      return batch;
    };

    const beforeRemoval = await say('before', 3);
    expect(ids((await allUnacked(carol, conversationId, 2)).items)).toEqual(ids(beforeRemoval));

    // The removal as the admin path does it: the membership item is deleted (the open socket is left open here,
    // so what is checked is that membership, not the connection, decides).
    await db.send(new DeleteCommand({ TableName: backend.tables.members, Key: { conversationId, userId: 'carol' } }));
    expect(await members.get(conversationId, 'carol')).toBeUndefined();
    const whileRemoved = await say('removed', 2);

    const refused = await carol.request({ action: 'getUnacked', conversationId }, 'unacked');
    expect(refused).toMatchObject({ type: 'error', code: 'forbidden', action: 'getUnacked' });
    expect(await carol.request({ action: 'getHistory', conversationId }, 'history')).toMatchObject({ type: 'error', code: 'forbidden' });
    expect(await refusedStatus(connectUrl(backend, { token: await tokenFor(backend, 'carol'), conversationId, clientId: 'tablet' }))).toBe(403);

    // Re-added (lambdas/domain/membership.ts addMember: sinceSeq = the log's last seq now).
    await addMember({ members, messages: log }, conversationId, 'carol', 1000);
    expect(await members.get(conversationId, 'carol')).toMatchObject({ sinceSeq: sent.length });
    const afterReAdd = await say('readded', 2);
    // Her open connection was unsubscribed when its frames met the removal; re-added, it subscribes again.
    expect(await carol.request({ action: 'subscribe', conversationIds: [conversationId] }, 'subscribed')).toMatchObject({
      conversations: [{ conversationId, status: 'ok', lastSeq: sent.length }],
    });

    // Carol's device collects only what came after the re-add: not what was sent while she was out, and not
    // what was pending before the removal either.
    const pending = await allUnacked(carol, conversationId, 1);
    expect(ids(pending.items)).toEqual(ids(afterReAdd));
    expect(pending.items.map((m) => m.body)).toEqual(afterReAdd.map((m) => m.body));
    // The same from a new connection of the same device, and from a device first seen after the re-add.
    const carolAgain = await join(conversationId, 'carol', 'phone');
    expect(ids((await allUnacked(carolAgain, conversationId, 5)).items)).toEqual(ids(afterReAdd));
    const carolTablet = await join(conversationId, 'carol', 'tablet');
    expect(ids((await allUnacked(carolTablet, conversationId, 5)).items)).toEqual([]);
    // A cursor below the re-add does not reach past it.
    const below = await carol.request({ action: 'getUnacked', conversationId, afterSeq: 0 }, 'unacked');
    expect(ids(entriesOf(below))).toEqual(ids(afterReAdd));

    // A current member reads the whole history, the messages of her time away included.
    const history = await allHistory(carol, conversationId, 3);
    expect(ids(history.items)).toEqual(ids([...beforeRemoval, ...whileRemoved, ...afterReAdd]));
    expect(history.items.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);

    // Bob was never removed: everything is pending for him.
    expect(ids((await allUnacked(bob, conversationId, 4)).items)).toEqual(ids(sent));
    expect(errorFrames([alice, bob, carolAgain, carolTablet])).toEqual([]);
  });
});

/** Ways the `sealed` attribute of a stored message can be damaged, each one UpdateItem on that attribute. */
const damages: { name: string; update: (sealed: string) => { UpdateExpression: string; ExpressionAttributeValues?: Record<string, unknown> } }[] = [
  {
    // The format is intact, the authentication tag no longer matches.
    name: 'one character of the ciphertext flipped',
    update: (sealed) => {
      const at = sealed.length - 5;
      return { UpdateExpression: 'SET sealed = :s', ExpressionAttributeValues: { ':s': `${sealed.slice(0, at)}${sealed[at] === 'A' ? 'B' : 'A'}${sealed.slice(at + 1)}` } };
    },
  },
  { name: 'a string that is no sealed body', update: () => ({ UpdateExpression: 'SET sealed = :s', ExpressionAttributeValues: { ':s': 'garbage' } }) },
  { name: 'the bytes stored as a binary attribute', update: (sealed) => ({ UpdateExpression: 'SET sealed = :s', ExpressionAttributeValues: { ':s': Buffer.from(sealed, 'utf8') } }) },
  { name: 'a number instead of a string', update: () => ({ UpdateExpression: 'SET sealed = :s', ExpressionAttributeValues: { ':s': 42 } }) },
  { name: 'the attribute removed', update: () => ({ UpdateExpression: 'REMOVE sealed' }) },
];

describe('a stored message whose sealed body is damaged', () => {
  it.each(damages)('($name) is answered as undecryptable between normal messages, and can be acked by id', async ({ update }) => {
    const conversationId = await conversationWith('alice', 'bob');
    const alice = await join(conversationId, 'alice', 'phone');
    const bob = await join(conversationId, 'bob', 'laptop');
    const sent: Sent[] = [];
    for (let i = 1; i <= 3; i += 1) sent.push(await sendOne(alice, conversationId, `m${i}`, `message ${i}`));
    const [first, damaged, third] = sent;
    if (first === undefined || damaged === undefined || third === undefined) throw new Error('three messages were sent');

    const key = { conversationId, seq: damaged.seq };
    const stored = await db.send(new GetCommand({ TableName: backend.tables.messages, Key: key }));
    const sealed: unknown = stored.Item?.sealed;
    if (typeof sealed !== 'string') throw new Error('the stored message has no sealed body');
    await db.send(new UpdateCommand({ TableName: backend.tables.messages, Key: key, ...update(sealed) }));

    const expectPage = (items: { messageId: string; seq: number; body?: string; error?: string }[]) => {
      expect(items).toHaveLength(3);
      expect(items[0]).toMatchObject({ messageId: first.messageId, seq: first.seq, body: 'message 1' });
      expect(items[1]).toEqual({ conversationId, messageId: damaged.messageId, seq: damaged.seq, error: 'undecryptable' });
      expect(items[2]).toMatchObject({ messageId: third.messageId, seq: third.seq, body: 'message 3' });
    };
    expectPage((await allUnacked(bob, conversationId, 10)).items);
    expectPage((await allUnacked(bob, conversationId, 1)).items);
    expectPage((await allHistory(bob, conversationId, 10)).items);
    const newestFirst = await bob.request({ action: 'getHistory', conversationId, limit: 2 }, 'history');
    expect(entriesOf(newestFirst).map((m) => [m.seq, m.error ?? m.body])).toEqual([
      [damaged.seq, 'undecryptable'],
      [third.seq, 'message 3'],
    ]);

    // Acked by id, it is gone from pending; the others stay.
    expect(await bob.request({ action: 'ack', conversationId, messageIds: [damaged.messageId] }, 'acked')).toMatchObject({
      type: 'acked',
      messageIds: [damaged.messageId],
    });
    expect(ids((await allUnacked(bob, conversationId, 10)).items)).toEqual([first.messageId, third.messageId]);
    await bob.request({ action: 'ack', conversationId, messageIds: [first.messageId, third.messageId] }, 'acked');
    expect((await allUnacked(bob, conversationId, 10)).items).toEqual([]);
    // History still shows it, as undecryptable.
    expect((await allHistory(bob, conversationId, 10)).items[1]).toMatchObject({ seq: damaged.seq, error: 'undecryptable' });
    expect(errorFrames([alice, bob])).toEqual([]);
  });
});

describe('what a device collects after a long run of its own messages', () => {
  it('getUnacked pages on to the message pending after them, and says hasMore only when there is more', async () => {
    const conversationId = await conversationWith('alice', 'bob');
    const alice = await join(conversationId, 'alice', 'phone');
    const bob = await join(conversationId, 'bob', 'laptop');
    // More of its own messages in a row than one answer reads (8 log pages of 2 × limit entries): limit 1 → 16.
    for (let i = 1; i <= 20; i += 1) await sendOne(alice, conversationId, `own-${i}`, `own ${i}`);

    // Nothing is pending for the sender's device.
    const nothing = await alice.request({ action: 'getUnacked', conversationId, limit: 1 }, 'unacked');
    expect.soft(nothing).toMatchObject({ type: 'unacked', messages: [], hasMore: false });

    const reply = await sendOne(bob, conversationId, 'reply', 'a reply');
    const pending = await allUnacked(alice, conversationId, 1);
    expect(pending.items.map((m) => [m.seq, m.body])).toEqual([[reply.seq, 'a reply']]);
    expect(errorFrames([alice, bob])).toEqual([]);
  });
});

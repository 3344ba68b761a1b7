import { PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoMembershipStore } from '../../lambdas/adapters/dynamo-members.js';
import { startLocalBackend, type LocalBackend } from '../../local/backend.js';
import { ChatClient, type Frame } from '../support/chat.js';
import { documentClientOf } from '../support/durability.js';
import { uniqueId } from '../support/env.js';

/**
 * Read receipts and the conversations list end to end through the emulator (PROTOCOL.md: `markRead` / `read`,
 * `getConversations` / `conversations`): exact unread counts, read positions that only move forward and reach
 * the other members and the reader's other devices, and paging across more conversations than a page holds.
 */
let backend: LocalBackend;
let db: DynamoDBDocumentClient;
let members: DynamoMembershipStore;
const open: ChatClient[] = [];

beforeAll(async () => {
  backend = await startLocalBackend({
    redisUrl: inject('redisUrl'),
    env: {
      LOG_LEVEL: 'SILENT',
      RATE_LIMIT_PER_SECOND: '200',
      RATE_LIMIT_BURST: '400',
      RATE_LIMIT_USER_PER_SECOND: '200',
      RATE_LIMIT_USER_BURST: '400',
    },
  });
  db = documentClientOf(backend);
  members = new DynamoMembershipStore(db, backend.tables.members);
});

afterAll(async () => {
  await Promise.all(open.splice(0).map((c) => c.close().catch(() => undefined)));
  db?.destroy();
  await backend?.close();
});

/** Users of one test: ids of their own, so each test's conversations lists hold only its conversations. */
function usersNamed<const N extends readonly string[]>(...names: N): { [K in keyof N]: string } {
  const suffix = randomUUID().slice(0, 8);
  return names.map((name) => `${name}-${suffix}`) as { [K in keyof N]: string };
}

async function conversationWith(...userIds: string[]): Promise<string> {
  const conversationId = uniqueId('reads');
  for (const userId of userIds) await members.add(conversationId, userId, 0);
  return conversationId;
}

/** A device connection subscribed to these conversations. */
async function device(userId: string, deviceId: string, conversationIds: string[]): Promise<ChatClient> {
  const client = await ChatClient.connectDevice(backend, userId, deviceId);
  open.push(client);
  if (conversationIds.length > 0) {
    const answer = await ask(client, { action: 'subscribe', conversationIds });
    expect(answer).toMatchObject({ type: 'subscribed' });
  }
  return client;
}

/** Sends a frame with a fresh requestId and waits for the answer that echoes it (pushed frames carry none). */
async function ask(client: ChatClient, frame: Record<string, unknown>): Promise<Frame> {
  const requestId = randomUUID();
  await client.send({ ...frame, requestId });
  return client.waitFor((f) => f.requestId === requestId);
}

async function say(client: ChatClient, conversationId: string, body: string): Promise<Frame> {
  const sent = await ask(client, { action: 'sendMessage', conversationId, clientMessageId: randomUUID(), body });
  expect(sent).toMatchObject({ type: 'sent', duplicate: false });
  return sent;
}

/** The next pushed `read` frame of a conversation (after those already awaited). */
const nextRead = (client: ChatClient, conversationId: string) =>
  client.waitFor((f) => f.type === 'read' && f.conversationId === conversationId && f.requestId === undefined);

async function conversationsOf(client: ChatClient, extra: Record<string, unknown> = {}): Promise<Frame> {
  const answer = await ask(client, { action: 'getConversations', ...extra });
  expect(answer).toMatchObject({ type: 'conversations' });
  return answer;
}

const summaryIn = (answer: Frame, conversationId: string) =>
  (answer.conversations as Frame[]).find((c) => c.conversationId === conversationId);

describe('getConversations: unread counts', () => {
  it('counts exactly the messages by others after the read position: never one\'s own, never a deleted one', async () => {
    // Prepare
    const [alice, bob, carol] = usersNamed('alice', 'bob', 'carol');
    const conversationId = await conversationWith(alice, bob, carol);
    const quiet = await conversationWith(alice, bob);
    const a = await device(alice, 'phone', [conversationId]);
    const b = await device(bob, 'laptop', [conversationId]);
    const c = await device(carol, 'phone', [conversationId]);
    // seq: 1 alice, 2 bob, 3 bob, 4 alice, 5 carol, 6 bob
    await say(a, conversationId, 'one');
    await say(b, conversationId, 'two');
    await say(b, conversationId, 'three');
    await say(a, conversationId, 'four');
    await say(c, conversationId, 'five');
    const last = await say(b, conversationId, 'six');
    // seq 7: a message by carol that was deleted (a tombstone, as the delete path stores it).
    await db.send(
      new PutCommand({
        TableName: backend.tables.messages,
        Item: { conversationId, seq: 7, messageId: randomUUID(), senderId: carol, senderDevice: 'phone', clientMessageId: randomUUID(), sentAt: Number(last.sentAt) + 1, deleted: true },
      }),
    );
    // Act
    const forAlice = await conversationsOf(a);
    const forBob = await conversationsOf(b);
    const marked = await ask(a, { action: 'markRead', conversationId, seq: 3 });
    const afterMark = await conversationsOf(a);
    // Assess
    expect(forAlice.cursor).toBeUndefined();
    expect(forAlice.conversations).toEqual(
      [
        { conversationId, lastSeq: 7, readSeq: 0, unreadCount: 4, lastMessageAt: Number(last.sentAt) + 1 },
        { conversationId: quiet, lastSeq: 0, readSeq: 0, unreadCount: 0, lastMessageAt: null },
      ].sort((x, y) => (x.conversationId < y.conversationId ? -1 : 1)),
    );
    // bob: alice's 1 and 4, carol's 5.
    expect(summaryIn(forBob, conversationId)).toMatchObject({ unreadCount: 3, readSeq: 0 });
    expect(marked).toMatchObject({ type: 'read', conversationId, userId: alice, seq: 3 });
    // After 3: carol's 5 and bob's 6 (4 is alice's own, 7 is deleted).
    expect(summaryIn(afterMark, conversationId)).toMatchObject({ readSeq: 3, unreadCount: 2, lastSeq: 7 });
  });
});

describe('markRead: read receipts', () => {
  it('reaches the reader\'s other device and the other member, never moves backwards, and clamps past the end', async () => {
    // Prepare
    const [alice, bob] = usersNamed('alice', 'bob');
    const conversationId = await conversationWith(alice, bob);
    const phone = await device(alice, 'phone', [conversationId]);
    const tablet = await device(alice, 'tablet', [conversationId]);
    const laptop = await device(bob, 'laptop', [conversationId]);
    for (let i = 1; i <= 4; i += 1) await say(laptop, conversationId, `hello ${i}`);
    // Act
    const first = await ask(phone, { action: 'markRead', conversationId, seq: 2 });
    const onTablet = await nextRead(tablet, conversationId);
    const onLaptop = await nextRead(laptop, conversationId);
    const lower = await ask(tablet, { action: 'markRead', conversationId, seq: 1 });
    const equal = await ask(phone, { action: 'markRead', conversationId, seq: 2 });
    const beyond = await ask(tablet, { action: 'markRead', conversationId, seq: 1_000 });
    const nextOnPhone = await nextRead(phone, conversationId);
    const nextOnLaptop = await nextRead(laptop, conversationId);
    const summary = summaryIn(await conversationsOf(laptop), conversationId);
    // Assess
    expect(first).toMatchObject({ type: 'read', conversationId, userId: alice, seq: 2 });
    expect(onTablet).toEqual({ type: 'read', conversationId, userId: alice, seq: 2, at: first.at });
    expect(onLaptop).toEqual(onTablet);
    // Lower or equal: answered with the stored position, and nothing posted (the next read anyone gets is the clamp's).
    expect(lower).toMatchObject({ type: 'read', seq: 2 });
    expect(equal).toMatchObject({ type: 'read', seq: 2 });
    expect(beyond).toMatchObject({ type: 'read', seq: 4 });
    expect(nextOnPhone).toMatchObject({ seq: 4, userId: alice });
    expect(nextOnLaptop).toMatchObject({ seq: 4, userId: alice });
    // The phone never got its own first receipt back.
    expect(phone.frames().filter((f) => f.type === 'read' && f.requestId === undefined).map((f) => f.seq)).toEqual([4]);
    await expect(members.get(conversationId, alice)).resolves.toMatchObject({ readSeq: 4 });
    // bob's own view: alice's read position is hers, his unread count is his (he sent everything).
    expect(summary).toMatchObject({ lastSeq: 4, readSeq: 0, unreadCount: 0 });
  });

  it('is forbidden on a connection not subscribed to the conversation, and to a non-member; nothing is stored', async () => {
    // Prepare
    const [alice, bob, mallory] = usersNamed('alice', 'bob', 'mallory');
    const conversationId = await conversationWith(alice, bob);
    const laptop = await device(bob, 'laptop', [conversationId]);
    await say(laptop, conversationId, 'hi');
    const unsubscribed = await device(alice, 'phone', []);
    const stranger = await device(mallory, 'phone', []);
    const refused = await ask(stranger, { action: 'subscribe', conversationIds: [conversationId] });
    // Act
    const notSubscribed = await ask(unsubscribed, { action: 'markRead', conversationId, seq: 1 });
    const notMember = await ask(stranger, { action: 'markRead', conversationId, seq: 1 });
    // Assess
    expect(refused).toMatchObject({ type: 'subscribed', conversations: [{ conversationId, status: 'forbidden' }] });
    expect(notSubscribed).toMatchObject({ type: 'error', code: 'forbidden', action: 'markRead' });
    expect(notMember).toMatchObject({ type: 'error', code: 'forbidden', action: 'markRead' });
    await expect(members.get(conversationId, alice)).resolves.toMatchObject({ readSeq: 0 });
    await expect(members.get(conversationId, mallory)).resolves.toBeUndefined();
    expect(laptop.frames().filter((f) => f.type === 'read')).toEqual([]);
  });
});

describe('getConversations: paging', () => {
  it('pages across more conversations than the limit with a cursor given only while there are more', async () => {
    // Prepare
    const [alice, bob] = usersNamed('alice', 'bob');
    const conversations: string[] = [];
    for (let i = 0; i < 7; i += 1) conversations.push(await conversationWith(alice, bob));
    await conversationWith(bob);
    const phone = await device(alice, 'phone', []);
    // Act
    const pages: Frame[] = [];
    let cursor: unknown;
    do {
      const page = await conversationsOf(phone, { limit: 3, ...(cursor === undefined ? {} : { cursor }) });
      pages.push(page);
      cursor = page.cursor;
    } while (cursor !== undefined && pages.length < 5);
    const forged = await ask(phone, { action: 'getConversations', cursor: 'bm90LWEtY3Vyc29y' });
    // Assess
    expect(pages.map((page) => (page.conversations as Frame[]).length)).toEqual([3, 3, 1]);
    expect(pages.flatMap((page) => (page.conversations as Frame[]).map((c) => c.conversationId))).toEqual([...conversations].sort());
    expect(forged).toMatchObject({ type: 'error', code: 'bad_request', action: 'getConversations' });
  });
});

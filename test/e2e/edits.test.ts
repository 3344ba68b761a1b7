import { GetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoMembershipStore } from '../../lambdas/adapters/dynamo-members.js';
import { startLocalBackend, type LocalBackend } from '../../local/backend.js';
import { ChatClient, type Frame } from '../support/chat.js';
import { documentClientOf } from '../support/durability.js';
import { uniqueId } from '../support/env.js';

/**
 * Edit and delete end to end through the emulator: only the sender, the seq kept, live members told, history and
 * pending pages showing the current version, the deleted body gone from the table (read back raw).
 */
let backend: LocalBackend;
let db: DynamoDBDocumentClient;
let members: DynamoMembershipStore;
const open: ChatClient[] = [];

beforeAll(async () => {
  backend = await startLocalBackend({ redisUrl: inject('redisUrl'), env: { LOG_LEVEL: 'SILENT' } });
  db = documentClientOf(backend);
  members = new DynamoMembershipStore(db, backend.tables.members);
});

afterAll(async () => {
  await Promise.all(open.splice(0).map((c) => c.close().catch(() => undefined)));
  db.destroy();
  await backend.close();
});

/** alice's phone and laptop and bob's phone, all subscribed to a new conversation. */
async function chat() {
  const conversationId = uniqueId('edit');
  for (const userId of ['alice', 'bob']) await members.add(conversationId, userId, 0);
  const connect = async (userId: string, deviceId: string) => {
    const client = await ChatClient.connect(backend, conversationId, userId, deviceId);
    open.push(client);
    return client;
  };
  const [alice, laptop, bob] = await Promise.all([connect('alice', 'phone'), connect('alice', 'laptop'), connect('bob', 'phone')]);
  const sent = await alice.request({ action: 'sendMessage', conversationId, clientMessageId: 'c-1', body: 'the original text' }, 'sent');
  for (const receiver of [laptop, bob]) await receiver.waitFor((f) => f.type === 'message');
  if (typeof sent.messageId !== 'string' || typeof sent.seq !== 'number') throw new Error(`sendMessage answered ${JSON.stringify(sent)}`);
  return { conversationId, alice, laptop, bob, messageId: sent.messageId, seq: sent.seq };
}

const rawItem = async (conversationId: string, seq: number) =>
  (await db.send(new GetCommand({ TableName: backend.tables.messages, Key: { conversationId, seq }, ConsistentRead: true }))).Item;

const history = async (client: ChatClient, conversationId: string): Promise<Frame[]> => {
  const page = await client.request({ action: 'getHistory', conversationId }, 'history');
  return Array.isArray(page.messages) ? page.messages.map((m: unknown) => m as Frame) : [];
};

describe('editMessage and deleteMessage through the emulator', () => {
  it('edits keep the seq, reach the other members and the sender\'s other device, and history returns the edit', async () => {
    // Prepare
    const { conversationId, alice, laptop, bob, messageId, seq } = await chat();
    // Act
    const edited = await alice.request({ action: 'editMessage', conversationId, messageId, body: 'the edited text', requestId: 'e1' }, 'edited');
    const onBob = await bob.waitFor((f) => f.type === 'messageEdited');
    const onLaptop = await laptop.waitFor((f) => f.type === 'messageEdited');
    const messages = await history(bob, conversationId);
    const pending = await bob.request({ action: 'getUnacked', conversationId }, 'unacked');
    // Assess
    expect(edited).toMatchObject({ type: 'edited', conversationId, messageId, seq, body: 'the edited text', requestId: 'e1' });
    expect(typeof edited.editedAt).toBe('number');
    for (const frame of [onBob, onLaptop]) {
      expect(frame).toEqual({ type: 'messageEdited', conversationId, messageId, seq, body: 'the edited text', editedAt: edited.editedAt });
    }
    expect(messages).toEqual([expect.objectContaining({ messageId, seq, body: 'the edited text', editedAt: edited.editedAt })]);
    expect(pending.messages).toEqual([expect.objectContaining({ messageId, seq, body: 'the edited text' })]);
  });

  it('refuses a non-sender\'s edit and delete as forbidden, and the message stays as it was', async () => {
    // Prepare
    const { conversationId, bob, messageId, seq } = await chat();
    // Act
    const edit = await bob.request({ action: 'editMessage', conversationId, messageId, body: 'hijacked' }, 'edited');
    const remove = await bob.request({ action: 'deleteMessage', conversationId, messageId }, 'deleted');
    const messages = await history(bob, conversationId);
    // Assess
    expect(edit).toMatchObject({ type: 'error', code: 'forbidden', action: 'editMessage' });
    expect(remove).toMatchObject({ type: 'error', code: 'forbidden', action: 'deleteMessage' });
    expect(messages).toEqual([expect.objectContaining({ messageId, seq, body: 'the original text' })]);
    expect(messages[0]).not.toHaveProperty('editedAt');
  });

  it('deletes into a tombstone with the same seq: members told, history shows it without a body, the body gone at rest', async () => {
    // Prepare
    const { conversationId, alice, bob, messageId, seq } = await chat();
    await alice.request({ action: 'editMessage', conversationId, messageId, body: 'an edit before the delete' }, 'edited');
    // Act
    const deleted = await alice.request({ action: 'deleteMessage', conversationId, messageId }, 'deleted');
    const again = await alice.request({ action: 'deleteMessage', conversationId, messageId, requestId: 'again' }, 'deleted');
    const told = await bob.waitFor((f) => f.type === 'messageDeleted');
    const messages = await history(bob, conversationId);
    const raw = await rawItem(conversationId, seq);
    const next = await alice.request({ action: 'sendMessage', conversationId, clientMessageId: 'c-2', body: 'after' }, 'sent');
    // Assess
    expect(deleted).toEqual({ type: 'deleted', conversationId, messageId, seq });
    expect(again).toEqual({ type: 'deleted', conversationId, messageId, seq, requestId: 'again' });
    expect(told).toEqual({ type: 'messageDeleted', conversationId, messageId, seq });
    expect(messages).toEqual([
      { conversationId, messageId, seq, senderId: 'alice', clientMessageId: 'c-1', sentAt: expect.any(Number), deleted: true },
    ]);
    expect(raw).toMatchObject({ messageId, seq, deleted: true });
    expect(raw).not.toHaveProperty('sealed');
    expect(next.seq).toBe(seq + 1);
    expect(bob.frames().filter((f) => f.type === 'messageDeleted')).toHaveLength(1);
  });

  it('answers not_found for an unknown id and for an edit of a deleted message', async () => {
    // Prepare
    const { conversationId, alice, messageId } = await chat();
    await alice.request({ action: 'deleteMessage', conversationId, messageId }, 'deleted');
    // Act
    const unknown = await alice.request({ action: 'editMessage', conversationId, messageId: 'no-such-message', body: 'x' }, 'edited');
    const late = await alice.request({ action: 'editMessage', conversationId, messageId, body: 'back again' }, 'edited');
    // Assess
    expect(unknown).toMatchObject({ type: 'error', code: 'not_found' });
    expect(late).toMatchObject({ type: 'error', code: 'not_found' });
  });
});

import { randomUUID } from 'node:crypto';
import { BatchWriteCommand, GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { DynamoMembershipStore } from '../../lambdas/adapters/dynamo-members.js';
import { createTables, instrumentedDoc, startDynalite, type LocalDynamo, type WireCommand } from '../support/dynalite.js';

const TABLES = { connections: 'connections', members: 'members' };

let dynamo: LocalDynamo;
let members: DynamoMembershipStore;
/** What the recorded store sends, one entry per command. */
const sent: WireCommand[] = [];
let recorder: { doc: DynamoDBDocumentClient; destroy(): void };
let recorded: DynamoMembershipStore;

beforeAll(async () => {
  dynamo = await startDynalite();
  await createTables(dynamo.client, TABLES);
  members = new DynamoMembershipStore(dynamo.doc, TABLES.members);
  recorder = instrumentedDoc(dynamo, { before: (command) => void sent.push(command) });
  recorded = new DynamoMembershipStore(recorder.doc, TABLES.members);
});

afterAll(async () => {
  recorder.destroy();
  await dynamo.close();
});

beforeEach(() => {
  sent.length = 0;
});

async function seed(items: Record<string, unknown>[]): Promise<void> {
  for (let start = 0; start < items.length; start += 25) {
    const batch = items.slice(start, start + 25).map((Item) => ({ PutRequest: { Item } }));
    const result = await dynamo.doc.send(new BatchWriteCommand({ RequestItems: { [TABLES.members]: batch } }));
    expect(Object.keys(result.UnprocessedItems ?? {})).toHaveLength(0);
  }
}

const commandNames = () => sent.map((command) => command.command);

describe('DynamoMembershipStore on dynalite', () => {
  it('is false for a user who was never added', async () => {
    await expect(members.isMember(randomUUID(), 'nobody')).resolves.toBe(false);
  });

  it('adds a member, who is then a member of that conversation only', async () => {
    const conversationId = randomUUID();
    await members.add(conversationId, 'alice', 0);

    await expect(members.isMember(conversationId, 'alice')).resolves.toBe(true);
    await expect(members.isMember(conversationId, 'bob')).resolves.toBe(false);
    await expect(members.isMember(randomUUID(), 'alice')).resolves.toBe(false);

    const { Item } = await dynamo.doc.send(
      new GetCommand({ TableName: TABLES.members, Key: { conversationId, userId: 'alice' } }),
    );
    expect(Item).toMatchObject({ conversationId, userId: 'alice' });
  });

  it('add is idempotent', async () => {
    const conversationId = randomUUID();
    await members.add(conversationId, 'carol', 0);
    await members.add(conversationId, 'carol', 0);
    await expect(members.isMember(conversationId, 'carol')).resolves.toBe(true);
  });

  it('removes a member and leaves the others; removing a non-member is a no-op', async () => {
    const conversationId = randomUUID();
    await members.add(conversationId, 'alice', 0);
    await members.add(conversationId, 'bob', 0);

    await members.remove(conversationId, 'alice');
    await expect(members.isMember(conversationId, 'alice')).resolves.toBe(false);
    await expect(members.isMember(conversationId, 'bob')).resolves.toBe(true);
    await expect(members.remove(conversationId, 'alice')).resolves.toBeUndefined();
    await expect(members.remove(randomUUID(), 'ghost')).resolves.toBeUndefined();
  });

  it('remembers the seq a member was (re-)added at; items written before sinceSeq existed count from 0', async () => {
    const conversationId = randomUUID();
    await members.add(conversationId, 'dave', 12);
    await expect(members.get(conversationId, 'dave')).resolves.toEqual({ conversationId, userId: 'dave', sinceSeq: 12 });
    await members.add(conversationId, 'dave', 30);
    await expect(members.get(conversationId, 'dave')).resolves.toMatchObject({ sinceSeq: 30 });
    await dynamo.doc.send(new PutCommand({ TableName: TABLES.members, Item: { conversationId, userId: 'erin', addedAt: 1 } }));
    await expect(members.get(conversationId, 'erin')).resolves.toMatchObject({ sinceSeq: 0 });
    await expect(members.get(conversationId, 'nobody')).resolves.toBeUndefined();
  });

  it('keeps arbitrary user ids (JWT subs) apart', async () => {
    const conversationId = randomUUID();
    const sub = 'auth0|5f7c8ec7c33c6c004bbafe82';
    await members.add(conversationId, sub, 0);
    await expect(members.isMember(conversationId, sub)).resolves.toBe(true);
    await expect(members.isMember(conversationId, 'auth0')).resolves.toBe(false);
  });

  it('getMany reads more than 100 conversations in batches and returns only the memberships, with their sinceSeq', async () => {
    const userId = `auth0|${randomUUID()}`;
    const conversations = Array.from({ length: 250 }, (_, i) => `conv-${String(i).padStart(3, '0')}-${randomUUID()}`);
    const items: Record<string, unknown>[] = [];
    const expected = new Map<string, { conversationId: string; userId: string; sinceSeq: number }>();
    conversations.forEach((conversationId, i) => {
      if (i % 3 === 0) {
        // Not a member; someone else is, so the conversation's partition is not empty.
        items.push({ conversationId, userId: `other-${i}`, sinceSeq: 1, addedAt: 1 });
      } else if (i % 3 === 1) {
        items.push({ conversationId, userId, sinceSeq: i, addedAt: 1 });
        expected.set(conversationId, { conversationId, userId, sinceSeq: i });
      } else {
        // Written before sinceSeq existed: counts from 0.
        items.push({ conversationId, userId, addedAt: 1 });
        expected.set(conversationId, { conversationId, userId, sinceSeq: 0 });
      }
    });
    await seed(items);
    expect(expected.size).toBeGreaterThan(100);

    // Duplicates are asked once; conversations nobody is in are left out too.
    const asked = [...conversations, ...conversations.slice(0, 20), randomUUID()];
    const found = await recorded.getMany(userId, asked);

    expect(new Map([...found].sort(([a], [b]) => a.localeCompare(b)))).toEqual(
      new Map([...expected].sort(([a], [b]) => a.localeCompare(b))),
    );
    expect(commandNames().every((name) => name === 'BatchGetItemCommand')).toBe(true);
    // 251 distinct keys: three batches of at most 100.
    expect(commandNames()).toHaveLength(3);
    await expect(members.getMany(userId, [])).resolves.toEqual(new Map());
  });

  it('list returns every member of a conversation across pages, and nobody of another', async () => {
    const base = `conv-${randomUUID()}`;
    const [before, conversationId, after] = [`${base}-l`, `${base}-m`, `${base}-n`];
    const padding = 'p'.repeat(2000);
    const users = Array.from({ length: 700 }, (_, i) => `user-${String(i).padStart(4, '0')}`);
    // About 1.4 MB in the partition: more than one Query page (1 MB).
    await seed([
      ...users.map((userId, i) => ({ conversationId, userId, sinceSeq: i, addedAt: 1, padding })),
      ...['x', 'y'].flatMap((userId) => [before, after].map((id) => ({ conversationId: id, userId, sinceSeq: 0, addedAt: 1 }))),
    ]);
    await members.add(conversationId, 'auth0|late', 3);

    const listed = await recorded.list(conversationId);

    expect([...listed].sort()).toEqual([...users, 'auth0|late'].sort());
    expect(new Set(listed).size).toBe(listed.length);
    expect(commandNames().every((name) => name === 'QueryCommand')).toBe(true);
    expect(sent.length).toBeGreaterThanOrEqual(2);
    await expect(members.list(`conv-${randomUUID()}`)).resolves.toEqual([]);
    await expect(members.list(before)).resolves.toEqual(['x', 'y']);
  });

  it('list sees a member added or removed just before, with a strongly consistent Query', async () => {
    const conversationId = `conv-${randomUUID()}`;
    await members.add(conversationId, 'alice', 0);
    await members.add(conversationId, 'bob', 0);
    await members.remove(conversationId, 'alice');
    const send = vi.spyOn(recorder.doc, 'send');
    try {
      await expect(recorded.list(conversationId)).resolves.toEqual(['bob']);
      expect(send).toHaveBeenCalledTimes(1);
      expect(send.mock.calls[0]?.[0].input).toMatchObject({ TableName: TABLES.members, ConsistentRead: true });
    } finally {
      send.mockRestore();
    }
  });
});

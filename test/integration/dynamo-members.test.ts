import { randomUUID } from 'node:crypto';
import { BatchWriteCommand, GetCommand, PutCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { DynamoMembershipStore } from '../../lambdas/adapters/dynamo-members.js';
import { MEMBER_USER_INDEX } from '../../deploy/tables.js';
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
    await expect(members.get(conversationId, 'dave')).resolves.toEqual({ conversationId, userId: 'dave', sinceSeq: 12, readSeq: 12 });
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
    const expected = new Map<string, { conversationId: string; userId: string; sinceSeq: number; readSeq: number }>();
    conversations.forEach((conversationId, i) => {
      if (i % 3 === 0) {
        // Not a member; someone else is, so the conversation's partition is not empty.
        items.push({ conversationId, userId: `other-${i}`, sinceSeq: 1, addedAt: 1 });
      } else if (i % 3 === 1) {
        items.push({ conversationId, userId, sinceSeq: i, addedAt: 1 });
        expected.set(conversationId, { conversationId, userId, sinceSeq: i, readSeq: 0 });
      } else {
        // Written before sinceSeq existed: counts from 0.
        items.push({ conversationId, userId, addedAt: 1 });
        expected.set(conversationId, { conversationId, userId, sinceSeq: 0, readSeq: 0 });
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

describe('DynamoMembershipStore: read positions and the user index', () => {
  it('listByUser pages a user\'s conversations in order, with a next page only when there is one', async () => {
    // Prepare
    const userId = `auth0|${randomUUID()}`;
    const conversations = Array.from({ length: 7 }, (_, i) => `conv-${i}-${randomUUID()}`).sort();
    for (const [i, conversationId] of conversations.entries()) await members.add(conversationId, userId, i);
    await members.add(nthOf(conversations, 0), 'someone-else', 0);
    await members.raiseReadSeq(nthOf(conversations, 1), userId, 9);
    // Act
    const pages = [];
    let after: string | undefined;
    do {
      const page = await recorded.listByUser(userId, { limit: 3, ...(after === undefined ? {} : { after }) });
      pages.push(page);
      after = page.nextAfter;
    } while (after !== undefined);
    const whole = await members.listByUser(userId, { limit: 7 });
    // Assess
    expect(pages.map((page) => page.memberships.map((m) => m.conversationId))).toEqual([conversations.slice(0, 3), conversations.slice(3, 6), conversations.slice(6)]);
    expect(pages[0]?.memberships[1]).toEqual({ conversationId: conversations[1], userId, sinceSeq: 1, readSeq: 9 });
    expect(whole.nextAfter).toBeUndefined();
    expect(whole.memberships).toHaveLength(7);
    expect(sent.every((command) => command.command === 'QueryCommand')).toBe(true);
    await expect(members.listByUser(`nobody-${randomUUID()}`, { limit: 10 })).resolves.toEqual({ memberships: [] });
  });

  it('the user index holds every membership of the user (created from the shared table shape)', async () => {
    // Prepare
    const userId = `u-${randomUUID()}`;
    await members.add(`c-${randomUUID()}`, userId, 0);
    // Act
    const { Items } = await dynamo.doc.send(
      new QueryCommand({ TableName: TABLES.members, IndexName: MEMBER_USER_INDEX, KeyConditionExpression: 'userId = :u', ExpressionAttributeValues: { ':u': userId } }),
    );
    // Assess
    expect(Items).toHaveLength(1);
    expect(Items?.[0]).toMatchObject({ userId, sinceSeq: 0, readSeq: 0 });
  });

  it('raiseReadSeq only moves forward, answers the stored position otherwise, and is undefined for a non-member', async () => {
    // Prepare
    const conversationId = randomUUID();
    await members.add(conversationId, 'alice', 2);
    // Act
    const marks = [];
    for (const seq of [5, 3, 5, 0, 8]) marks.push(await members.raiseReadSeq(conversationId, 'alice', seq));
    const stranger = await members.raiseReadSeq(conversationId, 'mallory', 4);
    // Assess
    expect(marks).toEqual([
      { readSeq: 5, moved: true },
      { readSeq: 5, moved: false },
      { readSeq: 5, moved: false },
      { readSeq: 5, moved: false },
      { readSeq: 8, moved: true },
    ]);
    expect(stranger).toBeUndefined();
    // The failed condition wrote nothing: no item appeared for the non-member.
    await expect(members.get(conversationId, 'mallory')).resolves.toBeUndefined();
    await expect(members.get(conversationId, 'alice')).resolves.toMatchObject({ readSeq: 8, sinceSeq: 2 });
  });

  it('raiseReadSeq of concurrent readers keeps the highest', async () => {
    // Prepare
    const conversationId = randomUUID();
    await members.add(conversationId, 'alice', 0);
    const seqs = Array.from({ length: 20 }, (_, i) => ((i * 7) % 20) + 1);
    // Act
    const marks = await Promise.all(seqs.map((seq) => members.raiseReadSeq(conversationId, 'alice', seq)));
    // Assess
    await expect(members.get(conversationId, 'alice')).resolves.toMatchObject({ readSeq: 20 });
    expect(marks.filter((m) => m?.moved === true && m.readSeq === 20)).toHaveLength(1);
  });

  it('a re-add keeps a current member\'s read position; a removed and re-added member starts at the re-add', async () => {
    // Prepare
    const conversationId = randomUUID();
    await members.add(conversationId, 'alice', 0);
    await members.raiseReadSeq(conversationId, 'alice', 10);
    await members.add(conversationId, 'bob', 0);
    await members.raiseReadSeq(conversationId, 'bob', 4);
    // Act
    await members.add(conversationId, 'alice', 0);
    await members.remove(conversationId, 'bob');
    await members.add(conversationId, 'bob', 12);
    // Assess
    await expect(members.get(conversationId, 'alice')).resolves.toEqual({ conversationId, userId: 'alice', sinceSeq: 0, readSeq: 10 });
    await expect(members.get(conversationId, 'bob')).resolves.toEqual({ conversationId, userId: 'bob', sinceSeq: 12, readSeq: 12 });
  });
});

function nthOf<T>(items: readonly T[], index: number): T {
  const item = items[index];
  if (item === undefined) throw new Error(`no item at ${index}`);
  return item;
}

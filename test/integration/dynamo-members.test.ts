import { randomUUID } from 'node:crypto';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoMembershipStore } from '../../lambdas/adapters/dynamo-members.js';
import { createTables, startDynalite, type LocalDynamo } from '../support/dynalite.js';

const TABLES = { connections: 'connections', members: 'members' };

let dynamo: LocalDynamo;
let members: DynamoMembershipStore;

beforeAll(async () => {
  dynamo = await startDynalite();
  await createTables(dynamo.client, TABLES);
  members = new DynamoMembershipStore(dynamo.doc, TABLES.members);
});

afterAll(async () => {
  await dynamo.close();
});

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
});

import { randomUUID } from 'node:crypto';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
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
    await members.add(conversationId, 'alice');

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
    await members.add(conversationId, 'carol');
    await members.add(conversationId, 'carol');
    await expect(members.isMember(conversationId, 'carol')).resolves.toBe(true);
  });

  it('removes a member and leaves the others; removing a non-member is a no-op', async () => {
    const conversationId = randomUUID();
    await members.add(conversationId, 'alice');
    await members.add(conversationId, 'bob');

    await members.remove(conversationId, 'alice');
    await expect(members.isMember(conversationId, 'alice')).resolves.toBe(false);
    await expect(members.isMember(conversationId, 'bob')).resolves.toBe(true);
    await expect(members.remove(conversationId, 'alice')).resolves.toBeUndefined();
    await expect(members.remove(randomUUID(), 'ghost')).resolves.toBeUndefined();
  });

  it('keeps arbitrary user ids (JWT subs) apart', async () => {
    const conversationId = randomUUID();
    const sub = 'auth0|5f7c8ec7c33c6c004bbafe82';
    await members.add(conversationId, sub);
    await expect(members.isMember(conversationId, sub)).resolves.toBe(true);
    await expect(members.isMember(conversationId, 'auth0')).resolves.toBe(false);
  });
});

import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { DynamoMembershipStore } from '../../lambdas/adapters/dynamo-members.js';
import { startLocalBackend, type LocalBackend } from '../../local/backend.js';
import { ChatClient, type Frame } from '../support/chat.js';
import { allHistory, documentClientOf } from '../support/durability.js';
import { uniqueId } from '../support/env.js';
import { closedPort } from '../integration/net.js';

/**
 * Fan-out budgets through the real handlers: a conversation of four live users on a budget of 4 posts a second,
 * so one message (3 recipients and the sender's `sent`) spends it all. The next send is refused before it is
 * stored (`rate_limited` with `retryAfterMs`); resent with the same clientMessageId after the wait it is stored
 * once. With Redis down the budgets are kept in the container, and the same holds.
 */
const started: { backend: LocalBackend; db: DynamoDBDocumentClient; clients: ChatClient[] }[] = [];

afterAll(async () => {
  for (const { backend, db, clients } of started) {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    db.destroy();
    await backend.close();
  }
});

async function conversationOn(redisUrl: string) {
  const backend = await startLocalBackend({ redisUrl, env: { LOG_LEVEL: 'SILENT', FANOUT_BUDGET_CONVERSATION_PER_SECOND: '4' } });
  const db = documentClientOf(backend);
  const clients: ChatClient[] = [];
  started.push({ backend, db, clients });
  const conversationId = uniqueId('budget');
  const members = new DynamoMembershipStore(db, backend.tables.members);
  const users = ['alice', 'bob', 'carol', 'dave'];
  for (const userId of users) await members.add(conversationId, userId, 0);
  for (const userId of users) clients.push(await ChatClient.connect(backend, conversationId, userId, 'phone'));
  const [alice, bob] = clients;
  if (alice === undefined || bob === undefined) throw new Error('no clients');
  let n = 0;
  const send = async (clientMessageId: string): Promise<{ answer: Frame; ms: number }> => {
    n += 1;
    const requestId = `r${n}`;
    const begun = performance.now();
    await alice.send({ action: 'sendMessage', conversationId, clientMessageId, body: `text of ${clientMessageId}`, requestId });
    const answer = await alice.waitFor((f) => f.requestId === requestId);
    return { answer, ms: performance.now() - begun };
  };
  return { conversationId, alice, bob, send };
}

async function refusesThenStoresOnce(redisUrl: string): Promise<number> {
  const { conversationId, alice, bob, send } = await conversationOn(redisUrl);
  const first = await send('first');
  expect(first.answer).toMatchObject({ type: 'sent', clientMessageId: 'first', seq: 1 });
  await bob.waitFor((f) => f.type === 'message' && f.clientMessageId === 'first');

  const refused = await send('second');
  expect(refused.answer).toMatchObject({ type: 'error', code: 'rate_limited', action: 'sendMessage', retryAfterMs: expect.any(Number) });
  const retryAfterMs = Number(refused.answer.retryAfterMs);
  expect(retryAfterMs).toBeGreaterThan(0);
  expect(retryAfterMs).toBeLessThanOrEqual(250);
  expect(String(refused.answer.message)).toMatch(/nothing was stored/);

  await new Promise((resolve) => setTimeout(resolve, retryAfterMs));
  const resent = await send('second');
  expect(resent.answer).toMatchObject({ type: 'sent', clientMessageId: 'second', seq: 2, duplicate: false });
  await bob.waitFor((f) => f.type === 'message' && f.clientMessageId === 'second');
  const history = await allHistory(alice, conversationId);
  expect(history.items.map((m) => m.clientMessageId)).toEqual(['first', 'second']);
  return Math.max(first.ms, refused.ms, resent.ms);
}

describe('fan-out budgets through the handlers', () => {
  it('refuses a send while the conversation’s budget is in debt, and stores its resend once (budgets in Redis)', async () => {
    const redisUrl = inject('redisUrl');
    await refusesThenStoresOnce(redisUrl);
    const probe = new Redis(redisUrl);
    try {
      const keys = await probe.keys('{c:budget*}:fb');
      expect(keys.length).toBeGreaterThan(0);
    } finally {
      probe.disconnect();
    }
  });

  it('fails open to the container’s own budgets when Redis is down, within 3 s a frame', async () => {
    const slowest = await refusesThenStoresOnce(`redis://127.0.0.1:${await closedPort()}`);
    expect(slowest).toBeLessThan(3000);
  });
});

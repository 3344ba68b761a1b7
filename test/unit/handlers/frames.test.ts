import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { CONVERSATION_INDEX } from '../../../deploy/tables.js';
import { lazyServices, Scope } from '../../../lambdas/context/lazy.js';
import { handler as defaultRoute } from '../../../lambdas/handlers/default.js';
import { route as subscribeRoute } from '../../../lambdas/handlers/subscribe.js';
import { route as unsubscribeRoute } from '../../../lambdas/handlers/unsubscribe.js';
import { mockAws, type AwsMocks } from '../../support/aws-mocks.js';
import { applyEnv, completeEnv, restoreEnv, uniqueId } from '../../support/env.js';
import { answerOf, messageEvent } from '../../support/events.js';
import { testLambdas } from '../../support/lambdas.js';
import { fakeDevicePositions, fakeMessageLog } from '../../support/fake-store.js';


let aws: AwsMocks;
let conversationId: string;
/** The message log and positions the routes share, in memory: this file tests the handlers, not DynamoDB. */
const store = { messages: fakeMessageLog(), positions: fakeDevicePositions() };
const lambdas = testLambdas(() => process.env, store);
const ack = lambdas.ack;
const getUnacked = lambdas.getUnacked;
const sendMessage = lambdas.sendMessage;
const typing = lambdas.typing;
/** The same routes in containers whose limiter refuses every frame (its buckets are empty). */
const limited = testLambdas(() => process.env, { ...store, limiter: { admit: async () => false } });
/** `subscribe` and `unsubscribe`, built like the others (test/support/lambdas.ts does not list them). */
const scope = new Scope();
const subscribe = subscribeRoute.create(lazyServices(() => subscribeRoute.build(process.env, scope, store)));
const unsubscribe = unsubscribeRoute.create(lazyServices(() => unsubscribeRoute.build(process.env, scope)));

beforeAll(async () => {
  applyEnv(
    completeEnv(inject('redisUrl'), {
      RATE_LIMIT_PER_SECOND: '1000',
      RATE_LIMIT_BURST: '1000',
      // The connections here are a moment old: prune them on 410 at once (the grace is tested in delivery.test.ts).
      PRUNE_GRACE_SECONDS: '0',
      RATE_LIMIT_USER_PER_SECOND: '1000',
      RATE_LIMIT_USER_BURST: '1000',
      FANOUT_THRESHOLD: '5',
      FANOUT_BATCH_SIZE: '2',
    }),
  );
  aws = await mockAws();
});
afterAll(async () => {
  await lambdas.reset();
  await limited.reset();
  await scope.close();
  await aws.restore();
  restoreEnv();
});

/** Reads of the registry's items, by kind: a connection's record, or one of its subscriptions. */
const recordReads = () => aws.dynamo.commandCalls(GetCommand).filter((c) => c.args[0].input.Key?.entry === '#connection');
const subscriptionReads = () => aws.dynamo.commandCalls(GetCommand).filter((c) => String(c.args[0].input.Key?.entry).startsWith('c#'));
/** Queries of the conversation index (the recipients) and of the members table (the roster). */
const recipientQueries = () => aws.dynamo.commandCalls(QueryCommand).filter((c) => c.args[0].input.IndexName === CONVERSATION_INDEX);
const rosterQueries = () => aws.dynamo.commandCalls(QueryCommand).filter((c) => c.args[0].input.TableName === 'members-test');
/** The registry's items of one connection (its record and its subscriptions). */
const itemsOf = (connectionId: string) => [...aws.connections.values()].filter((item) => item.connectionId === connectionId);

/**
 * alice on phone (A1) and laptop (A2), bob on phone (B1), all connected to one conversation. Connection ids
 * are reused across tests here, unlike API Gateway's, so each test starts with a fresh context (whose
 * registry remembers bindings).
 */
beforeEach(async () => {
  await lambdas.reset();
  await limited.reset();
  aws.reset();
  conversationId = uniqueId('conv');
  aws.connect({ connectionId: 'A1', userId: 'alice', deviceId: 'phone', conversationId });
  aws.connect({ connectionId: 'A2', userId: 'alice', deviceId: 'laptop', conversationId });
  aws.connect({ connectionId: 'B1', userId: 'bob', deviceId: 'phone', conversationId });
  aws.addMember(conversationId, 'alice');
  aws.addMember(conversationId, 'bob');
});

async function registerDevices() {
  // Devices get their positions at $connect; here directly in the (fake) positions the routes share.
  for (const [userId, deviceId] of [['alice', 'phone'], ['alice', 'laptop'], ['bob', 'phone']] as const) {
    await store.positions.register(conversationId, { userId, deviceId }, 0, Date.now());
  }
}

/**
 * Sends a message and returns what the sender got back: `sent` is posted to the sender's own connection first
 * (through the Management API), or, if that post failed, answered as the route response.
 */
async function send(connectionId: string, frame: Record<string, unknown>): Promise<Record<string, unknown>> {
  const before = aws.postsTo(connectionId).length;
  const result = await sendMessage(messageEvent(connectionId, { action: 'sendMessage', conversationId, ...frame }, 'sendMessage'));
  if (result.body !== undefined) return answerOf(result);
  const posted = aws.postsTo(connectionId).slice(before).find((f) => f.type === 'sent');
  if (posted === undefined) throw new Error('the sender got no sent frame');
  return posted;
}

/** Posts of `message` frames (the fan-out), not the sender's own `sent`. */
const messagePosts = () => aws.posts.filter((p) => p.frame.type === 'message');

describe('typing', () => {
  it('reaches every other user and none of the sender\'s own connections; answers nothing', async () => {
    const result = await typing(messageEvent('A1', { action: 'typing', conversationId }, 'typing'));
    expect(result).toEqual({ statusCode: 200 });
    expect(aws.posts.map((p) => p.connectionId)).toEqual(['B1']);
    expect(aws.posts[0]?.frame).toMatchObject({ type: 'typing', conversationId, userId: 'alice', state: 'start' });
    const posted = aws.posts[0]?.frame;
    expect(posted?.expiresAt).toBe(Number(posted?.at) + 6000);
    expect(recipientQueries()).toHaveLength(1);
    // The roster is read once and serves both the sender's check and the recipients' filter.
    expect(rosterQueries()).toHaveLength(1);
    expect(aws.dynamo.commandCalls(QueryCommand)).toHaveLength(2);
  });

  it('reads a connection\'s record once per container; its subscription (which can change) on every frame', async () => {
    // Alternating states: each one goes out (a repeated start would be coalesced and read no recipients).
    for (const state of ['start', 'stop', 'start']) await typing(messageEvent('A1', { action: 'typing', conversationId, state }, 'typing'));
    expect(recordReads()).toHaveLength(1);
    expect(subscriptionReads()).toHaveLength(3);
    expect(aws.dynamo.commandCalls(GetCommand)).toHaveLength(4);
    expect(recipientQueries()).toHaveLength(3);
    expect(rosterQueries()).toHaveLength(1);
  });

  it('coalesces repeated starts through Redis: one post, one recipient query, until the state changes', async () => {
    for (let i = 0; i < 5; i += 1) await typing(messageEvent(i % 2 === 0 ? 'A1' : 'A2', { action: 'typing', conversationId }, 'typing'));
    await typing(messageEvent('A1', { action: 'typing', conversationId, state: 'stop' }, 'typing'));
    expect(aws.postsTo('B1').map((f) => f.state)).toEqual(['start', 'stop']);
    expect(recipientQueries()).toHaveLength(2);
  });

  it('carries state stop', async () => {
    await typing(messageEvent('B1', { action: 'typing', conversationId, state: 'stop', userId: 'bob' }, 'typing'));
    expect(aws.postsTo('A1')).toEqual([expect.objectContaining({ state: 'stop', userId: 'bob' })]);
  });

  it.each([
    ['a spoofed userId', { userId: 'bob' }],
    ['another conversation', { conversationId: 'elsewhere' }],
  ])('refuses %s with forbidden and posts nothing', async (_label, spoof) => {
    const result = await typing(messageEvent('A1', { action: 'typing', conversationId, ...spoof }, 'typing'));
    expect(answerOf(result)).toMatchObject({ type: 'error', code: 'forbidden', action: 'typing' });
    expect(aws.attempts).toHaveLength(0);
  });

  it('refuses a connection that never registered', async () => {
    const result = await typing(messageEvent('ZZ', { action: 'typing', conversationId }, 'typing'));
    expect(answerOf(result)).toMatchObject({ code: 'forbidden' });
  });

  it('prunes a gone connection (410) and keeps delivering to the rest', async () => {
    aws.connect({ connectionId: 'C1', userId: 'carol', deviceId: 'phone', conversationId });
    aws.gone.add('B1');
    aws.addMember(conversationId, 'carol');
    expect(itemsOf('B1')).toHaveLength(2);
    await typing(messageEvent('A1', { action: 'typing', conversationId }, 'typing'));
    expect(itemsOf('B1')).toEqual([]);
    expect(itemsOf('A1')).toHaveLength(2);
    expect(aws.postsTo('C1')).toHaveLength(1);
  });
});

describe('sendMessage', () => {
  it('answers sent, delivers live to every device but the sending one, and leaves it pending', async () => {
    await registerDevices();
    const sent = await send('A1', { clientMessageId: 'cm-1', body: 'hello' });
    expect(sent).toMatchObject({ type: 'sent', conversationId, clientMessageId: 'cm-1', seq: 1, duplicate: false });
    expect(typeof sent.messageId).toBe('string');
    expect(messagePosts().map((p) => p.connectionId).sort()).toEqual(['A2', 'B1']);
    // `sent` reached the sender before any other device got the message.
    expect(aws.posts[0]).toMatchObject({ connectionId: 'A1', frame: { type: 'sent' } });
    expect(aws.postsTo('B1')[0]).toEqual({
      type: 'message',
      conversationId,
      messageId: sent.messageId,
      seq: 1,
      senderId: 'alice',
      clientMessageId: 'cm-1',
      body: 'hello',
      sentAt: sent.sentAt,
    });
    const pendingForBob = answerOf(await getUnacked(messageEvent('B1', { action: 'getUnacked', conversationId }, 'getUnacked')));
    expect(pendingForBob).toMatchObject({ type: 'unacked', hasMore: false, messages: [expect.objectContaining({ body: 'hello', seq: 1 })] });
    const pendingForSender = answerOf(await getUnacked(messageEvent('A1', { action: 'getUnacked', conversationId }, 'getUnacked')));
    expect(pendingForSender.messages).toEqual([]);
  });

  it('gives increasing seqs and answers a re-sent clientMessageId with the first ids, storing nothing new', async () => {
    await registerDevices();
    const first = await send('A1', { clientMessageId: 'cm-1', body: 'one' });
    const second = await send('A1', { clientMessageId: 'cm-2', body: 'two' });
    aws.posts.length = 0;
    const again = await send('A1', { clientMessageId: 'cm-1', body: 'one' });
    expect(second.seq).toBe(Number(first.seq) + 1);
    expect(again).toMatchObject({ messageId: first.messageId, seq: first.seq, sentAt: first.sentAt, duplicate: true });
    expect(aws.posts).toHaveLength(0);
    const pending = answerOf(await getUnacked(messageEvent('B1', { action: 'getUnacked', conversationId }, 'getUnacked')));
    expect((pending.messages as unknown[]).length).toBe(2);
  });

  it('goes through SQS in batches above the fan-out threshold, with no body in the queue', async () => {
    await registerDevices();
    for (let i = 0; i < 6; i += 1) {
      aws.connect({ connectionId: `X${i}`, userId: `user${i}`, deviceId: 'd', conversationId });
      aws.addMember(conversationId, `user${i}`);
    }
    await send('A1', { clientMessageId: 'cm-big', body: 'secret words' });
    expect(aws.sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(1);
    expect(aws.queued).toHaveLength(4); // 8 recipients in batches of 2
    expect(JSON.stringify(aws.queued)).not.toContain('secret words');
    expect(messagePosts()).toHaveLength(0);
  });

  it('still answers sent when the recipients cannot be listed: the message is stored and pending', async () => {
    await registerDevices();
    // Only the conversation index is down: the sender's subscription and the roster still answer.
    aws.dynamo
      .on(QueryCommand, { IndexName: CONVERSATION_INDEX })
      .rejects(Object.assign(new Error('down'), { name: 'InternalServerError', $metadata: { httpStatusCode: 500 } }));
    const sent = await send('A1', { clientMessageId: 'cm-q', body: 'kept' });
    expect(sent).toMatchObject({ type: 'sent', duplicate: false });
    expect(recipientQueries().length).toBeGreaterThan(0);
    expect(messagePosts()).toHaveLength(0);
    const pending = answerOf(await getUnacked(messageEvent('B1', { action: 'getUnacked', conversationId }, 'getUnacked')));
    expect(pending.messages).toEqual([expect.objectContaining({ body: 'kept' })]);
  });

  it('delivers nothing to a subscription whose user is no longer a member: it is dropped and told', async () => {
    await registerDevices();
    aws.connect({ connectionId: 'C1', userId: 'carol', deviceId: 'phone', conversationId });
    await send('A1', { clientMessageId: 'cm-r', body: 'members only' });
    expect(messagePosts().map((p) => p.connectionId).sort()).toEqual(['A2', 'B1']);
    expect(aws.postsTo('C1')).toEqual([{ type: 'unsubscribed', conversations: [{ conversationId, status: 'forbidden' }] }]);
    expect(aws.subscriptions().map((s) => s.connectionId).sort()).toEqual(['A1', 'A2', 'B1']);
    expect(itemsOf('C1')).toEqual([expect.objectContaining({ entry: '#connection' })]);
  });

  it('refuses an oversize body with bad_request and stores nothing', async () => {
    await registerDevices();
    const result = await send('A1', { clientMessageId: 'big', body: 'é'.repeat(16 * 1024 + 1) });
    expect(result).toMatchObject({ type: 'error', code: 'bad_request', action: 'sendMessage' });
    expect(String(result.message)).not.toContain('éé');
    const pending = answerOf(await getUnacked(messageEvent('B1', { action: 'getUnacked', conversationId }, 'getUnacked')));
    expect(pending.messages).toEqual([]);
  });

  it('refuses a body whose encoded frame would exceed the 128 KB message limit', async () => {
    const body = '\u0001'.repeat(30 * 1024); // 30 KiB of UTF-8, ~180 KB once JSON-escaped
    const result = await send('A1', { clientMessageId: 'esc', body });
    expect(result).toMatchObject({ code: 'payload_too_large' });
  });
});

describe('ack and getUnacked', () => {
  it('ack clears only this device; it is idempotent and ignores unknown ids', async () => {
    await registerDevices();
    const m1 = await send('B1', { clientMessageId: 'b-1', body: 'first' });
    const m2 = await send('B1', { clientMessageId: 'b-2', body: 'second' });
    const acked = answerOf(await ack(messageEvent('A1', { action: 'ack', conversationId, messageIds: [m1.messageId, 'nope'] }, 'ack')));
    expect(acked).toEqual({ type: 'acked', conversationId, messageIds: [m1.messageId, 'nope'] });
    const again = answerOf(await ack(messageEvent('A1', { action: 'ack', conversationId, messageIds: [m1.messageId] }, 'ack')));
    expect(again.type).toBe('acked');
    const phone = answerOf(await getUnacked(messageEvent('A1', { action: 'getUnacked', conversationId }, 'getUnacked')));
    const laptop = answerOf(await getUnacked(messageEvent('A2', { action: 'getUnacked', conversationId }, 'getUnacked')));
    expect((phone.messages as { messageId: string }[]).map((m) => m.messageId)).toEqual([m2.messageId]);
    expect((laptop.messages as { messageId: string }[]).map((m) => m.messageId)).toEqual([m1.messageId, m2.messageId]);
  });

  it('pages by limit and afterSeq in seq order', async () => {
    await registerDevices();
    for (let i = 1; i <= 5; i += 1) await send('B1', { clientMessageId: `p-${i}`, body: `m${i}` });
    const page1 = answerOf(await getUnacked(messageEvent('A1', { action: 'getUnacked', conversationId, limit: 2 }, 'getUnacked')));
    expect((page1.messages as { seq: number }[]).map((m) => m.seq)).toEqual([1, 2]);
    expect(page1.hasMore).toBe(true);
    const page2 = answerOf(await getUnacked(messageEvent('A1', { action: 'getUnacked', conversationId, limit: 10, afterSeq: 2 }, 'getUnacked')));
    expect((page2.messages as { seq: number }[]).map((m) => m.seq)).toEqual([3, 4, 5]);
    expect(page2.hasMore).toBe(false);
  });

  it('pages by size so that no answer exceeds 128 KB', async () => {
    await registerDevices();
    const body = 'x'.repeat(30 * 1024);
    for (let i = 1; i <= 6; i += 1) await send('B1', { clientMessageId: `big-${i}`, body });
    const result = await getUnacked(messageEvent('A1', { action: 'getUnacked', conversationId, limit: 100 }, 'getUnacked'));
    const page = answerOf(result);
    expect(Buffer.byteLength(result.body ?? '', 'utf8')).toBeLessThanOrEqual(128 * 1024);
    expect((page.messages as unknown[]).length).toBeGreaterThan(0);
    expect((page.messages as unknown[]).length).toBeLessThan(6);
    expect(page.hasMore).toBe(true);
  });

  it('refuses ack and getUnacked for another conversation', async () => {
    const a = answerOf(await ack(messageEvent('A1', { action: 'ack', conversationId: 'other', messageIds: ['x'] }, 'ack')));
    const g = answerOf(await getUnacked(messageEvent('A1', { action: 'getUnacked', conversationId: 'other' }, 'getUnacked')));
    expect([a.code, g.code]).toEqual(['forbidden', 'forbidden']);
  });
});

describe('subscribe and unsubscribe', () => {
  /** A connection opened without a conversationId: its record only. */
  function openBare(connectionId: string, userId: string, deviceId: string) {
    const now = Date.now();
    aws.connections.set(`${connectionId}|#connection`, { connectionId, entry: '#connection', userId, deviceId, connectedAt: now, expiresAt: Math.floor(now / 1000) + 3600 });
  }

  it('subscribes a bare connection to the conversations its user is a member of, and frames then pass', async () => {
    openBare('N1', 'alice', 'tablet');
    const elsewhere = uniqueId('conv');
    const before = answerOf(await typing(messageEvent('N1', { action: 'typing', conversationId }, 'typing')));
    expect(before).toMatchObject({ type: 'error', code: 'forbidden' });
    const answer = answerOf(await subscribe(messageEvent('N1', { action: 'subscribe', conversationIds: [conversationId, elsewhere], requestId: 'sub-1' }, 'subscribe')));
    expect(answer).toEqual({
      type: 'subscribed',
      conversations: [
        { conversationId, status: 'ok', lastSeq: 0 },
        { conversationId: elsewhere, status: 'forbidden' },
      ],
      requestId: 'sub-1',
    });
    expect(itemsOf('N1').map((item) => item.entry).sort()).toEqual(['#connection', `c#${conversationId}`]);
    expect(await store.positions.get(conversationId, { userId: 'alice', deviceId: 'tablet' })).toMatchObject({ ackedThrough: 0 });
    const after = await typing(messageEvent('N1', { action: 'typing', conversationId }, 'typing'));
    expect(after).toEqual({ statusCode: 200 });
    // The other member learnt that alice came online (her first subscription there), then saw her typing.
    expect(aws.postsTo('B1')).toEqual([
      expect.objectContaining({ type: 'presence', conversationId, userId: 'alice', state: 'online' }),
      expect.objectContaining({ type: 'typing', userId: 'alice' }),
    ]);
  });

  it('resumes with afterSeq: subscribed is posted first, then the missed messages', async () => {
    await registerDevices();
    await send('B1', { clientMessageId: 'r-1', body: 'one' });
    await send('B1', { clientMessageId: 'r-2', body: 'two' });
    aws.connections.delete(`A2|c#${conversationId}`);
    aws.posts.length = 0;
    const result = await subscribe(messageEvent('A2', { action: 'subscribe', conversationIds: [conversationId], afterSeq: { [conversationId]: 1 }, requestId: 'res' }, 'subscribe'));
    expect(result.body).toBeUndefined();
    const frames = aws.postsTo('A2');
    expect(frames.map((f) => f.type)).toEqual(['subscribed', 'unacked']);
    expect(frames[0]).toMatchObject({ requestId: 'res', conversations: [{ conversationId, status: 'ok', lastSeq: 2 }] });
    expect(frames[1]).toMatchObject({ conversationId, requestId: 'res', hasMore: false, messages: [expect.objectContaining({ seq: 2, body: 'two' })] });
  });

  it('unsubscribe drops the subscription: the next frame for it is forbidden', async () => {
    const answer = answerOf(await unsubscribe(messageEvent('A1', { action: 'unsubscribe', conversationIds: [conversationId], requestId: 'uns' }, 'unsubscribe')));
    expect(answer).toEqual({ type: 'unsubscribed', conversations: [{ conversationId, status: 'ok' }], requestId: 'uns' });
    expect(itemsOf('A1').map((item) => item.entry)).toEqual(['#connection']);
    const refused = answerOf(await typing(messageEvent('A1', { action: 'typing', conversationId }, 'typing')));
    expect(refused).toMatchObject({ type: 'error', code: 'forbidden' });
  });
});

describe('rate limits', () => {
  it.each(['typing', 'sendMessage', 'ack', 'getUnacked', 'getHistory'] as const)(
    '%s: a rate-limited frame makes no DynamoDB call after the connection record, and answers rate_limited',
    async (action) => {
      await registerDevices();
      const frame = { action, conversationId, clientMessageId: 'rl', body: 'never stored', messageIds: ['m'], requestId: 'rl-1' };
      const entriesBefore = store.messages.entries.length;
      const answer = answerOf(await limited[action](messageEvent('A1', frame, action)));
      expect(answer).toMatchObject({ type: 'error', code: 'rate_limited', action, requestId: 'rl-1' });
      expect(aws.dynamo.calls()).toHaveLength(1);
      expect(recordReads()).toHaveLength(1);
      expect(aws.sqs.calls()).toHaveLength(0);
      expect(aws.attempts).toHaveLength(0);
      expect(store.messages.entries).toHaveLength(entriesBefore);
    },
  );
});

describe('$default', () => {
  it.each([
    ['not JSON', 'hello there', /not valid JSON/],
    ['a JSON array', '[1,2]', /JSON object/],
    ['no action', '{"conversationId":"c"}', /missing "action"/],
    ['an unknown action', '{"action":"dance"}', /unknown action/],
  ])('answers bad_request to %s', async (_label, body, message) => {
    const answer = answerOf(await defaultRoute(messageEvent('A1', body)));
    expect(answer).toMatchObject({ type: 'error', code: 'bad_request' });
    expect(String(answer.message)).toMatch(message);
  });

  it('echoes a well-formed requestId, never a malformed one', async () => {
    expect(answerOf(await defaultRoute(messageEvent('A1', { action: 'dance', requestId: 'd-1' }))).requestId).toBe('d-1');
    expect(answerOf(await defaultRoute(messageEvent('A1', { requestId: 'd-2' }))).requestId).toBe('d-2');
    expect(answerOf(await defaultRoute(messageEvent('A1', { action: 'dance', requestId: 'not ok' })))).not.toHaveProperty('requestId');
  });

  it('echoes a short unknown action but never a long or odd one', async () => {
    expect(answerOf(await defaultRoute(messageEvent('A1', '{"action":"dance"}'))).action).toBe('dance');
    expect(answerOf(await defaultRoute(messageEvent('A1', JSON.stringify({ action: 'x'.repeat(500) })))).action).toBeUndefined();
  });
});

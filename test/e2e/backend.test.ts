import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoMembershipStore } from '../../lambdas/adapters/dynamo-members.js';
import { startLocalBackend, type LocalBackend } from '../../local/backend.js';
import { openClient, refusedStatus } from '../../local/gateway/testing.js';
import { signToken } from '../../local/tokens.js';
import { ChatClient, connectUrl, eventually, tokenFor, type Frame } from '../support/chat.js';
import { uniqueId } from '../support/env.js';

/**
 * The whole backend through the local gateway: real `ws` clients, the real handlers, dynalite, fauxqs
 * feeding the fan-out worker, and the test run's redis-server.
 */
let backend: LocalBackend;
let db: DynamoDBDocumentClient;
let members: DynamoMembershipStore;
const open: ChatClient[] = [];

beforeAll(async () => {
  backend = await startLocalBackend({
    redisUrl: inject('redisUrl'),
    // PRUNE_GRACE_SECONDS 0: the stale connections here are seconds old, and their prune on 410 is under test.
    env: { LOG_LEVEL: 'SILENT', FANOUT_THRESHOLD: '3', FANOUT_BATCH_SIZE: '2', RATE_LIMIT_PER_SECOND: '200', RATE_LIMIT_BURST: '400', PRUNE_GRACE_SECONDS: '0' },
  });
  db = DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint: backend.dynamodbEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }),
  );
  members = new DynamoMembershipStore(db, backend.tables.members);
});

afterAll(async () => {
  await Promise.all(open.splice(0).map((c) => c.close().catch(() => undefined)));
  db.destroy();
  await backend.close();
});

async function conversationWith(...userIds: string[]): Promise<string> {
  const conversationId = uniqueId('e2e');
  for (const userId of userIds) await members.add(conversationId, userId, 0);
  return conversationId;
}

async function join(conversationId: string, userId: string, deviceId: string): Promise<ChatClient> {
  const client = await ChatClient.connect(backend, conversationId, userId, deviceId);
  open.push(client);
  return client;
}

const ids = (frame: Frame) => (frame.messages as { messageId: string }[]).map((m) => m.messageId);
const seqs = (frame: Frame) => (frame.messages as { seq: number }[]).map((m) => m.seq);

describe('a conversation of two users on three devices', () => {
  it('typing reaches the other user only; messages reach live devices and stay pending until acked', async () => {
    const conversationId = await conversationWith('alice', 'bob');
    const alicePhone = await join(conversationId, 'alice', 'phone');
    const aliceLaptop = await join(conversationId, 'alice', 'laptop');
    const bobPhone = await join(conversationId, 'bob', 'phone');

    await alicePhone.send({ action: 'typing', conversationId });
    expect(await bobPhone.waitFor((f) => f.type === 'typing')).toMatchObject({ userId: 'alice', state: 'start', conversationId });

    const sent = await alicePhone.request({ action: 'sendMessage', conversationId, clientMessageId: 'c1', body: 'hello' }, 'sent');
    expect(sent).toMatchObject({ type: 'sent', seq: 1, duplicate: false });
    for (const device of [aliceLaptop, bobPhone]) {
      expect(await device.waitFor((f) => f.type === 'message')).toMatchObject({ messageId: sent.messageId, body: 'hello', senderId: 'alice', seq: 1 });
    }
    // Nothing reached the sender's own device but its receipt, and no typing echoed to alice's devices.
    expect(alicePhone.frames().map((f) => f.type)).toEqual(['sent']);
    expect(aliceLaptop.frames().map((f) => f.type)).toEqual(['message']);

    const pending = await bobPhone.request({ action: 'getUnacked', conversationId }, 'unacked');
    expect(ids(pending)).toEqual([sent.messageId]);
    await bobPhone.request({ action: 'ack', conversationId, messageIds: [sent.messageId] }, 'acked');
    expect(ids(await bobPhone.request({ action: 'getUnacked', conversationId }, 'unacked'))).toEqual([]);
    // Acked on bob's phone only: still pending on alice's laptop.
    expect(ids(await aliceLaptop.request({ action: 'getUnacked', conversationId }, 'unacked'))).toEqual([sent.messageId]);
  });

  it('an offline device reconnects and gets its unacked messages in order', async () => {
    const conversationId = await conversationWith('alice', 'bob');
    const bob = await join(conversationId, 'bob', 'tablet');
    await bob.close();
    const alice = await join(conversationId, 'alice', 'phone');
    const sent: Frame[] = [];
    for (let i = 1; i <= 5; i += 1) sent.push(await alice.request({ action: 'sendMessage', conversationId, clientMessageId: `m${i}`, body: `message ${i}` }, 'sent'));

    const back = await join(conversationId, 'bob', 'tablet');
    const page1 = await back.request({ action: 'getUnacked', conversationId, limit: 3 }, 'unacked');
    expect(seqs(page1)).toEqual([1, 2, 3]);
    expect(page1.hasMore).toBe(true);
    const page2 = await back.request({ action: 'getUnacked', conversationId, limit: 3, afterSeq: 3 }, 'unacked');
    expect(seqs(page2)).toEqual([4, 5]);
    expect(page2.hasMore).toBe(false);
    expect([...ids(page1), ...ids(page2)]).toEqual(sent.map((s) => s.messageId));
  });

  it('a re-sent clientMessageId is not duplicated', async () => {
    const conversationId = await conversationWith('alice', 'bob');
    const alice = await join(conversationId, 'alice', 'phone');
    const bob = await join(conversationId, 'bob', 'phone');
    const first = await alice.request({ action: 'sendMessage', conversationId, clientMessageId: 'same', body: 'once' }, 'sent');
    const again = await alice.request({ action: 'sendMessage', conversationId, clientMessageId: 'same', body: 'once' }, 'sent');
    expect(again).toMatchObject({ messageId: first.messageId, seq: first.seq, duplicate: true });
    expect(ids(await bob.request({ action: 'getUnacked', conversationId }, 'unacked'))).toEqual([first.messageId]);
    expect(bob.frames().filter((f) => f.type === 'message').map((f) => f.messageId)).toEqual([first.messageId]);
  });
});

describe('stale connections and limits', () => {
  it('a connection whose $disconnect never ran is pruned on the next post (410); its message stays pending', async () => {
    const conversationId = await conversationWith('alice', 'bob');
    const bob = await join(conversationId, 'bob', 'phone');
    await bob.close();
    // As if API Gateway lost the $disconnect: the row remains for a socket that is gone.
    const now = Date.now();
    const ghost = { connectionId: 'Gh0stC0nnecti0n=', userId: 'bob', deviceId: 'phone', connectedAt: now, expiresAt: Math.floor(now / 1000) + 3600 };
    await db.send(new PutCommand({ TableName: backend.tables.connections, Item: { ...ghost, entry: '#connection' } }));
    await db.send(new PutCommand({ TableName: backend.tables.connections, Item: { ...ghost, entry: `c#${conversationId}`, conversationId } }));
    const alice = await join(conversationId, 'alice', 'phone');
    const sent = await alice.request({ action: 'sendMessage', conversationId, clientMessageId: 'x', body: 'are you there' }, 'sent');
    // The pruned connection loses every entry: its record and its subscription.
    const entry = (key: string) => db.send(new GetCommand({ TableName: backend.tables.connections, Key: { connectionId: ghost.connectionId, entry: key } }));
    await eventually(async () => (await entry(`c#${conversationId}`)).Item === undefined && (await entry('#connection')).Item === undefined);
    const back = await join(conversationId, 'bob', 'phone');
    expect(ids(await back.request({ action: 'getUnacked', conversationId }, 'unacked'))).toEqual([sent.messageId]);
  });

  it('closes with 1009 on a frame over 32 KB and keeps the backend serving', async () => {
    const conversationId = await conversationWith('alice');
    const alice = await join(conversationId, 'alice', 'phone');
    await alice.send({ action: 'sendMessage', conversationId, clientMessageId: 'big', body: 'x'.repeat(40 * 1024) }).catch(() => undefined);
    expect((await alice.socket.closed).code).toBe(1009);
    const again = await join(conversationId, 'alice', 'phone');
    expect(await again.request({ action: 'getUnacked', conversationId }, 'unacked')).toMatchObject({ type: 'unacked' });
  });

  it('answers a bad frame with an error and keeps the connection open', async () => {
    const conversationId = await conversationWith('alice');
    const alice = await join(conversationId, 'alice', 'phone');
    await alice.socket.send('{not json');
    expect(await alice.waitFor((f) => f.type === 'error')).toMatchObject({ code: 'bad_request' });
    await alice.send({ action: 'sendMessage', conversationId: 'not-mine', clientMessageId: 'z', body: 'b' });
    expect(await alice.waitFor((f) => f.type === 'error')).toMatchObject({ code: 'forbidden', action: 'sendMessage' });
    expect(await alice.request({ action: 'getUnacked', conversationId }, 'unacked')).toMatchObject({ type: 'unacked' });
  });
});

describe('handshake refusals write nothing', () => {
  it('answers 400, 401 and 403', async () => {
    const conversationId = await conversationWith('alice');
    const token = await tokenFor(backend, 'alice');
    expect(await refusedStatus(connectUrl(backend, { token, conversationId }))).toBe(400);
    expect(await refusedStatus(connectUrl(backend, { token: 'nope', conversationId, clientId: 'd' }))).toBe(401);
    const expired = await signToken(new TextEncoder().encode('z'.repeat(40)), 'alice');
    expect(await refusedStatus(connectUrl(backend, { token: expired, conversationId, clientId: 'd' }))).toBe(401);
    const mallory = await tokenFor(backend, 'mallory');
    expect(await refusedStatus(connectUrl(backend, { token: mallory, conversationId, clientId: 'd' }))).toBe(403);
  });
});

describe('fan-out above the threshold goes through SQS and the worker', () => {
  it('delivers to every live device through the queue', async () => {
    const users = ['u1', 'u2', 'u3', 'u4', 'u5'];
    const conversationId = await conversationWith('sender', ...users);
    const receivers = await Promise.all(users.map((u) => join(conversationId, u, 'd')));
    const sender = await join(conversationId, 'sender', 'd');
    const sent = await sender.request({ action: 'sendMessage', conversationId, clientMessageId: 'fan', body: 'to everyone' }, 'sent');
    for (const receiver of receivers) {
      expect(await receiver.waitFor((f) => f.type === 'message', 10_000)).toMatchObject({ messageId: sent.messageId, body: 'to everyone' });
    }
  });

  it('delivers typing to every other user through the queue too', async () => {
    const users = ['t1', 't2', 't3', 't4'];
    const conversationId = await conversationWith('typist', ...users);
    const receivers = await Promise.all(users.map((u) => join(conversationId, u, 'd')));
    const typist = await join(conversationId, 'typist', 'd');
    await typist.send({ action: 'typing', conversationId, state: 'stop' });
    for (const receiver of receivers) expect(await receiver.waitFor((f) => f.type === 'typing', 10_000)).toMatchObject({ userId: 'typist', state: 'stop' });
  });
});

describe('the gateway runs the real route table', () => {
  it('answers an unknown action from $default', async () => {
    const conversationId = await conversationWith('alice');
    const client = await openClient(connectUrl(backend, { token: await tokenFor(backend, 'alice'), conversationId, clientId: 'd' }));
    await client.send('{"action":"dance"}');
    expect(JSON.parse(await client.next())).toMatchObject({ type: 'error', code: 'bad_request', action: 'dance' });
    await client.close();
  });
});

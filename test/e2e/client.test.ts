import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { WebSocket } from 'ws';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { RelayClient, type ReceivedMessage, type RelayClientOptions } from '../../client/index.js';
import { DynamoConnectionRegistry } from '../../lambdas/adapters/dynamo-registry.js';
import { DynamoMembershipStore } from '../../lambdas/adapters/dynamo-members.js';
import { startLocalBackend, type LocalBackend } from '../../local/backend.js';
import { ChatClient, eventually, tokenFor } from '../support/chat.js';
import { documentClientOf } from '../support/durability.js';
import { uniqueId } from '../support/env.js';

/**
 * The client library against the real backend through the emulator: `ws` as its WebSocket, tokens signed with
 * the backend's secret, a server-side `DELETE @connections/{id}` in the middle of a burst.
 */
let backend: LocalBackend;
let db: DynamoDBDocumentClient;
let members: DynamoMembershipStore;
let registry: DynamoConnectionRegistry;
const clients: RelayClient[] = [];

beforeAll(async () => {
  backend = await startLocalBackend({
    redisUrl: inject('redisUrl'),
    env: { LOG_LEVEL: 'SILENT', RATE_LIMIT_PER_SECOND: '500', RATE_LIMIT_BURST: '1000', RATE_LIMIT_USER_PER_SECOND: '500', RATE_LIMIT_USER_BURST: '1000' },
  });
  db = documentClientOf(backend);
  members = new DynamoMembershipStore(db, backend.tables.members);
  registry = new DynamoConnectionRegistry(db, backend.tables.connections, { now: () => Date.now() });
});

afterAll(async () => {
  for (const client of clients.splice(0)) client.close();
  db.destroy();
  await backend.close();
});

function clientFor(userId: string, deviceId: string, options: Partial<RelayClientOptions> = {}): { client: RelayClient; tokens: () => number } {
  let issued = 0;
  const client = new RelayClient({
    url: backend.url,
    clientId: deviceId,
    token: () => {
      issued += 1;
      return tokenFor(backend, userId);
    },
    WebSocket,
    reconnect: { baseMs: 50, capMs: 500 },
    gapWaitMs: 100,
    ...options,
  });
  clients.push(client);
  return { client, tokens: () => issued };
}

async function conversationWith(...userIds: string[]): Promise<string> {
  const conversationId = uniqueId('client');
  for (const userId of userIds) await members.add(conversationId, userId, 0);
  return conversationId;
}

/** The server-side close API Gateway offers (`DELETE @connections/{id}`), on every connection of this device. */
async function deleteConnectionsOf(conversationId: string, userId: string, deviceId: string): Promise<number> {
  const mine = (await registry.listByConversation(conversationId)).filter((s) => s.userId === userId && s.deviceId === deviceId);
  for (const { connectionId } of mine) {
    const response = await fetch(`${backend.managementEndpoint}/@connections/${encodeURIComponent(connectionId)}`, { method: 'DELETE' });
    expect(response.status).toBe(204);
  }
  return mine.length;
}

describe('the client library against the emulator', () => {
  it('sees every message of a burst exactly once, in seq order, across a server-side DELETE of its connection', async () => {
    // Prepare
    const conversationId = await conversationWith('amy', 'bo');
    const receiver = clientFor('amy', 'phone', { conversations: [conversationId] });
    const sender = clientFor('bo', 'laptop', { conversations: [conversationId] });
    const received: ReceivedMessage[] = [];
    receiver.client.on('message', async (message) => {
      // An app that takes a moment per message: the ack must wait for it.
      await new Promise((resolve) => setTimeout(resolve, 1));
      received.push(message);
    });
    let opens = 0;
    receiver.client.on('open', () => void (opens += 1));
    await Promise.all([receiver.client.connect(), sender.client.connect()]);

    // Act: 50 messages sent without waiting for each other; once 20 have arrived, the receiver's connection is deleted.
    const sends = Array.from({ length: 50 }, (_, i) => sender.client.send(conversationId, `burst ${i}`));
    await eventually(() => received.length >= 20, 20_000);
    expect(await deleteConnectionsOf(conversationId, 'amy', 'phone')).toBe(1);
    const sent = await Promise.all(sends);

    // Assess
    await eventually(() => received.length >= 50, 20_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const bySeq = [...sent].sort((a, b) => a.seq - b.seq);
    expect(bySeq.map((s) => s.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(received.map((m) => m.messageId)).toEqual(bySeq.map((s) => s.messageId));
    expect(received.map((m) => m.seq)).toEqual(bySeq.map((s) => s.seq));
    expect(opens).toBe(2);
    expect(receiver.tokens()).toBe(2);
    // Acked after the handlers ran: nothing is pending for the device any more.
    await eventually(async () => {
      const probe = await ChatClient.connectDevice(backend, 'amy', 'phone');
      await probe.request({ action: 'subscribe', conversationIds: [conversationId] }, 'subscribed');
      const page = await probe.request({ action: 'getUnacked', conversationId }, 'unacked');
      await probe.close();
      return Array.isArray(page.messages) && page.messages.length === 0;
    });
  });

  it('resumes after a restart of the app from the persisted seq: only what followed it arrives', async () => {
    const conversationId = await conversationWith('cy', 'di');
    const sender = clientFor('di', 'laptop', { conversations: [conversationId] });
    await sender.client.connect();
    const first = clientFor('cy', 'tablet', { conversations: [conversationId] });
    const seen: number[] = [];
    first.client.on('message', (m) => void seen.push(m.seq));
    await first.client.connect();
    for (let i = 0; i < 3; i += 1) await sender.client.send(conversationId, `before ${i}`);
    await eventually(() => seen.length === 3);
    const persisted = first.client.lastSeq(conversationId) ?? 0;
    first.client.close();
    for (let i = 0; i < 4; i += 1) await sender.client.send(conversationId, `while away ${i}`);

    const again = clientFor('cy', 'tablet');
    const later: number[] = [];
    again.client.on('message', (m) => void later.push(m.seq));
    const connecting = again.client.connect();
    expect(await again.client.subscribe([conversationId], { afterSeq: { [conversationId]: persisted } })).toEqual([
      { conversationId, status: 'ok', lastSeq: 7 },
    ]);
    await connecting;
    await eventually(() => later.length === 4);
    expect(persisted).toBe(3);
    expect(later).toEqual([4, 5, 6, 7]);
  });

  it('rejects a request for a conversation the user is not in with a typed forbidden error', async () => {
    const notMine = await conversationWith('ed');
    const { client } = clientFor('fi', 'phone');
    await client.connect();
    expect(await client.subscribe([notMine])).toEqual([{ conversationId: notMine, status: 'forbidden' }]);
    await expect(client.send(notMine, 'no')).rejects.toMatchObject({ name: 'RelayClientError', code: 'forbidden' });
  });
});

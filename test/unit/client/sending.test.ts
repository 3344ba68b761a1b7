import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { SentFrame } from '../../../client/index.js';
import type { ClientFrame, ServerFrameOut } from '../../support/fake-relay.js';
import { connected, run } from './setup.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const sentFor = (frame: ClientFrame, duplicate: boolean): ServerFrameOut => ({
  type: 'sent',
  requestId: frame.requestId,
  conversationId: frame.conversationId,
  clientMessageId: frame.clientMessageId,
  messageId: 'm-1',
  seq: 1,
  sentAt: 5,
  duplicate,
});

describe('send', () => {
  it('resends with the same clientMessageId after unavailable and resolves once, with sent', async () => {
    // Prepare
    const { server, client } = await connected(['c1'], { newClientMessageId: () => 'cm-1' });
    let answered = 0;
    server.script('sendMessage', (frame) => {
      answered += 1;
      return answered === 1
        ? [{ type: 'error', code: 'unavailable', message: 'the message log did not answer', action: 'sendMessage', requestId: frame.requestId }]
        : [sentFor(frame, true)];
    });
    const resolved: SentFrame[] = [];
    // Act
    const sending = client.send('c1', 'hello').then((sent) => resolved.push(sent));
    await run(60_000);
    await sending;
    // Assess
    const attempts = server.sent('sendMessage');
    expect(attempts.map((f) => f.clientMessageId)).toEqual(['cm-1', 'cm-1']);
    expect(attempts.map((f) => f.body)).toEqual(['hello', 'hello']);
    expect(new Set(attempts.map((f) => f.requestId)).size).toBe(2);
    expect(resolved).toEqual([expect.objectContaining({ type: 'sent', clientMessageId: 'cm-1', messageId: 'm-1' })]);
  });

  it('resends after rate_limited no sooner than the server’s retryAfterMs, with the same clientMessageId', async () => {
    // Prepare: a fan-out budget in debt for 5 s (the first backoff alone would resend within 500 ms).
    const { server, client } = await connected(['c1'], { newClientMessageId: () => 'cm-3' });
    let answered = 0;
    server.script('sendMessage', (frame) => {
      answered += 1;
      return answered === 1
        ? [{ type: 'error', code: 'rate_limited', message: 'over its budget', action: 'sendMessage', requestId: frame.requestId, retryAfterMs: 5000 }]
        : [sentFor(frame, false)];
    });
    // Act
    const sending = client.send('c1', 'later');
    await run(4900);
    const early = server.sent('sendMessage').length;
    await run(200);
    // Assess
    expect(early).toBe(1);
    expect(server.sent('sendMessage').map((f) => f.clientMessageId)).toEqual(['cm-3', 'cm-3']);
    await expect(sending).resolves.toMatchObject({ type: 'sent', clientMessageId: 'cm-3' });
  });

  it('resends after a timeout; the late answer to the first attempt settles it, once', async () => {
    const { server, client } = await connected(['c1'], { newClientMessageId: () => 'cm-2', requestTimeoutMs: 1000 });
    server.script('sendMessage', () => undefined);
    let settled = 0;
    const sending = client.send('c1', 'slow').then((sent) => {
      settled += 1;
      return sent;
    });
    await run(1000 + 500);
    const attempts = server.sent('sendMessage');
    expect(attempts.map((f) => f.clientMessageId)).toEqual(['cm-2', 'cm-2']);
    // The first attempt's answer comes late: it is the same message.
    const first = attempts[0];
    if (first === undefined) throw new Error('no first attempt');
    server.push(sentFor(first, false));
    await run();
    expect(await sending).toMatchObject({ clientMessageId: 'cm-2', duplicate: false });
    server.push(sentFor(attempts[1] ?? first, true));
    await run(10_000);
    expect(settled).toBe(1);
    expect(server.sent('sendMessage')).toHaveLength(2);
  });

  it('rejects with a RelayClientError carrying the code when the server refuses (no resend)', async () => {
    const { server, client } = await connected();
    server.script('sendMessage', (frame) => [{ type: 'error', code: 'forbidden', message: 'not a member', action: 'sendMessage', requestId: frame.requestId }]);
    const outcome = client.send('c1', 'x').catch((error: unknown) => error);
    await run(10_000);
    expect(await outcome).toMatchObject({ name: 'RelayClientError', code: 'forbidden', details: { action: 'sendMessage' } });
    expect(server.sent('sendMessage')).toHaveLength(1);
  });

  it('holds sends made while offline and sends them once the connection is back and resubscribed', async () => {
    // Prepare
    const { server, client } = await connected(['c1'], { reconnect: { baseMs: 1000, capMs: 1000 } });
    server.script('sendMessage', (frame) => [sentFor(frame, false)]);
    server.accept = false;
    server.socket.drop(1006);
    // Act
    const sending = client.send('c1', 'while offline');
    await run(400);
    // Assess: nothing left while down (the refused attempts carry nothing).
    expect(server.sent('sendMessage')).toEqual([]);
    server.accept = true;
    await run(5000);
    expect(await sending).toMatchObject({ type: 'sent', messageId: 'm-1' });
    const last = server.socket.sent.map((f) => f.action);
    expect(last.indexOf('subscribe')).toBeLessThan(last.indexOf('sendMessage'));
    expect(server.sent('sendMessage')).toHaveLength(1);
  });
});

describe('requests', () => {
  it('matches concurrent answers to their requests by requestId, whatever their order', async () => {
    // Prepare
    const { server, client } = await connected(['a', 'b']);
    const asked: ClientFrame[] = [];
    server.script('getHistory', (frame) => {
      asked.push(frame);
      return undefined;
    });
    // Act
    const histories = Promise.all([client.history('a', { limit: 5 }), client.history('b', { beforeSeq: 9 })]);
    await run();
    const [forA, forB] = asked;
    server.push(
      { type: 'history', requestId: forB?.requestId, conversationId: 'b', messages: [], hasMore: false },
      { type: 'history', requestId: forA?.requestId, conversationId: 'a', messages: [], hasMore: true },
    );
    await run();
    // Assess
    const [a, b] = await histories;
    expect([a.conversationId, a.hasMore, b.conversationId, b.hasMore]).toEqual(['a', true, 'b', false]);
    expect(forA).toMatchObject({ conversationId: 'a', limit: 5 });
    expect(forB).toMatchObject({ conversationId: 'b', beforeSeq: 9 });
  });

  it('rejects an answered error with its code, and times out an unanswered request', async () => {
    const { server, client } = await connected(['c1'], { requestTimeoutMs: 2000 });
    server.script('markRead', (frame) => [{ type: 'error', code: 'bad_request', message: 'seq: expected int', requestId: frame.requestId }]);
    server.script('getPresence', () => undefined);
    const refused = client.markRead('c1', 3).catch((error: unknown) => error);
    const silent = client.getPresence('c1').catch((error: unknown) => error);
    await run(2500);
    expect(await refused).toMatchObject({ code: 'bad_request', message: 'seq: expected int' });
    expect(await silent).toMatchObject({ code: 'timeout', details: { action: 'getPresence' } });
  });

  it('sends the frames the protocol names for markRead, conversations, presence, edit and delete', async () => {
    const { server, client } = await connected();
    const answers: Record<string, string> = { markRead: 'read', getConversations: 'conversations', getPresence: 'presence', editMessage: 'edited', deleteMessage: 'deleted' };
    for (const [action, type] of Object.entries(answers)) server.script(action, (frame) => [{ type, requestId: frame.requestId, conversationId: 'c1' }]);
    const done = Promise.all([client.markRead('c1', 4), client.conversations({ limit: 10 }), client.getPresence('c1'), client.edit('c1', 'm1', 'new'), client.delete('c1', 'm1')]);
    await run();
    expect((await done).map((answer) => answer.type)).toEqual(['read', 'conversations', 'presence', 'edited', 'deleted']);
    expect(server.sent('markRead')[0]).toMatchObject({ conversationId: 'c1', seq: 4 });
    expect(server.sent('editMessage')[0]).toMatchObject({ conversationId: 'c1', messageId: 'm1', body: 'new' });
    expect(server.sent('getConversations')[0]).toMatchObject({ limit: 10 });
  });
});

describe('typing', () => {
  it('sends at most one start per 2 s per conversation; stop always goes, and lets the next start out', async () => {
    const { server, client } = await connected(['a', 'b']);
    const outcomes = [client.typing('a'), client.typing('a'), client.typing('b')];
    await run(1500);
    outcomes.push(client.typing('a'));
    await run(600);
    outcomes.push(client.typing('a'), client.typing('a', 'stop'), client.typing('a', 'stop'), client.typing('a'));
    expect(outcomes).toEqual([true, false, true, false, true, true, true, true]);
    expect(server.sent('typing').map((f) => `${String(f.conversationId)}:${String(f.state)}`)).toEqual(['a:start', 'b:start', 'a:start', 'a:stop', 'a:stop', 'a:start']);
  });
});

describe('events', () => {
  it('hands typing, read, presence, messageEdited and messageDeleted frames to their listeners', async () => {
    const { server, client } = await connected();
    const seen: string[] = [];
    for (const name of ['typing', 'read', 'presence', 'messageEdited', 'messageDeleted'] as const) client.on(name, (event) => void seen.push(event.type));
    server.push(
      { type: 'typing', conversationId: 'c1', userId: 'bob', state: 'start', at: 1, expiresAt: 6001 },
      { type: 'read', conversationId: 'c1', userId: 'bob', seq: 3, at: 2 },
      { type: 'presence', conversationId: 'c1', userId: 'bob', state: 'online', at: 3 },
      { type: 'messageEdited', conversationId: 'c1', messageId: 'm', seq: 1, body: 'b', editedAt: 4 },
      { type: 'messageDeleted', conversationId: 'c1', messageId: 'm', seq: 1 },
    );
    await run();
    expect(seen).toEqual(['typing', 'read', 'presence', 'messageEdited', 'messageDeleted']);
  });
});

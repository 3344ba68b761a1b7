import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { backoffDelay } from '../../../client/index.js';
import { messageData, messageFrame } from '../../support/fake-relay.js';
import { connected, run } from './setup.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('backoff', () => {
  it('grows exponentially, is capped, and is jittered over [0, ceiling)', () => {
    const options = { baseMs: 100, capMs: 2000 };
    const highest = Array.from({ length: 8 }, (_, attempt) => backoffDelay(attempt, options, () => 0.999_999));
    expect(highest).toEqual([99, 199, 399, 799, 1599, 1999, 1999, 1999]);
    expect(Array.from({ length: 8 }, (_, attempt) => backoffDelay(attempt, options, () => 0))).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    const draws = [0.25, 0.75];
    expect(draws.map((r) => backoffDelay(2, options, () => r))).toEqual([100, 300]);
  });

  it('waits longer after each refused attempt, up to the cap, and resets once a connection opens', async () => {
    // Prepare
    const draws = [0.5, 0.9, 0.1, 0.5, 0.5, 0.5, 0.5];
    const { server, client } = await connected(['c1'], { reconnect: { baseMs: 100, capMs: 1000 }, random: () => draws.shift() ?? 0.5 });
    const delays: number[] = [];
    client.on('reconnecting', (event) => void delays.push(event.delayMs));
    server.accept = false;
    // Act
    server.socket.drop(1006);
    await run(10_000);
    server.accept = true;
    await run(10_000);
    const afterOpen = delays.length;
    server.socket.drop(1001);
    await run(0);
    // Assess: ceilings 100, 200, 400, 800, 1000, 1000… times the draw; the drop after the open starts from 100 again.
    expect(delays.slice(0, 6)).toEqual([50, 180, 40, 400, 500, 500]);
    expect(delays.slice(0, afterOpen).every((d) => d >= 0 && d < 1000)).toBe(true);
    expect(delays[afterOpen]).toBe(50);
  });

  it('emits connecting, open, reconnecting (with the reason) and closed', async () => {
    const { server, client } = await connected();
    const states: string[] = [];
    for (const name of ['connecting', 'open', 'reconnecting', 'closed'] as const) client.on(name, (event) => void states.push('reason' in event ? `${name}: ${event.reason}` : name));
    server.socket.drop(1001, 'going away');
    await run(5000);
    client.close();
    expect(states).toEqual(['reconnecting: closed 1001: going away', 'connecting', 'open', 'closed: closed by the app']);
    expect(client.state).toBe('closed');
  });
});

describe('reconnect', () => {
  it('calls the token provider again and connects with the new token and the clientId', async () => {
    let calls = 0;
    const { server } = await connected(['c1'], {
      token: async () => {
        calls += 1;
        return `token-${calls}`;
      },
    });
    server.socket.drop(1006);
    await run(5000);
    expect(server.sockets.map((s) => new URL(s.url).searchParams.get('token'))).toEqual(['token-1', 'token-2']);
    expect(server.sockets.map((s) => new URL(s.url).searchParams.get('clientId'))).toEqual(['phone', 'phone']);
    expect(new URL(server.socket.url).pathname).toBe('/local');
  });

  it('on token_expired, reconnects at once with a fresh token and resends the refused message under the same clientMessageId', async () => {
    // Prepare: the first socket's token has expired by the time the app sends; the next socket's is fresh.
    let calls = 0;
    const { server, client } = await connected(['c1'], {
      token: () => {
        calls += 1;
        return `token-${calls}`;
      },
    });
    const errors: string[] = [];
    client.on('error', (error) => void errors.push(error.code));
    server.script('sendMessage', (frame, socket) => [
      new URL(socket.url).searchParams.get('token') === 'token-1'
        ? { type: 'error', code: 'token_expired', message: 'the connection token has expired; reconnect with a fresh token', action: 'sendMessage', requestId: frame.requestId }
        : { type: 'sent', requestId: frame.requestId, conversationId: 'c1', clientMessageId: frame.clientMessageId, messageId: 'm-1', seq: 1, sentAt: 1 },
    ]);
    // Act
    const sending = client.send('c1', 'hello');
    await run(5000);
    const sent = await sending;
    // Assess
    expect(server.sockets.map((s) => new URL(s.url).searchParams.get('token'))).toEqual(['token-1', 'token-2']);
    expect(server.sockets[0]?.readyState).not.toBe(1);
    expect(sent).toMatchObject({ type: 'sent', messageId: 'm-1' });
    const attempts = server.sent('sendMessage');
    expect(attempts).toHaveLength(2);
    expect(new Set(attempts.map((f) => f.clientMessageId)).size).toBe(1);
    // Resubscribed on the new socket; the refusal was handled, not surfaced as an error.
    expect(server.sent('subscribe')).toHaveLength(2);
    expect(errors).toEqual([]);
  });

  it('on an unsolicited token_expired (a ping refused), reconnects with a fresh token too', async () => {
    let calls = 0;
    const { server, client } = await connected(['c1'], { token: () => `token-${(calls += 1)}` });
    const errors: string[] = [];
    client.on('error', (error) => void errors.push(error.code));
    server.push({ type: 'error', code: 'token_expired', message: 'the connection token has expired; reconnect with a fresh token', action: 'ping' });
    await run(5000);
    expect(server.sockets.map((s) => new URL(s.url).searchParams.get('token'))).toEqual(['token-1', 'token-2']);
    expect(client.state).toBe('open');
    expect(errors).toEqual(['token_expired']);
  });

  it('resubscribes with afterSeq = the last seen seq of each conversation', async () => {
    // Prepare
    const { server } = await connected(['a', 'b']);
    server.push(...[1, 2, 3].map((seq) => messageFrame('a', seq)), messageFrame('b', 1));
    await run(1000);
    // Act
    server.socket.drop(1006);
    await run(5000);
    // Assess
    const subscribes = server.sent('subscribe');
    expect(subscribes).toHaveLength(2);
    expect(subscribes[0]).toMatchObject({ conversationIds: ['a', 'b'], afterSeq: { a: 0, b: 0 } });
    expect(subscribes[1]).toMatchObject({ conversationIds: ['a', 'b'], afterSeq: { a: 3, b: 1 } });
  });

  it('releases what the resume pages bring, after what was held, each once and in order', async () => {
    const { server, seqs } = await connected(['c1']);
    server.push(messageFrame('c1', 1), messageFrame('c1', 4));
    await run();
    server.socket.drop(1006);
    server.lastSeq.set('c1', 4);
    server.resumePages.set('c1', [
      { type: 'unacked', conversationId: 'c1', messages: [messageData('c1', 2), messageData('c1', 3), messageData('c1', 4)], hasMore: false },
    ]);
    await run(5000);
    server.push(messageFrame('c1', 5), messageFrame('c1', 6));
    await run(1000);
    expect(seqs()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(server.sent('subscribe')[1]).toMatchObject({ afterSeq: { c1: 1 } });
    // No gap fill: the only getUnacked is the catch-up after the second resume (the drop cancelled the first's).
    expect(server.sent('getUnacked').map((f) => f.afterSeq)).toEqual([4]);
  });

  it('catches up after a resume: pending messages never posted live are fetched, again while some are found', async () => {
    // Prepare: a message stored after the resume page was read, by a sender that listed recipients before.
    const { server, seqs } = await connected(['c1'], { catchUpMs: 2000 });
    const found = [[messageData('c1', 1)], [messageData('c1', 2)], []];
    server.script('getUnacked', (frame) => [{ type: 'unacked', requestId: frame.requestId, conversationId: 'c1', messages: found.shift() ?? [], hasMore: false }]);
    // Act
    await run(1900);
    const early = seqs();
    await run(10_000);
    // Assess
    expect(early).toEqual([]);
    expect(seqs()).toEqual([1, 2]);
    expect(server.sent('getUnacked').map((f) => f.afterSeq)).toEqual([0, 1, 2]);
  });

  it('pings on the timer while open', async () => {
    const { server } = await connected(['c1'], { pingIntervalMs: 25_000 });
    await run(24_000);
    expect(server.sent('ping')).toEqual([]);
    await run(26_000);
    expect(server.sent('ping')).toEqual([{ action: 'ping' }, { action: 'ping' }]);
  });
});

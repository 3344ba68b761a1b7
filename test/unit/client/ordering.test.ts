import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { vi } from 'vitest';
import { messageData, messageFrame } from '../../support/fake-relay.js';
import { connected, run } from './setup.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('ordering and dedupe', () => {
  it('releases out-of-order live messages in seq order, without fetching anything', async () => {
    // Prepare
    const { server, seqs } = await connected();
    // Act
    server.push(messageFrame('c1', 3), messageFrame('c1', 1), messageFrame('c1', 2));
    await run(1000);
    // Assess
    expect(seqs()).toEqual([1, 2, 3]);
    expect(server.sent('getUnacked')).toEqual([]);
  });

  it('drops duplicates (live twice, and again in a page)', async () => {
    // Prepare
    const { server, seqs, received } = await connected();
    server.script('getUnacked', (frame) => [
      { type: 'unacked', requestId: frame.requestId, conversationId: 'c1', messages: [1, 2, 3].map((seq) => messageData('c1', seq)), hasMore: false },
    ]);
    // Act
    server.push(messageFrame('c1', 1), messageFrame('c1', 1), messageFrame('c1', 2), messageFrame('c1', 1));
    await run(1000);
    const beforeGap = server.sent('getUnacked').length;
    server.push(messageFrame('c1', 4));
    await run(1000);
    // Assess: the duplicates left no hole behind (no fill until 3 was missing), and the page's repeats are dropped.
    expect(beforeGap).toBe(0);
    expect(seqs()).toEqual([1, 2, 3, 4]);
    expect(received.map((m) => m.messageId)).toEqual(['c1-m1', 'c1-m2', 'c1-m3', 'c1-m4']);
  });

  it('keeps conversations apart: a hole in one does not hold the other', async () => {
    const { server, seqs } = await connected(['a', 'b']);
    server.script('getUnacked', () => undefined);
    server.push(messageFrame('a', 2), messageFrame('b', 1), messageFrame('b', 2));
    await run(50);
    expect(seqs('b')).toEqual([1, 2]);
    expect(seqs('a')).toEqual([]);
  });
});

describe('gaps', () => {
  it('fills a gap through getUnacked before releasing the later messages', async () => {
    // Prepare
    const { server, seqs } = await connected();
    server.script('getUnacked', () => undefined);
    // Act: 2 never arrives live.
    server.push(messageFrame('c1', 1), messageFrame('c1', 3), messageFrame('c1', 4));
    await run(150);
    // Assess: 3 and 4 are held; after the gap wait the client asks for what follows 1.
    expect(seqs()).toEqual([1]);
    expect(server.sent('getUnacked')).toEqual([]);
    await run(100);
    const [ask] = server.sent('getUnacked');
    expect(ask).toMatchObject({ conversationId: 'c1', afterSeq: 1 });
    expect(seqs()).toEqual([1]);
    server.push({ type: 'unacked', requestId: ask?.requestId, conversationId: 'c1', messages: [messageData('c1', 2), messageData('c1', 3)], hasMore: false });
    await run();
    expect(seqs()).toEqual([1, 2, 3, 4]);
  });

  it('skips over the gap an unacked page reports (expired messages) and acks past it', async () => {
    const { server, seqs } = await connected();
    server.script('getUnacked', (frame) => [
      { type: 'unacked', requestId: frame.requestId, conversationId: 'c1', messages: [], hasMore: false, gap: { fromSeq: 2, toSeq: 3 } },
    ]);
    server.push(messageFrame('c1', 1), messageFrame('c1', 4));
    await run(1000);
    expect(seqs()).toEqual([1, 4]);
    expect(server.sent('ack').at(-1)).toMatchObject({ conversationId: 'c1', upToSeq: 4 });
  });

  it('pages on with getUnacked while a page says hasMore', async () => {
    const { server, seqs } = await connected();
    const pages = [
      { messages: [messageData('c1', 2), messageData('c1', 3)], hasMore: true },
      { messages: [messageData('c1', 4), messageData('c1', 5)], hasMore: false },
    ];
    server.script('getUnacked', (frame) => {
      const page = pages.shift();
      return page === undefined ? undefined : [{ type: 'unacked', requestId: frame.requestId, conversationId: 'c1', ...page }];
    });
    server.push(messageFrame('c1', 1), messageFrame('c1', 6));
    await run(1000);
    expect(seqs()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(server.sent('getUnacked').map((f) => f.afterSeq)).toEqual([1, 3]);
  });

  it("does not wait for this device's own message: its sent frame closes the hole", async () => {
    const { server, client, seqs } = await connected();
    server.script('sendMessage', (frame) => [
      { type: 'sent', requestId: frame.requestId, conversationId: 'c1', clientMessageId: frame.clientMessageId, messageId: 'own', seq: 2, sentAt: 1, duplicate: false },
    ]);
    server.push(messageFrame('c1', 1));
    await run();
    await client.send('c1', 'mine');
    server.push(messageFrame('c1', 3));
    await run(1000);
    expect(seqs()).toEqual([1, 3]);
    expect(server.sent('getUnacked')).toEqual([]);
  });
});

describe('acks', () => {
  it('acks a message only after its async handler resolved', async () => {
    // Prepare
    const { server, client } = await connected([], { conversations: ['c1'] });
    let finish: () => void = () => undefined;
    client.on('message', () => new Promise<void>((resolve) => (finish = resolve)));
    // Act
    server.push(messageFrame('c1', 1));
    await run(1000);
    // Assess
    expect(server.sent('ack')).toEqual([]);
    finish();
    await run(1000);
    expect(server.sent('ack')).toEqual([expect.objectContaining({ conversationId: 'c1', upToSeq: 1 })]);
  });

  it('runs handlers one message at a time and batches the acks into one upToSeq', async () => {
    const { server, client } = await connected();
    const log: string[] = [];
    client.on('message', async (message) => {
      log.push(`start ${message.seq}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
      log.push(`end ${message.seq}`);
    });
    server.push(...[1, 2, 3].map((seq) => messageFrame('c1', seq)));
    await run(1000);
    expect(log).toEqual(['start 1', 'end 1', 'start 2', 'end 2', 'start 3', 'end 3']);
    expect(server.sent('ack').map((f) => f.upToSeq)).toEqual([3]);
  });

  it('keeps one ack in flight per conversation and folds an unanswered one into the next, without an error event', async () => {
    const { server, client } = await connected(['c1'], { requestTimeoutMs: 2000, ackDelayMs: 500 });
    const errors: string[] = [];
    client.on('error', (error) => {
      errors.push(error.code);
    });
    server.script('ack', () => undefined); // a busy server: acks go unanswered
    server.push(messageFrame('c1', 1));
    await run(600); // first ack (upToSeq 1) is out
    server.push(messageFrame('c1', 2), messageFrame('c1', 3));
    await run(1000); // still unanswered: no second ack while it is in flight
    expect(server.sent('ack').map((f) => f.upToSeq)).toEqual([1]);
    server.script('ack', (frame) => [{ type: 'acked', conversationId: frame.conversationId, messageIds: [], upToSeq: frame.upToSeq, requestId: frame.requestId }]);
    await run(2000); // the first one times out; the next covers everything handled
    expect(server.sent('ack').map((f) => f.upToSeq)).toEqual([1, 3]);
    expect(errors).toEqual([]);
  });

  it('reports a throwing handler on error and still moves on', async () => {
    const { server, client, seqs } = await connected();
    const errors: string[] = [];
    client.on('error', (error) => {
      errors.push(error.code);
    });
    client.on('message', (message) => {
      if (message.seq === 1) throw new Error('app bug');
    });
    server.push(messageFrame('c1', 1), messageFrame('c1', 2));
    await run(1000);
    expect(seqs()).toEqual([1, 2]);
    expect(errors).toEqual(['listener_failed']);
    expect(server.sent('ack').at(-1)).toMatchObject({ upToSeq: 2 });
  });
});

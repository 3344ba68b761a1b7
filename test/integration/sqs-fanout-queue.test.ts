import { randomUUID } from 'node:crypto';
import { ReceiveMessageCommand, SQSClient, type Message } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SqsFanoutQueue } from '../../lambdas/adapters/sqs-fanout-queue.js';
import { FanoutRejectedError } from '../../lambdas/errors.js';
import { UnavailableError } from '../../lambdas/errors.js';
import type { FanoutJob } from '../../lambdas/ports.js';
import { DUMMY_CREDENTIALS } from '../support/dynalite.js';
import { closedPort } from './net.js';
import { startSqs, type LocalSqs } from '../support/sqs.js';

let sqs: LocalSqs;
/** Entry counts of every SendMessageBatch request the client sent, in order. */
const batches: number[] = [];

beforeAll(async () => {
  sqs = await startSqs();
  sqs.client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'SendMessageBatchCommand') {
        const input: unknown = args.input;
        const entries =
          typeof input === 'object' && input !== null && 'Entries' in input && Array.isArray(input.Entries)
            ? input.Entries.length
            : -1;
        batches.push(entries);
      }
      return next(args);
    },
    { step: 'initialize', name: 'recordBatches' },
  );
});

afterAll(async () => {
  await sqs.close();
});

beforeEach(() => {
  batches.length = 0;
});

async function drain(queueUrl: string): Promise<Message[]> {
  const received: Message[] = [];
  for (;;) {
    const { Messages = [] } = await sqs.client.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 300 }),
    );
    if (Messages.length === 0) return received;
    received.push(...Messages);
  }
}

function jobs(count: number): FanoutJob[] {
  return Array.from({ length: count }, (_, i): FanoutJob =>
    i % 2 === 0
      ? {
          kind: 'message',
          conversationId: `conv-${i}`,
          seq: i + 1,
          messageId: randomUUID(),
          connectionIds: [`c${i}a=`, `c${i}b+/`],
        }
      : {
          kind: 'typing',
          conversationId: `conv-ünïcødé-✓-${i}`,
          userId: `u${i}`,
          state: 'start',
          at: i,
          connectionIds: [`c${i}`],
        },
  );
}

describe('SqsFanoutQueue on fauxqs', () => {
  it('enqueues 25 jobs as 25 messages with the exact JSON bodies, in batches of at most 10', async () => {
    const queueUrl = await sqs.createQueue(`fanout-${randomUUID()}`);
    const queue = new SqsFanoutQueue(sqs.client, queueUrl);
    const sent = jobs(25);

    await queue.enqueue(sent);

    expect(batches).toEqual([10, 10, 5]);
    const received = await drain(queueUrl);
    expect(received).toHaveLength(25);
    const bodies = received.map((m) => m.Body ?? '');
    expect([...bodies].sort()).toEqual(sent.map((job) => JSON.stringify(job)).sort());
    expect(bodies.map((body): unknown => JSON.parse(body))).toEqual(expect.arrayContaining(sent));
  });

  it('sends nothing for an empty list', async () => {
    const queueUrl = await sqs.createQueue(`fanout-${randomUUID()}`);
    await new SqsFanoutQueue(sqs.client, queueUrl).enqueue([]);
    expect(batches).toEqual([]);
    await expect(drain(queueUrl)).resolves.toEqual([]);
  });

  it('rejects when the queue URL names no queue', async () => {
    const queueUrl = await sqs.createQueue(`fanout-${randomUUID()}`);
    const missing = queueUrl.replace(/[^/]+$/, `missing-${randomUUID()}`);
    const error: unknown = await new SqsFanoutQueue(sqs.client, missing).enqueue(jobs(3)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).name).toMatch(/QueueDoesNotExist|NonExistentQueue/);
  });

  it('does not retry an entry refused as the sender\'s fault; its batch-mates are sent', async () => {
    const queueUrl = await sqs.createQueue(`fanout-${randomUUID()}`, { MaximumMessageSize: '1024' });
    const queue = new SqsFanoutQueue(sqs.client, queueUrl);
    const small = jobs(3);
    const huge: FanoutJob = { kind: 'typing', conversationId: 'c', userId: 'x'.repeat(2000), state: 'start', at: 1, connectionIds: ['c'] };

    await expect(queue.enqueue([...small, huge])).rejects.toBeInstanceOf(FanoutRejectedError);

    expect(batches).toEqual([4]);
    const bodies = (await drain(queueUrl)).map((m) => m.Body ?? '');
    expect(bodies.sort()).toEqual(small.map((job) => JSON.stringify(job)).sort());
  });

  it('reports an unreachable SQS as UnavailableError', async () => {
    const port = await closedPort();
    const client = new SQSClient({
      endpoint: `http://127.0.0.1:${port}`,
      region: 'us-east-1',
      credentials: DUMMY_CREDENTIALS,
      maxAttempts: 1,
    });
    try {
      const queueUrl = `http://127.0.0.1:${port}/000000000000/nowhere`;
      await expect(new SqsFanoutQueue(client, queueUrl).enqueue(jobs(1))).rejects.toBeInstanceOf(UnavailableError);
    } finally {
      client.destroy();
    }
  });
});

import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { SqsFanoutQueue } from '../../lambdas/adapters/sqs-fanout-queue.js';
import { UnavailableError } from '../../lambdas/errors.js';
import type { FanoutJob } from '../../lambdas/ports.js';

const sqs = mockClient(SQSClient);
const job = (i: number): FanoutJob => ({ kind: 'typing', conversationId: 'conv', userId: `u${i}`, state: 'start', at: i, connectionIds: [`c${i}`] });
const queue = () => new SqsFanoutQueue(new SQSClient({ region: 'us-east-1' }), 'https://sqs.us-east-1.amazonaws.com/1/q');

beforeEach(() => sqs.reset());
afterAll(() => sqs.restore());

describe('SqsFanoutQueue retries', () => {
  it('retries once only the entries that failed on the service side', async () => {
    sqs.on(SendMessageBatchCommand)
      .resolvesOnce({ Successful: [], Failed: [{ Id: '1', Code: 'InternalError', SenderFault: false }] })
      .resolves({ Successful: [], Failed: [] });
    await queue().enqueue([job(0), job(1), job(2)]);
    const calls = sqs.commandCalls(SendMessageBatchCommand);
    expect(calls.map((c) => c.args[0].input.Entries?.map((e) => e.Id))).toEqual([['0', '1', '2'], ['1']]);
  });

  it('answers unavailable when the retry fails too', async () => {
    sqs.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [{ Id: '0', Code: 'InternalError', SenderFault: false }] });
    await expect(queue().enqueue([job(0)])).rejects.toBeInstanceOf(UnavailableError);
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(2);
  });

  it('sends at most 10 entries per batch', async () => {
    sqs.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });
    await queue().enqueue(Array.from({ length: 23 }, (_, i) => job(i)));
    expect(sqs.commandCalls(SendMessageBatchCommand).map((c) => c.args[0].input.Entries?.length)).toEqual([10, 10, 3]);
  });
});

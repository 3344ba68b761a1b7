import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { FanoutRejectedError, UnavailableError } from '../errors.js';
import type { FanoutJob, FanoutQueue } from '../ports.js';
import { callAws } from './aws-errors.js';

const SQS_BATCH = 10;


/** Hands fan-out batches to the worker through SQS; entries SQS refuses are retried once, then reported. */
export class SqsFanoutQueue implements FanoutQueue {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async enqueue(jobs: readonly FanoutJob[]): Promise<void> {
    for (let start = 0; start < jobs.length; start += SQS_BATCH) {
      let entries = jobs
        .slice(start, start + SQS_BATCH)
        .map((job, index) => ({ Id: String(start + index), MessageBody: JSON.stringify(job) }));
      for (let attempt = 0; attempt < 2 && entries.length > 0; attempt += 1) {
        const batch = entries;
        const result = await callAws('the fan-out queue', () =>
          this.sqs.send(new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: batch })),
        );
        const failed = result.Failed ?? [];
        // An entry refused as the sender's fault (too large, invalid) can never succeed: do not retry it.
        const senderFault = failed.find((f) => f.SenderFault === true);
        if (senderFault !== undefined) {
          throw new FanoutRejectedError(`the fan-out queue rejected an entry: ${senderFault.Code ?? 'unknown'}`);
        }
        const retry = new Set(failed.map((f) => f.Id));
        entries = batch.filter((entry) => retry.has(entry.Id));
      }
      if (entries.length > 0) throw new UnavailableError(`the fan-out queue refused ${entries.length} job(s)`);
    }
  }
}

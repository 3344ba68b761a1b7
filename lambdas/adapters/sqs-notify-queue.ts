import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { NotifyJob, NotifyQueue } from '../ports.js';
import { callAws } from './aws-errors.js';

/** Hands one stored message's ids to the notifier through SQS (one small message per stored message). */
export class SqsNotifyQueue implements NotifyQueue {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async enqueue(job: NotifyJob): Promise<void> {
    const { conversationId, seq, messageId, senderId, senderDevice } = job;
    // Field by field: nothing else of the message (never its body) goes on the queue.
    const body = JSON.stringify({ conversationId, seq, messageId, senderId, senderDevice });
    await callAws('the notify queue', () => this.sqs.send(new SendMessageCommand({ QueueUrl: this.queueUrl, MessageBody: body })));
  }
}

/** No notify queue configured: nothing is pushed. */
export const noNotifyQueue: NotifyQueue = { enqueue: async () => undefined };

import { SQSClient } from '@aws-sdk/client-sqs';
import { SqsFanoutQueue } from '../adapters/sqs-fanout-queue.js';
import { noNotifyQueue, SqsNotifyQueue } from '../adapters/sqs-notify-queue.js';
import type { FanoutQueue, NotifyQueue } from '../ports.js';
import { credentialsOption } from './credentials.js';
import type { Env, Scope } from './lazy.js';

export function fanoutQueue(config: { AWS_REGION: string; SQS_ENDPOINT?: string | undefined; FANOUT_QUEUE_URL: string }, scope: Scope, env: Env): FanoutQueue {
  return new SqsFanoutQueue(sqsClient(config, scope, env), config.FANOUT_QUEUE_URL);
}

export function sqsClient(config: { AWS_REGION: string; SQS_ENDPOINT?: string | undefined }, scope: Scope, env: Env): SQSClient {
  return scope.adopt(
    new SQSClient({ region: config.AWS_REGION, ...credentialsOption(env), ...(config.SQS_ENDPOINT === undefined ? {} : { endpoint: config.SQS_ENDPOINT }) }),
    (c) => c.destroy(),
  );
}

/** The notify queue, or (no NOTIFY_QUEUE_URL) none: nothing is pushed. Here, not in context/push.ts: sendMessage must not bundle the push senders. */
export function notifyQueue(config: { AWS_REGION: string; SQS_ENDPOINT?: string | undefined; NOTIFY_QUEUE_URL?: string | undefined }, scope: Scope, env: Env): NotifyQueue {
  if (config.NOTIFY_QUEUE_URL === undefined) return noNotifyQueue;
  return new SqsNotifyQueue(sqsClient(config, scope, env), config.NOTIFY_QUEUE_URL);
}

import { SQSClient } from '@aws-sdk/client-sqs';
import { SqsFanoutQueue } from '../adapters/sqs-fanout-queue.js';
import type { FanoutQueue } from '../ports.js';
import { credentialsOption } from './credentials.js';
import type { Env, Scope } from './lazy.js';

export function fanoutQueue(config: { AWS_REGION: string; SQS_ENDPOINT?: string | undefined; FANOUT_QUEUE_URL: string }, scope: Scope, env: Env): FanoutQueue {
  const sqs = scope.adopt(
    new SQSClient({ region: config.AWS_REGION, ...credentialsOption(env), ...(config.SQS_ENDPOINT === undefined ? {} : { endpoint: config.SQS_ENDPOINT }) }),
    (c) => c.destroy(),
  );
  return new SqsFanoutQueue(sqs, config.FANOUT_QUEUE_URL);
}

import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { AnyPrincipal, Effect, PolicyStatement, type IRole } from 'aws-cdk-lib/aws-iam';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface FanoutQueuesProps {
  /** Receives after which a fan-out job moves to the dead-letter queue. */
  maxReceiveCount: number;
  /** The worker's timeout: the queue hides a received job for six times that (AWS's guidance for Lambda). */
  workerTimeout: Duration;
}

/**
 * Requests by an AWS service (SQS itself moving a job to the dead-letter queue) are left out of the denies below:
 * they carry no principal ARN to compare.
 */
const NOT_A_SERVICE = { BoolIfExists: { 'aws:PrincipalIsAWSService': 'false' } };

/** The fan-out queue the posting routes hand large fan-outs to, and its dead-letter queue. */
export class FanoutQueues extends Construct {
  static readonly VISIBILITY_FACTOR = 6;
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: FanoutQueuesProps) {
    super(scope, id);
    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // Nobody sends to the dead-letter queue: only SQS moves jobs there, and only from the fan-out queue.
    this.deadLetterQueue.addToResourcePolicy(
      new PolicyStatement({
        effect: Effect.DENY,
        principals: [new AnyPrincipal()],
        actions: ['sqs:SendMessage'],
        resources: [this.deadLetterQueue.queueArn],
        conditions: NOT_A_SERVICE,
      }),
    );
    this.queue = new Queue(this, 'Queue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(props.workerTimeout.toSeconds() * FanoutQueues.VISIBILITY_FACTOR),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount },
      removalPolicy: RemovalPolicy.DESTROY,
    });
  }

  /**
   * Only these roles may send fan-out jobs: an IAM grant elsewhere in the account (an admin's `sqs:*`) does not
   * let anyone else put a job on the queue, since a job makes the worker post to connections.
   */
  allowSendersOnly(roles: readonly IRole[]): void {
    this.queue.addToResourcePolicy(
      new PolicyStatement({
        effect: Effect.DENY,
        principals: [new AnyPrincipal()],
        actions: ['sqs:SendMessage'],
        resources: [this.queue.queueArn],
        conditions: { ArnNotEquals: { 'aws:PrincipalArn': roles.map((role) => role.roleArn) }, ...NOT_A_SERVICE },
      }),
    );
  }
}

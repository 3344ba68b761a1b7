import {
  Alarm,
  ComparisonOperator,
  MathExpression,
  TreatMissingData,
  type IMetric,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { PERIOD, percentOf, type Signals } from './signals.js';

/**
 * Every threshold, in one place (docs/deploy.md, "Alarms and what to do when each fires", explains each). Rates
 * are percentages of the period's traffic; a rate needs a minimum volume so that one refusal in a quiet period
 * is not "100%".
 */
export const THRESHOLDS = {
  /** Handlers answer errors as frames: a Lambda error is a crash or a timeout. Any volume. */
  lambdaErrorPercent: 1,
  lambdaThrottlePercent: 1,
  /** API Gateway could not call the integration (Lambda throttled, crashed, timed out, or not permitted). */
  apiExecutionErrorPercent: 1,
  apiMinimumMessages: 20,
  /** ROUTE_TIMEOUT is 10 s; frames answer in tens of ms warm. Two of three periods: cold starts are not a trend. */
  integrationLatencyP99Ms: 3_000,
  /** A fan-out job older than this is a live message delivered a minute late. */
  queueAgeSeconds: 60,
  /** Throttle events among a table's throttled and consumed units. */
  tableThrottlePercent: 1,
  tableMinimumUnits: 100,
  redisThrottlePercent: 1,
  redisMinimumCommands: 100,
  /** Cost guards: about 4 ECPUs per message, so 5,000 ECPU/s is ~1,250 messages/s sustained for 15 minutes. */
  redisEcpuPerSecond: 5_000,
  /** Redis holds only limits, seq hints and presence: 1 GiB means keys that do not expire. */
  redisBytes: 1024 ** 3,
  natErrorPercent: 0.1,
  natMinimumAttempts: 100,
  /** Frames and handshakes answered `unavailable` (a dependency down or timing out). */
  unavailablePercent: 1,
  /** Frames and handshakes answered `rate_limited`: limits too tight for real clients, or one client abusing. */
  rateLimitedPercent: 5,
  minimumRequests: 20,
  /** Posts the Management API refused after retries (not 410 gone: that is a connection that left). */
  failedPostPercent: 1,
  minimumPosts: 20,
} as const;

export interface AlarmsProps {
  /** Alarm names are `{stackName}-{id}`: unique in the account and region, and what docs/deploy.md calls them. */
  stackName: string;
  signals: Signals;
  /** When set, alarms notify this address through an SNS topic. */
  alarmEmail: string | undefined;
}

interface AlarmSpec {
  id: string;
  metric: IMetric;
  threshold: number;
  description: string;
  /** Periods looked at, and how many of them must breach (default 1 of 1). */
  evaluationPeriods?: number;
  datapointsToAlarm?: number;
  /** Default: breaching above the threshold. */
  comparison?: ComparisonOperator;
}

/**
 * The signals that need a human, each as a rate of the traffic where traffic scales it: Lambda errors and
 * throttles per function, API execution errors and latency, the fan-out queue's age and dead letters, DynamoDB
 * throttling per table, the serverless cache's throttling, compute and size, NAT port allocation, and the app's
 * own `unavailable` / `rate_limited` answers and failed posts.
 */
export class Alarms extends Construct {
  readonly topic: Topic | undefined;
  readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, private readonly props: AlarmsProps) {
    super(scope, id);
    if (props.alarmEmail !== undefined) {
      this.topic = new Topic(this, 'Topic', { displayName: 'relay-ws alarms', enforceSSL: true });
      this.topic.addSubscription(new EmailSubscription(props.alarmEmail));
    }
    const signals = props.signals;
    const sources = signals.sources;

    for (const { name, handler } of sources.functions) {
      const invocations = signals.lambda(handler, 'Invocations');
      this.add({
        id: `${name}Errors`,
        metric: percentOf({
          failures: { errors: signals.lambda(handler, 'Errors') },
          others: { invocations },
          othersIncludeFailures: true,
          minimumTotal: 1,
          label: `${name} errors (% of invocations)`,
        }),
        threshold: THRESHOLDS.lambdaErrorPercent,
        description: `${name}: more than ${THRESHOLDS.lambdaErrorPercent}% of invocations crashed or timed out`,
      });
      this.add({
        id: `${name}Throttles`,
        metric: percentOf({
          failures: { throttles: signals.lambda(handler, 'Throttles') },
          others: { invocations },
          othersIncludeFailures: false,
          minimumTotal: 1,
          label: `${name} throttles (% of attempts)`,
        }),
        threshold: THRESHOLDS.lambdaThrottlePercent,
        description: `${name}: more than ${THRESHOLDS.lambdaThrottlePercent}% of invocations throttled (concurrency)`,
      });
    }

    // IntegrationError counts the integration's 4xx too (every refused handshake is one): not a failure signal.
    this.add({
      id: 'ApiExecutionErrors',
      metric: percentOf({
        failures: { executionErrors: signals.api('ExecutionError') },
        others: { messages: signals.api('MessageCount'), connects: signals.api('ConnectCount') },
        othersIncludeFailures: true,
        minimumTotal: THRESHOLDS.apiMinimumMessages,
        label: 'API execution errors (% of messages and connects)',
      }),
      threshold: THRESHOLDS.apiExecutionErrorPercent,
      description: `WebSocket API: more than ${THRESHOLDS.apiExecutionErrorPercent}% of requests could not be handed to their function`,
    });
    this.add({
      id: 'ApiIntegrationLatencyP99',
      metric: signals.api('IntegrationLatency', 'p99'),
      threshold: THRESHOLDS.integrationLatencyP99Ms,
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
      description: `WebSocket API: p99 integration latency above ${THRESHOLDS.integrationLatencyP99Ms} ms in 2 of 3 periods`,
    });

    this.add({
      id: 'FanoutQueueAge',
      metric: signals.queueAge(),
      threshold: THRESHOLDS.queueAgeSeconds,
      description: `fan-out queue: the oldest job waited more than ${THRESHOLDS.queueAgeSeconds} s (worker behind or failing)`,
    });
    // Absolute on purpose: every dead letter is a batch of deliveries that never happened.
    this.add({
      id: 'DeadLetters',
      metric: signals.queueDepth(sources.deadLetterQueue),
      threshold: 1,
      comparison: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      description: 'fan-out jobs in the dead-letter queue',
    });

    if (sources.notifyDeadLetterQueue !== undefined) {
      // Every one is a message whose offline recipients were not woken (a push service or the store failing).
      this.add({
        id: 'NotifyDeadLetters',
        metric: signals.queueDepth(sources.notifyDeadLetterQueue),
        threshold: 1,
        comparison: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        description: 'notify jobs (push notifications) in the notifier dead-letter queue',
      });
    }

    if (sources.passwordRotation !== undefined) {
      // Absolute on purpose: it runs four times a rotation (every 30 days by default), far below the rate alarms'
      // minimum volume, and one failed step leaves the password rotation half done (AWSPENDING left behind).
      this.add({
        id: 'RedisPasswordRotationErrors',
        metric: signals.lambda(sources.passwordRotation, 'Errors'),
        threshold: 1,
        comparison: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        description: 'the Redis password rotation failed a step (docs/deploy.md, Redis: recovering from a failed rotation)',
      });
    }

    for (const { name, table } of sources.tables) {
      this.add({
        id: `${capitalized(name)}TableThrottles`,
        metric: percentOf({
          failures: { reads: signals.table(table, 'ReadThrottleEvents'), writes: signals.table(table, 'WriteThrottleEvents') },
          others: { readUnits: signals.table(table, 'ConsumedReadCapacityUnits'), writeUnits: signals.table(table, 'ConsumedWriteCapacityUnits') },
          othersIncludeFailures: false,
          minimumTotal: THRESHOLDS.tableMinimumUnits,
          label: `${name} table throttle events (% of throttled and consumed units)`,
        }),
        threshold: THRESHOLDS.tableThrottlePercent,
        description: `${name} table: more than ${THRESHOLDS.tableThrottlePercent}% of requests throttled (hot key or on-demand limit)`,
      });
    }

    const cacheName = sources.serverlessCacheName;
    if (cacheName !== undefined) {
      this.add({
        id: 'RedisThrottledCommands',
        metric: percentOf({
          failures: { throttled: signals.cache(cacheName, 'ThrottledCmds') },
          others: { commands: signals.cache(cacheName, 'TotalCmdsCount') },
          othersIncludeFailures: false,
          minimumTotal: THRESHOLDS.redisMinimumCommands,
          label: 'Redis throttled commands (%)',
        }),
        threshold: THRESHOLDS.redisThrottlePercent,
        description: `ElastiCache Serverless: more than ${THRESHOLDS.redisThrottlePercent}% of commands throttled (scaling or usage limit)`,
      });
      const ecpu = signals.cache(cacheName, 'ElastiCacheProcessingUnits');
      this.add({
        id: 'RedisProcessingUnits',
        metric: new MathExpression({ expression: 'FILL(ecpu, 0) / PERIOD(ecpu)', usingMetrics: { ecpu }, label: 'Redis ECPU per second', period: PERIOD }),
        threshold: THRESHOLDS.redisEcpuPerSecond,
        evaluationPeriods: 3,
        datapointsToAlarm: 3,
        description: `ElastiCache Serverless: above ${THRESHOLDS.redisEcpuPerSecond} ECPU/s for 15 minutes (cost)`,
      });
      this.add({
        id: 'RedisBytesUsed',
        metric: signals.cache(cacheName, 'BytesUsedForCache', 'Maximum'),
        threshold: THRESHOLDS.redisBytes,
        description: 'ElastiCache Serverless: more than 1 GiB stored (keys that do not expire; cost)',
      });
    }

    sources.natGatewayIds.forEach((natGatewayId, index) => {
      this.add({
        id: `NatPortAllocationErrors${index + 1}`,
        metric: percentOf({
          failures: { errors: signals.nat(natGatewayId, 'ErrorPortAllocation') },
          others: { attempts: signals.nat(natGatewayId, 'ConnectionAttemptCount') },
          othersIncludeFailures: true,
          minimumTotal: THRESHOLDS.natMinimumAttempts,
          label: `NAT gateway ${index + 1} port allocation errors (% of connection attempts)`,
        }),
        threshold: THRESHOLDS.natErrorPercent,
        description: `NAT gateway ${index + 1}: more than ${THRESHOLDS.natErrorPercent}% of new connections found no source port`,
      });
    });

    const requests = signals.relay('requests');
    this.add({
      id: 'UnavailableAnswers',
      metric: percentOf({
        failures: { unavailable: signals.relay('unavailable') },
        others: { requests },
        othersIncludeFailures: true,
        minimumTotal: THRESHOLDS.minimumRequests,
        label: 'unavailable answers (% of requests)',
      }),
      threshold: THRESHOLDS.unavailablePercent,
      description: `more than ${THRESHOLDS.unavailablePercent}% of frames and handshakes answered unavailable`,
    });
    this.add({
      id: 'RateLimitedAnswers',
      metric: percentOf({
        failures: { limited: signals.relay('rate_limited') },
        others: { requests },
        othersIncludeFailures: true,
        minimumTotal: THRESHOLDS.minimumRequests,
        label: 'rate_limited answers (% of requests)',
      }),
      threshold: THRESHOLDS.rateLimitedPercent,
      description: `more than ${THRESHOLDS.rateLimitedPercent}% of frames and handshakes answered rate_limited`,
    });
    this.add({
      id: 'FailedPosts',
      metric: percentOf({
        failures: { failed: signals.relay('failed') },
        others: { deliveries: signals.relay('deliveries'), gone: signals.relay('gone') },
        othersIncludeFailures: false,
        minimumTotal: THRESHOLDS.minimumPosts,
        label: 'failed posts (% of posts)',
      }),
      threshold: THRESHOLDS.failedPostPercent,
      description: `more than ${THRESHOLDS.failedPostPercent}% of posts to connections failed after retries`,
    });
  }

  private add(spec: AlarmSpec): void {
    const alarm = new Alarm(this, spec.id, {
      alarmName: `${this.props.stackName}-${spec.id}`,
      metric: spec.metric,
      alarmDescription: `${spec.description}. See docs/deploy.md, "Alarms and what to do when each fires".`,
      threshold: spec.threshold,
      evaluationPeriods: spec.evaluationPeriods ?? 1,
      datapointsToAlarm: spec.datapointsToAlarm ?? spec.evaluationPeriods ?? 1,
      comparisonOperator: spec.comparison ?? ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    if (this.topic !== undefined) {
      const action = new SnsAction(this.topic);
      alarm.addAlarmAction(action);
      alarm.addOkAction(action);
    }
    this.alarms.push(alarm);
  }
}

function capitalized(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}

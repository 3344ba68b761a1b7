import { Duration } from 'aws-cdk-lib';
import { MathExpression, Metric, type IMetric } from 'aws-cdk-lib/aws-cloudwatch';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { METRICS_NAMESPACE, METRICS_SERVICE } from '../lambdas/adapters/metrics.js';
import type { MetricName } from '../lambdas/ports.js';

/** Every alarm and graph looks at five-minute periods (CloudWatch's standard resolution for these services). */
export const PERIOD = Duration.minutes(5);

/** What the stack has that can be watched; the cache and the NAT gateways only when the stack creates them. */
export interface SignalSources {
  stage: string;
  apiId: string;
  functions: readonly { name: string; handler: IFunction }[];
  fanoutQueue: IQueue;
  deadLetterQueue: IQueue;
  /** The notifier's dead-letter queue (push jobs that failed every retry). */
  notifyDeadLetterQueue?: IQueue;
  tables: readonly { name: string; table: ITable }[];
  /** The ElastiCache Serverless cache's name (its metrics' `clusterId` dimension). */
  serverlessCacheName: string | undefined;
  natGatewayIds: readonly string[];
  /** The Redis password rotation function, when the stack rotates a password (redis=serverless). */
  passwordRotation?: IFunction;
}

/**
 * The metrics the alarms and the dashboard are built from, in one place so both read the same signal. Names
 * and dimensions as AWS documents them: API Gateway WebSocket (`ApiId`, `Stage`), ElastiCache Serverless
 * (`clusterId`), NAT gateways (`NatGatewayId`); the app's own counters are EMF metrics (lambdas/adapters/metrics.ts).
 */
export class Signals {
  constructor(readonly sources: SignalSources) {}

  api(metricName: 'ConnectCount' | 'MessageCount' | 'ExecutionError' | 'IntegrationError' | 'ClientError' | 'IntegrationLatency', statistic = 'Sum'): Metric {
    return new Metric({
      namespace: 'AWS/ApiGateway',
      metricName,
      dimensionsMap: { ApiId: this.sources.apiId, Stage: this.sources.stage },
      statistic,
      period: PERIOD,
    });
  }

  /** One of the app's counters, summed over every function of the stage. */
  relay(name: MetricName): Metric {
    return new Metric({
      namespace: METRICS_NAMESPACE,
      metricName: name,
      dimensionsMap: { service: METRICS_SERVICE, stage: this.sources.stage },
      statistic: 'Sum',
      period: PERIOD,
    });
  }

  lambda(handler: IFunction, metricName: 'Errors' | 'Throttles' | 'Invocations'): Metric {
    return handler.metric(metricName, { statistic: 'Sum', period: PERIOD });
  }

  queueAge(): Metric {
    return this.sources.fanoutQueue.metricApproximateAgeOfOldestMessage({ statistic: 'Maximum', period: PERIOD });
  }

  queueDepth(queue: IQueue): Metric {
    return queue.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: PERIOD });
  }

  table(table: ITable, metricName: 'ReadThrottleEvents' | 'WriteThrottleEvents' | 'ConsumedReadCapacityUnits' | 'ConsumedWriteCapacityUnits'): Metric {
    return table.metric(metricName, { statistic: 'Sum', period: PERIOD });
  }

  cache(
    cacheName: string,
    metricName: 'ThrottledCmds' | 'TotalCmdsCount' | 'ElastiCacheProcessingUnits' | 'BytesUsedForCache' | 'CurrConnections' | 'SuccessfulReadRequestLatency' | 'SuccessfulWriteRequestLatency',
    statistic = 'Sum',
  ): Metric {
    return new Metric({ namespace: 'AWS/ElastiCache', metricName, dimensionsMap: { clusterId: cacheName }, statistic, period: PERIOD });
  }

  nat(natGatewayId: string, metricName: 'ErrorPortAllocation' | 'ConnectionAttemptCount' | 'BytesOutToDestination'): Metric {
    return new Metric({ namespace: 'AWS/NATGateway', metricName, dimensionsMap: { NatGatewayId: natGatewayId }, statistic: 'Sum', period: PERIOD });
  }
}

/**
 * `failures` as a percentage of `total`, where `total` is at least `minimumTotal` in the period (else 0: a
 * handful of requests is not a rate). Missing datapoints count as 0, so a quiet period is not a breach.
 */
export function percentOf(options: {
  failures: Record<string, IMetric>;
  /** Added to the failures to make the total (a throttled request is not counted among the invocations). */
  others: Record<string, IMetric>;
  /** True when `others` already include the failures (errors among invocations). */
  othersIncludeFailures: boolean;
  minimumTotal: number;
  label: string;
}): MathExpression {
  const sum = (ids: string[]) => ids.map((id) => `FILL(${id}, 0)`).join(' + ');
  const failures = sum(Object.keys(options.failures));
  const total = options.othersIncludeFailures ? sum(Object.keys(options.others)) : sum([...Object.keys(options.failures), ...Object.keys(options.others)]);
  return new MathExpression({
    expression: `IF((${total}) >= ${options.minimumTotal}, 100 * (${failures}) / (${total}), 0)`,
    usingMetrics: { ...options.failures, ...options.others },
    label: options.label,
    period: PERIOD,
  });
}

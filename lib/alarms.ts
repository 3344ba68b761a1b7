import { Duration } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  Metric,
  TreatMissingData,
  type IMetric,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface AlarmsProps {
  functions: readonly { name: string; handler: IFunction }[];
  deadLetterQueue: IQueue;
  apiId: string;
  stageName: string;
  /** When set, alarms notify this address through an SNS topic. */
  alarmEmail: string | undefined;
}

const PERIOD = Duration.minutes(5);

/** The signals that need a human: function errors and throttles, dead letters, API 5xx. */
export class Alarms extends Construct {
  readonly topic: Topic | undefined;
  readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: AlarmsProps) {
    super(scope, id);
    if (props.alarmEmail !== undefined) {
      this.topic = new Topic(this, 'Topic', { displayName: 'relay-ws alarms', enforceSSL: true });
      this.topic.addSubscription(new EmailSubscription(props.alarmEmail));
    }

    for (const { name, handler } of props.functions) {
      // Handlers answer errors as frames, so a Lambda error means a crash or a timeout: worth a look at once.
      this.add(`${name}Errors`, handler.metricErrors({ period: PERIOD, statistic: 'Sum' }), `${name}: invocation errors`);
      this.add(`${name}Throttles`, handler.metricThrottles({ period: PERIOD, statistic: 'Sum' }), `${name}: throttled`);
    }
    this.add(
      'DeadLetters',
      props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: PERIOD, statistic: 'Maximum' }),
      'fan-out jobs in the dead-letter queue',
    );
    for (const metricName of ['ExecutionError', 'IntegrationError']) {
      const metric = new Metric({
        namespace: 'AWS/ApiGateway',
        metricName,
        dimensionsMap: { ApiId: props.apiId, Stage: props.stageName },
        statistic: 'Sum',
        period: PERIOD,
      });
      this.add(`Api${metricName}`, metric, `WebSocket API ${metricName} (5xx)`);
    }
  }

  private add(id: string, metric: IMetric, description: string): void {
    const alarm = new Alarm(this, id, {
      metric,
      alarmDescription: description,
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
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

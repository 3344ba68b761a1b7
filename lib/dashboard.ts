import {
  AlarmStatusWidget,
  Dashboard,
  GraphWidget,
  type IAlarm,
  type IMetric,
  type IWidget,
  TextWidget,
} from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import type { Signals } from './signals.js';

export interface OperationsDashboardProps {
  /** The dashboard is named after the stack: one per stage. */
  stackName: string;
  signals: Signals;
  alarms: readonly IAlarm[];
}

const WIDTH = 8;
const HEIGHT = 6;

/**
 * One CloudWatch dashboard per stage with the graphs an operator reads first: traffic, latency, errors, the
 * app's own counters, the fan-out queue, DynamoDB, Redis and NAT (when the stack has them), and every alarm.
 */
export class OperationsDashboard extends Construct {
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: OperationsDashboardProps) {
    super(scope, id);
    const { signals } = props;
    const { sources } = signals;
    const graph = (title: string, left: IMetric[], right: IMetric[] = []): GraphWidget =>
      new GraphWidget({ title, left, right, width: WIDTH, height: HEIGHT });

    const rows: IWidget[][] = [
      [
        new TextWidget({
          markdown: `# relay-ws ${sources.stage}\nWhat each alarm means and what to do: docs/deploy.md, "Operations".`,
          width: 24,
          height: 2,
        }),
      ],
      [
        new AlarmStatusWidget({ title: 'Alarms', alarms: [...props.alarms], width: 24, height: 4 }),
      ],
      [
        graph('Connections and messages', [signals.api('ConnectCount'), signals.api('MessageCount')], [signals.relay('requests')]),
        graph('Integration latency (ms)', [signals.api('IntegrationLatency', 'p50'), signals.api('IntegrationLatency', 'p99')]),
        graph('API errors', [signals.api('ExecutionError'), signals.api('IntegrationError'), signals.api('ClientError')]),
      ],
      [
        graph('Answers watched (frames and handshakes)', [signals.relay('unavailable'), signals.relay('rate_limited')], [signals.relay('requests')]),
        graph('Posts to connections', [signals.relay('deliveries'), signals.relay('gone'), signals.relay('failed')], [signals.relay('fanout_jobs')]),
        graph('Fan-out queue', [signals.queueAge()], [signals.queueDepth(sources.fanoutQueue), signals.queueDepth(sources.deadLetterQueue)]),
      ],
      [
        graph('Lambda errors', sources.functions.map(({ name, handler }) => signals.lambda(handler, 'Errors').with({ label: name }))),
        graph('Lambda throttles', sources.functions.map(({ name, handler }) => signals.lambda(handler, 'Throttles').with({ label: name }))),
        graph('Lambda invocations', sources.functions.map(({ name, handler }) => signals.lambda(handler, 'Invocations').with({ label: name }))),
      ],
      [
        graph(
          'DynamoDB consumed capacity units',
          sources.tables.map(({ name, table }) => signals.table(table, 'ConsumedReadCapacityUnits').with({ label: `${name} read` })),
          sources.tables.map(({ name, table }) => signals.table(table, 'ConsumedWriteCapacityUnits').with({ label: `${name} write` })),
        ),
        graph(
          'DynamoDB throttle events',
          sources.tables.flatMap(({ name, table }) => [
            signals.table(table, 'ReadThrottleEvents').with({ label: `${name} read` }),
            signals.table(table, 'WriteThrottleEvents').with({ label: `${name} write` }),
          ]),
        ),
      ],
    ];
    const cacheName = sources.serverlessCacheName;
    const redisAndNat: IWidget[] = [];
    if (cacheName !== undefined) {
      redisAndNat.push(
        graph('Redis ECPUs and throttled commands', [signals.cache(cacheName, 'ElastiCacheProcessingUnits')], [signals.cache(cacheName, 'ThrottledCmds')]),
        graph(
          'Redis bytes stored and connections',
          [signals.cache(cacheName, 'BytesUsedForCache', 'Maximum')],
          [signals.cache(cacheName, 'CurrConnections', 'Maximum')],
        ),
      );
    }
    if (sources.natGatewayIds.length > 0) {
      redisAndNat.push(
        graph(
          'NAT gateways: port allocation errors and bytes out',
          sources.natGatewayIds.map((id, index) => signals.nat(id, 'ErrorPortAllocation').with({ label: `NAT ${index + 1} port allocation errors` })),
          sources.natGatewayIds.map((id, index) => signals.nat(id, 'BytesOutToDestination').with({ label: `NAT ${index + 1} bytes out` })),
        ),
      );
    }
    if (redisAndNat.length > 0) rows.push(redisAndNat);

    this.dashboard = new Dashboard(this, 'Dashboard', { dashboardName: props.stackName, widgets: rows });
  }
}

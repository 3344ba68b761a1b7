import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fanoutWorker, notifier, presenceSweeper, routes } from '../../deploy/routes.js';
import { tableShapes } from '../../deploy/tables.js';
import { METRICS_NAMESPACE, METRICS_SERVICE } from '../../lambdas/adapters/metrics.js';
import { THRESHOLDS } from '../../lib/alarms.js';
import {
  flat,
  functionNamed,
  onlyResource,
  props,
  removeAssembly,
  resourcesOfType,
  synthesize,
  violationsIn,
  type Synthesized,
  type TemplateJson,
  type TemplateResource,
} from './synth.js';

const STACK = 'RelayWs-dev';
const ALARM_EMAIL = 'ops@example.com';
const EXTERNAL = {
  redis: 'external',
  redisUrlSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:relay-ws/dev/redis-url-AbCdEf',
};
const allSpecs = [...routes, fanoutWorker, presenceSweeper, notifier];
const tableCount = Object.keys(tableShapes).length;

let serverless: Synthesized;
let external: Synthesized;
let perAz: Synthesized;

beforeAll(() => {
  serverless = synthesize({ alarmEmail: ALARM_EMAIL }, { bundle: false });
  external = synthesize(EXTERNAL, { bundle: false });
  perAz = synthesize({ natGateways: '2' }, { bundle: false });
});

afterAll(() => {
  for (const synth of [serverless, external, perAz]) removeAssembly(synth);
});

interface WatchedMetric {
  id: string;
  namespace: string;
  name: string;
  dimensions: Record<string, string>;
  stat: string;
}

/** The alarm named `{stack}-{id}`. */
function alarm(json: TemplateJson, id: string): Record<string, unknown> {
  const found = resourcesOfType(json, 'AWS::CloudWatch::Alarm').filter(([, a]) => props(a).AlarmName === `${STACK}-${id}`);
  if (found.length !== 1) throw new Error(`expected one alarm ${STACK}-${id}, found ${found.length}`);
  return props((found[0] ?? ['', { Type: '' }])[1]);
}

/** The metrics an alarm reads (a plain metric alarm reads one, a metric math alarm several), dimensions flattened. */
function watched(properties: Record<string, unknown>): WatchedMetric[] {
  const dimensionsOf = (dimensions: unknown) =>
    Object.fromEntries(((dimensions ?? []) as { Name: string; Value: unknown }[]).map((d) => [d.Name, flat(d.Value)]));
  if (properties.Metrics === undefined) {
    return [
      {
        id: 'm',
        namespace: String(properties.Namespace),
        name: String(properties.MetricName),
        dimensions: dimensionsOf(properties.Dimensions),
        stat: String(properties.Statistic ?? properties.ExtendedStatistic),
      },
    ];
  }
  return (properties.Metrics as { Id: string; MetricStat?: { Metric: { Namespace: string; MetricName: string; Dimensions?: unknown }; Stat: string } }[])
    .filter((m) => m.MetricStat !== undefined)
    .map((m) => ({
      id: m.Id,
      namespace: m.MetricStat?.Metric.Namespace ?? '',
      name: m.MetricStat?.Metric.MetricName ?? '',
      dimensions: dimensionsOf(m.MetricStat?.Metric.Dimensions),
      stat: m.MetricStat?.Stat ?? '',
    }));
}

function expressionOf(properties: Record<string, unknown>): string {
  const metrics = (properties.Metrics ?? []) as { Expression?: string; ReturnData?: boolean }[];
  return metrics.find((m) => m.ReturnData === true)?.Expression ?? '';
}

const alarmsIn = (json: TemplateJson): [string, TemplateResource][] => resourcesOfType(json, 'AWS::CloudWatch::Alarm');
const namesIn = (json: TemplateJson) => alarmsIn(json).map(([, a]) => String(props(a).AlarmName).replace(`${STACK}-`, ''));

describe('alarms on Lambda', () => {
  it.each(allSpecs.map((spec) => [spec.name] as const))('%s: errors and throttles as a share of its invocations', (name) => {
    const [functionId] = functionNamed(serverless.json, STACK, name);
    const errors = alarm(serverless.json, `${name}Errors`);
    expect(watched(errors)).toEqual([
      { id: 'errors', namespace: 'AWS/Lambda', name: 'Errors', dimensions: { FunctionName: `<${functionId}>` }, stat: 'Sum' },
      { id: 'invocations', namespace: 'AWS/Lambda', name: 'Invocations', dimensions: { FunctionName: `<${functionId}>` }, stat: 'Sum' },
    ]);
    expect(expressionOf(errors)).toBe('IF((FILL(invocations, 0)) >= 1, 100 * (FILL(errors, 0)) / (FILL(invocations, 0)), 0)');
    expect(errors).toMatchObject({ Threshold: THRESHOLDS.lambdaErrorPercent, ComparisonOperator: 'GreaterThanThreshold' });

    const throttles = alarm(serverless.json, `${name}Throttles`);
    expect(watched(throttles).map((m) => m.name)).toEqual(['Throttles', 'Invocations']);
    // A throttled invocation is not among the invocations: the total is both.
    expect(expressionOf(throttles)).toContain('100 * (FILL(throttles, 0)) / (FILL(throttles, 0) + FILL(invocations, 0))');
  });
});

describe('alarms on the WebSocket API', () => {
  it('watches ExecutionError as a share of messages and connects, never IntegrationError (it counts refused handshakes)', () => {
    const [apiId] = onlyResource(serverless.json, 'AWS::ApiGatewayV2::Api');
    const executionErrors = alarm(serverless.json, 'ApiExecutionErrors');
    const dimensions = { ApiId: `<${apiId}>`, Stage: 'dev' };
    expect(watched(executionErrors)).toEqual([
      { id: 'executionErrors', namespace: 'AWS/ApiGateway', name: 'ExecutionError', dimensions, stat: 'Sum' },
      { id: 'messages', namespace: 'AWS/ApiGateway', name: 'MessageCount', dimensions, stat: 'Sum' },
      { id: 'connects', namespace: 'AWS/ApiGateway', name: 'ConnectCount', dimensions, stat: 'Sum' },
    ]);
    expect(expressionOf(executionErrors)).toMatch(new RegExp(`^IF\\(\\(FILL\\(messages, 0\\) \\+ FILL\\(connects, 0\\)\\) >= ${THRESHOLDS.apiMinimumMessages},`));
    const watchedNames = alarmsIn(serverless.json).flatMap(([, a]) => watched(props(a)).map((m) => m.name));
    expect(watchedNames).not.toContain('IntegrationError');
  });

  it('watches p99 integration latency in 2 of 3 periods', () => {
    const latency = alarm(serverless.json, 'ApiIntegrationLatencyP99');
    expect(watched(latency)[0]).toMatchObject({ namespace: 'AWS/ApiGateway', name: 'IntegrationLatency', stat: 'p99' });
    expect(latency).toMatchObject({ Threshold: THRESHOLDS.integrationLatencyP99Ms, EvaluationPeriods: 3, DatapointsToAlarm: 2 });
  });
});

describe('alarms on the fan-out queue', () => {
  it('watches the age of the oldest job on the fan-out queue and any dead letter', () => {
    const [queueId] = resourcesOfType(serverless.json, 'AWS::SQS::Queue').find(([, q]) => props(q).RedrivePolicy !== undefined) ?? [''];
    const [dlqId] = resourcesOfType(serverless.json, 'AWS::SQS::Queue').find(([, q]) => props(q).RedrivePolicy === undefined) ?? [''];
    const age = alarm(serverless.json, 'FanoutQueueAge');
    expect(watched(age)).toEqual([
      { id: 'm', namespace: 'AWS/SQS', name: 'ApproximateAgeOfOldestMessage', dimensions: { QueueName: `<${queueId}.QueueName>` }, stat: 'Maximum' },
    ]);
    expect(age.Threshold).toBe(THRESHOLDS.queueAgeSeconds);
    const dead = alarm(serverless.json, 'DeadLetters');
    expect(watched(dead)[0]).toMatchObject({ name: 'ApproximateNumberOfMessagesVisible', dimensions: { QueueName: `<${dlqId}.QueueName>` } });
    expect(dead).toMatchObject({ Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold' });
  });
});

describe('the Redis password rotation alarm', () => {
  it('fires on any failed step of the rotation function (absolute: it runs a few times a month), only when the stack rotates', () => {
    const [functionId] = functionNamed(serverless.json, STACK, 'redisPasswordRotation');
    const failed = alarm(serverless.json, 'RedisPasswordRotationErrors');
    expect(watched(failed)[0]).toMatchObject({ namespace: 'AWS/Lambda', name: 'Errors', dimensions: { FunctionName: `<${functionId}>` }, stat: 'Sum' });
    expect(failed).toMatchObject({ Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold' });
    expect(namesIn(external.json)).not.toContain('RedisPasswordRotationErrors');
  });
});

describe('alarms on DynamoDB', () => {
  it('watches read and write throttle events of every table as a share of its traffic', () => {
    const tables = resourcesOfType(serverless.json, 'AWS::DynamoDB::Table').map(([id]) => `<${id}>`);
    expect(tables).toHaveLength(tableCount);
    const watchedTables = Object.keys(tableShapes).map((name) => {
      const throttles = alarm(serverless.json, `${name.charAt(0).toUpperCase()}${name.slice(1)}TableThrottles`);
      const metrics = watched(throttles);
      expect(metrics.map((m) => m.name)).toEqual(['ReadThrottleEvents', 'WriteThrottleEvents', 'ConsumedReadCapacityUnits', 'ConsumedWriteCapacityUnits']);
      expect(new Set(metrics.map((m) => m.dimensions.TableName)).size).toBe(1);
      expect(expressionOf(throttles)).toContain(`>= ${THRESHOLDS.tableMinimumUnits}`);
      return metrics[0]?.dimensions.TableName;
    });
    expect(watchedTables.sort()).toEqual(tables.sort());
  });
});

describe('alarms on ElastiCache Serverless and NAT (only when the stack creates them)', () => {
  it('watches throttled commands, ECPUs and bytes of the cache, by its clusterId', () => {
    const [, cache] = onlyResource(serverless.json, 'AWS::ElastiCache::ServerlessCache');
    const clusterId = String(props(cache).ServerlessCacheName);
    const throttled = alarm(serverless.json, 'RedisThrottledCommands');
    expect(watched(throttled).map((m) => [m.name, m.dimensions])).toEqual([
      ['ThrottledCmds', { clusterId }],
      ['TotalCmdsCount', { clusterId }],
    ]);
    const ecpu = alarm(serverless.json, 'RedisProcessingUnits');
    expect(watched(ecpu).map((m) => m.name)).toEqual(['ElastiCacheProcessingUnits']);
    expect(expressionOf(ecpu)).toBe('FILL(ecpu, 0) / PERIOD(ecpu)');
    expect(ecpu).toMatchObject({ Threshold: THRESHOLDS.redisEcpuPerSecond, EvaluationPeriods: 3, DatapointsToAlarm: 3 });
    const bytes = alarm(serverless.json, 'RedisBytesUsed');
    expect(watched(bytes)).toEqual([{ id: 'm', namespace: 'AWS/ElastiCache', name: 'BytesUsedForCache', dimensions: { clusterId }, stat: 'Maximum' }]);
  });

  it('watches port allocation errors of each NAT gateway: one alarm by default, two with natGateways=2', () => {
    for (const [synth, count] of [[serverless, 1], [perAz, 2]] as const) {
      const gateways = resourcesOfType(synth.json, 'AWS::EC2::NatGateway').map(([id]) => `<${id}.NatGatewayId>`);
      expect(gateways).toHaveLength(count);
      const watchedGateways = Array.from({ length: count }, (_, index) => {
        const nat = alarm(synth.json, `NatPortAllocationErrors${index + 1}`);
        const metrics = watched(nat);
        expect(metrics.map((m) => m.name)).toEqual(['ErrorPortAllocation', 'ConnectionAttemptCount']);
        return metrics[0]?.dimensions.NatGatewayId;
      });
      expect(watchedGateways.sort()).toEqual(gateways.sort());
    }
  });

  it('has neither with redis=external (no cache, no VPC)', () => {
    const names = namesIn(external.json);
    expect(names.filter((name) => name.startsWith('Redis') || name.startsWith('Nat'))).toEqual([]);
    expect(names.length).toBe(namesIn(serverless.json).length - 5); // 3 Redis metrics, the NAT gateway, the password rotation
  });
});

describe('alarms on the app counters (EMF)', () => {
  const relay = (name: string) => ({ namespace: METRICS_NAMESPACE, name, dimensions: { service: METRICS_SERVICE, stage: 'dev' }, stat: 'Sum' });

  it('watches unavailable and rate_limited answers as shares of the requests', () => {
    const unavailable = alarm(serverless.json, 'UnavailableAnswers');
    expect(watched(unavailable).map(({ id: _id, ...m }) => m)).toEqual([relay('unavailable'), relay('requests')]);
    expect(unavailable.Threshold).toBe(THRESHOLDS.unavailablePercent);
    const limited = alarm(serverless.json, 'RateLimitedAnswers');
    expect(watched(limited).map(({ id: _id, ...m }) => m)).toEqual([relay('rate_limited'), relay('requests')]);
    expect(limited.Threshold).toBe(THRESHOLDS.rateLimitedPercent);
    for (const rate of [unavailable, limited]) expect(expressionOf(rate)).toMatch(new RegExp(`^IF\\(\\(FILL\\(requests, 0\\)\\) >= ${THRESHOLDS.minimumRequests},`));
  });

  it('watches failed posts as a share of every post', () => {
    const failed = alarm(serverless.json, 'FailedPosts');
    expect(watched(failed).map(({ id: _id, ...m }) => m)).toEqual([relay('failed'), relay('deliveries'), relay('gone')]);
    expect(expressionOf(failed)).toContain('100 * (FILL(failed, 0)) / (FILL(failed, 0) + FILL(deliveries, 0) + FILL(gone, 0))');
  });
});

describe('every alarm', () => {
  it('is one of the expected set, named {stack}-{id}', () => {
    const expected = [
      ...allSpecs.flatMap((spec) => [`${spec.name}Errors`, `${spec.name}Throttles`]),
      'ApiExecutionErrors',
      'ApiIntegrationLatencyP99',
      'FanoutQueueAge',
      'DeadLetters',
      'NotifyDeadLetters',
      'RedisPasswordRotationErrors',
      ...Object.keys(tableShapes).map((name) => `${name.charAt(0).toUpperCase()}${name.slice(1)}TableThrottles`),
      'RedisThrottledCommands',
      'RedisProcessingUnits',
      'RedisBytesUsed',
      'NatPortAllocationErrors1',
      'UnavailableAnswers',
      'RateLimitedAnswers',
      'FailedPosts',
    ];
    expect(namesIn(serverless.json).sort()).toEqual(expected.sort());
    console.info(`alarms: ${expected.length} (redis=serverless, one NAT gateway)`);
  });

  it('notifies the alarm e-mail when it fires and when it recovers, treats missing data as fine, and says where to look', () => {
    const [topicId] = onlyResource(serverless.json, 'AWS::SNS::Topic');
    serverless.template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: ALARM_EMAIL, TopicArn: { Ref: topicId } });
    for (const [, resource] of alarmsIn(serverless.json)) {
      const properties = props(resource);
      expect(properties.AlarmActions).toEqual([{ Ref: topicId }]);
      expect(properties.OKActions).toEqual([{ Ref: topicId }]);
      expect(properties.TreatMissingData).toBe('notBreaching');
      expect(String(properties.AlarmDescription)).toContain('docs/deploy.md');
    }
  });

  it('has no action without an alarm e-mail (visible in the console only)', () => {
    expect(resourcesOfType(external.json, 'AWS::SNS::Topic')).toEqual([]);
    for (const [, resource] of alarmsIn(external.json)) expect(props(resource).AlarmActions).toBeUndefined();
  });

  it('guards every rate with a minimum volume, so a quiet period cannot breach', () => {
    for (const [, resource] of alarmsIn(serverless.json)) {
      const expression = expressionOf(props(resource));
      if (expression.includes(' / (')) expect(expression, String(props(resource).AlarmName)).toMatch(/^IF\(\(.+\) >= \d+, 100 \* /);
    }
  });

  it('keeps cdk-nag clean in every variant', () => {
    for (const synth of [serverless, external, perAz]) expect(violationsIn(synth.report)).toEqual([]);
  });
});

describe('dashboard', () => {
  it('is one per stage, named after the stack, with the key graphs and every alarm', () => {
    const [, dashboard] = onlyResource(serverless.json, 'AWS::CloudWatch::Dashboard');
    expect(props(dashboard).DashboardName).toBe(STACK);
    const body = flat(props(dashboard).DashboardBody);
    const widgets = (JSON.parse(body) as { widgets: { properties: { title?: string; metrics?: unknown[][]; alarms?: string[] } }[] }).widgets;
    const titles = widgets.map((w) => w.properties.title).filter((t): t is string => t !== undefined);
    expect(titles).toEqual([
      'Alarms',
      'Connections and messages',
      'Integration latency (ms)',
      'API errors',
      'Answers watched (frames and handshakes)',
      'Posts to connections',
      'Fan-out queue',
      'Lambda errors',
      'Lambda throttles',
      'Lambda invocations',
      'DynamoDB consumed capacity units',
      'DynamoDB throttle events',
      'Redis ECPUs and throttled commands',
      'Redis bytes stored and connections',
      'NAT gateways: port allocation errors and bytes out',
    ]);
    const graphed = JSON.stringify(widgets.flatMap((w) => w.properties.metrics ?? []));
    for (const name of [
      'ConnectCount',
      'MessageCount',
      'IntegrationLatency',
      'ExecutionError',
      'ApproximateAgeOfOldestMessage',
      'ApproximateNumberOfMessagesVisible',
      'ConsumedReadCapacityUnits',
      'WriteThrottleEvents',
      'ElastiCacheProcessingUnits',
      'BytesUsedForCache',
      'ThrottledCmds',
      'ErrorPortAllocation',
      'deliveries',
      'gone',
      'failed',
      'unavailable',
      'rate_limited',
      'fanout_jobs',
    ]) {
      expect(graphed, name).toContain(`"${name}"`);
    }
    expect(graphed).toContain('"p99"');
    expect(graphed).toContain('"p50"');
    const alarmWidget = widgets.find((w) => w.properties.title === 'Alarms');
    expect(alarmWidget?.properties.alarms).toHaveLength(alarmsIn(serverless.json).length);
  });

  it('leaves out the Redis and NAT graphs with redis=external', () => {
    const [, dashboard] = onlyResource(external.json, 'AWS::CloudWatch::Dashboard');
    const body = flat(props(dashboard).DashboardBody);
    expect(body).not.toContain('AWS/ElastiCache');
    expect(body).not.toContain('AWS/NATGateway');
    expect(body).toContain('AWS/ApiGateway');
  });

  it('points at the stack resources (function names, table names), not at placeholders', () => {
    const [, dashboard] = onlyResource(serverless.json, 'AWS::CloudWatch::Dashboard');
    const [functionId] = functionNamed(serverless.json, STACK, 'sendMessage');
    const body = props(dashboard).DashboardBody;
    expect(JSON.stringify(body)).toContain(JSON.stringify({ Ref: functionId }));
  });
});

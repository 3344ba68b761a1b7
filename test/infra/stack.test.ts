import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fanoutWorker, notifier, presenceSweeper, routes } from '../../deploy/routes.js';
import { connectionsTable, MEMBER_USER_INDEX, membersTable } from '../../deploy/tables.js';
import { ACCESS_LOG_FIELDS } from '../../lib/api.js';
import { ESM_REQUIRE_BANNER } from '../../lib/functions.js';
import { FanoutQueues } from '../../lib/queues.js';
import { REDIS_APP_ACCESS, REDIS_APP_USER, REDIS_DEFAULT_ACCESS, redisPasswordRotation } from '../../lib/redis.js';
import { pushSetup } from '../../lib/push-setup.js';
import { OUTPUTS, WORKER_BATCH_SIZE } from '../../lib/relay-stack.js';
import { parseSettings, workerMaxConcurrency } from '../../lib/settings.js';
import {
  asArray,
  flat,
  functionNamed,
  getAttTarget,
  onlyResource,
  props,
  refTarget,
  resourcesOfType,
  removeAssembly,
  synthesize,
  violationsIn,
  type Synthesized,
  type ValidationReport,
} from './synth.js';

const STACK = 'RelayWs-dev';
const ALARM_EMAIL = 'ops@example.com';
/** With `redis=serverless` (the default) the stack also has the Redis password rotation function. */
const allSpecs = [...routes, fanoutWorker, presenceSweeper, notifier, redisPasswordRotation, pushSetup];

let synth: Synthesized;
/** The stage's own functions (each named `{stack}-{spec}`), not CDK's Provider framework one. */
const ourFunctions = () => resourcesOfType(synth.json, 'AWS::Lambda::Function').filter(([, f]) => props(f).FunctionName !== undefined);

beforeAll(() => {
  // The one synthesis with real esbuild bundling (about 5 s); the other infra test files skip bundling.
  synth = synthesize({ alarmEmail: ALARM_EMAIL }, { bundle: true });
});

afterAll(() => removeAssembly(synth));

describe('the app', () => {
  it('synthesizes one stack per stage, named RelayWs-{stage}', () => {
    expect(synth.stack.stackName).toBe(STACK);
    expect(synth.assembly.stacks.map((s) => s.stackName)).toEqual([STACK]);
  });

  it('has no cdk-nag finding (error or warning) left unacknowledged', () => {
    expect(violationsIn(synth.report)).toEqual([]);
    expect(synth.messages.filter((m) => m.level !== 'info')).toEqual([]);
  });

  it('acknowledges only the reviewed cdk-nag rules, each with a reason', () => {
    const acknowledged = new Map<string, string>();
    for (const construct of synth.stack.node.findAll()) {
      for (const entry of construct.node.metadata) {
        if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
        for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
          // aws-cdk-lib acknowledges some of its own CloudFormation-Validate rules; ours are cdk-nag's.
          const ruleId = id.replace(/^annotation::/i, '');
          if (ruleId.startsWith('AwsSolutions-')) acknowledged.set(ruleId, reason);
        }
      }
    }
    const ruleIds = [...acknowledged.keys()].map((id) => id.replace(/\[.*$/, '')).sort();
    expect([...new Set(ruleIds)]).toEqual([
      'AwsSolutions-APIG4',
      'AwsSolutions-IAM4',
      'AwsSolutions-IAM5',
      'AwsSolutions-L1',
      'AwsSolutions-SMG4',
    ]);
    // No AWS managed policy any more (IAM4 is left acknowledged for CDK's own API Gateway CloudWatch role).
    expect([...acknowledged.keys()].filter((id) => id.startsWith('AwsSolutions-IAM5')).sort()).toEqual([
      'AwsSolutions-IAM5[Resource::*]',
      // The CDK Provider framework may invoke the push setup function's versions.
      expect.stringMatching(/^AwsSolutions-IAM5\[Resource::<pushSetupFunction[A-Za-z0-9]+\.Arn>:\*\]$/),
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*]',
      expect.stringMatching(/^AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:execute-api:.*\/dev\/POST\/@connections\/\*\]$/),
    ]);
    expect(acknowledged.get('AwsSolutions-IAM5[Resource::*]')).toMatch(/ec2:DescribeNetworkInterfaces/);
    for (const reason of acknowledged.values()) expect(reason.length).toBeGreaterThan(40);
  });

  it('would report a finding: the check above can fail', () => {
    const outdir = mkdtempSync(join(tmpdir(), 'relay-nag-'));
    try {
      const app = new App({ outdir });
      new Queue(new Stack(app, 'Bad'), 'PlainQueue');
      Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
      expect(() => app.synth()).toThrow(/AwsSolutions-SQS4/);
      const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as ValidationReport;
      expect(violationsIn(report)).toEqual(expect.arrayContaining([expect.stringContaining('AwsSolutions-SQS3')]));
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });
});

describe('WebSocket API', () => {
  it('routes on $request.body.action', () => {
    synth.template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      ProtocolType: 'WEBSOCKET',
      RouteSelectionExpression: '$request.body.action',
    });
  });

  it.each(routes.map((route) => [route.routeKey, route] as const))('maps %s to its own function', (_key, route) => {
    const routeEntry = resourcesOfType(synth.json, 'AWS::ApiGatewayV2::Route').find(
      ([, resource]) => props(resource).RouteKey === route.routeKey,
    );
    expect(routeEntry).toBeDefined();
    const [routeId, routeResource] = routeEntry ?? ['', { Type: '' }];
    const integrationId = flat(props(routeResource).Target).replace(/^integrations\/<(.+)>$/, '$1');
    const integration = synth.json.Resources[integrationId];
    expect(integration?.Type).toBe('AWS::ApiGatewayV2::Integration');
    const [functionId] = functionNamed(synth.json, STACK, route.name);
    expect(flat(props(integration ?? { Type: '' }).IntegrationUri)).toContain(`<${functionId}.Arn>`);
    expect(props(integration ?? { Type: '' }).IntegrationType).toBe('AWS_PROXY');

    const responses = resourcesOfType(synth.json, 'AWS::ApiGatewayV2::RouteResponse').filter(
      ([, resource]) => refTarget(props(resource).RouteId) === routeId,
    );
    expect(responses).toHaveLength(route.twoWay ? 1 : 0);
  });

  it('has exactly the routes of the route table, each a Lambda integration (no MOCK one)', () => {
    const keys = resourcesOfType(synth.json, 'AWS::ApiGatewayV2::Route').map(([, r]) => props(r).RouteKey);
    expect(keys.sort()).toEqual(routes.map((r) => r.routeKey).sort());
    const types = resourcesOfType(synth.json, 'AWS::ApiGatewayV2::Integration').map(([, i]) => props(i).IntegrationType);
    expect(types).toEqual(routes.map(() => 'AWS_PROXY'));
  });

  it('deploys a throttled stage that writes JSON access logs', () => {
    const [, stage] = onlyResource(synth.json, 'AWS::ApiGatewayV2::Stage');
    const properties = props(stage);
    expect(properties).toMatchObject({
      StageName: 'dev',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 500, ThrottlingBurstLimit: 1000 },
    });
    const settings = properties.AccessLogSettings as { Format: string; DestinationArn: unknown };
    const format = JSON.parse(settings.Format) as Record<string, string>;
    expect(format).toEqual(ACCESS_LOG_FIELDS);
    expect(format).toMatchObject({
      requestId: '$context.requestId',
      connectionId: '$context.connectionId',
      routeKey: '$context.routeKey',
      status: '$context.status',
      errorMessage: '$context.error.message',
    });
    const logGroupId = getAttTarget(settings.DestinationArn);
    expect(logGroupId === undefined ? undefined : synth.json.Resources[logGroupId]?.Type).toBe('AWS::Logs::LogGroup');
  });

  it('sets the account-level CloudWatch role before the stage logs', () => {
    const [accountId, account] = onlyResource(synth.json, 'AWS::ApiGateway::Account');
    const roleId = getAttTarget(props(account).CloudWatchRoleArn);
    expect(roleId === undefined ? undefined : synth.json.Resources[roleId]?.DeletionPolicy).toBe('Retain');
    const [, stage] = onlyResource(synth.json, 'AWS::ApiGatewayV2::Stage');
    expect(asArray(stage.DependsOn)).toContain(accountId);
  });
});

describe('functions', () => {
  it('makes one function per route entry plus the fan-out worker, the sweeper and the password rotation', () => {
    const names = ourFunctions().map(([, f]) => props(f).FunctionName);
    expect(names.sort()).toEqual(allSpecs.map((spec) => `${STACK}-${spec.name}`).sort());
    // And one more: CDK's Provider framework, which relays the push custom resources' events to pushSetup.
    const others = resourcesOfType(synth.json, 'AWS::Lambda::Function').filter(([, f]) => props(f).FunctionName === undefined);
    expect(others.map(([, f]) => String(props(f).Description))).toEqual([expect.stringMatching(/^AWS CDK resource provider framework - onEvent .*PushSetup/)]);
  });

  it.each(allSpecs.map((spec) => [spec.name, spec] as const))('%s: nodejs22.x on arm64, ESM, source maps, own log group', (_name, spec) => {
    const [, fn] = functionNamed(synth.json, STACK, spec.name);
    const properties = props(fn);
    expect(properties).toMatchObject({
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      Handler: 'index.handler',
      Environment: { Variables: expect.objectContaining({ NODE_OPTIONS: '--enable-source-maps' }) },
    });
    const logGroupId = refTarget((properties.LoggingConfig as { LogGroup: unknown }).LogGroup);
    const logGroup = logGroupId === undefined ? undefined : synth.json.Resources[logGroupId];
    expect(logGroup?.Type).toBe('AWS::Logs::LogGroup');
    expect(props(logGroup ?? { Type: '' }).RetentionInDays).toBe(30);
    // Its own group: no two functions share one.
    const groups = ourFunctions().map(([, f]) =>
      refTarget((props(f).LoggingConfig as { LogGroup: unknown }).LogGroup),
    );
    expect(new Set(groups).size).toBe(allSpecs.length);
  });

  it.each(allSpecs.map((spec) => [spec.name, spec] as const))('%s: in the VPC exactly when it uses Redis', (_name, spec) => {
    const [, fn] = functionNamed(synth.json, STACK, spec.name);
    expect(props(fn).VpcConfig !== undefined).toBe(spec.access.redis);
  });

  it('bundles each handler as an ESM module that Node loads (the createRequire banner included)', async () => {
    const bundles = allSpecs.map((spec) => {
      const [, fn] = functionNamed(synth.json, STACK, spec.name);
      const key = String((props(fn).Code as { S3Key: string }).S3Key).replace(/\.zip$/, '');
      return { name: spec.name, file: join(synth.assembly.directory, `asset.${key}`, 'index.mjs') };
    });
    for (const bundle of bundles) {
      expect(existsSync(bundle.file), bundle.name).toBe(true);
      expect(existsSync(`${bundle.file}.map`), `${bundle.name} source map`).toBe(true);
      expect(readFileSync(bundle.file, 'utf8').startsWith(ESM_REQUIRE_BANNER), bundle.name).toBe(true);
    }
    // A fresh Node process, no test environment: module initialisation is what a cold start runs.
    const script = `
      import { pathToFileURL } from 'node:url';
      const loaded = {};
      for (const file of process.argv.slice(1)) loaded[file] = typeof (await import(pathToFileURL(file).href)).handler;
      const defaultRoute = await import(pathToFileURL(process.argv[${1 + allSpecs.findIndex((s) => s.name === 'default')}]).href);
      const answer = await defaultRoute.handler({ requestContext: { connectionId: 'c-1', requestId: 'r-1' }, body: '{"action":"nope"}' });
      console.log(JSON.stringify({ loaded, answer }));
    `;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--input-type=module', '-e', script, ...bundles.map((b) => b.file)],
      { env: { PATH: process.env.PATH ?? '' }, timeout: 30_000 },
    );
    const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { loaded: Record<string, string>; answer: { statusCode: number; body: string } };
    expect(Object.values(result.loaded)).toEqual(bundles.map(() => 'function'));
    expect(result.answer.statusCode).toBe(200);
    expect(JSON.parse(result.answer.body)).toMatchObject({ type: 'error', code: 'bad_request', action: 'nope' });
  });
});

describe('tables', () => {
  const keySchema = (shape: typeof connectionsTable | typeof membersTable) => [
    { AttributeName: shape.partitionKey.name, KeyType: 'HASH' },
    ...('sortKey' in shape ? [{ AttributeName: shape.sortKey.name, KeyType: 'RANGE' }] : []),
  ];

  it('builds the connections table from lambdas/tables.ts: GSI by conversation (ALL), TTL, PITR, on demand', () => {
    const [index] = connectionsTable.indexes;
    synth.template.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: keySchema(connectionsTable),
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      GlobalSecondaryIndexes: [
        {
          IndexName: index.name,
          KeySchema: [
            { AttributeName: index.partitionKey.name, KeyType: 'HASH' },
            { AttributeName: index.sortKey.name, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    });
  });

  it('builds the membership table from lambdas/tables.ts: GSI by user (ALL) for the conversations list', () => {
    const [index] = membersTable.indexes;
    synth.template.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: keySchema(membersTable),
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      GlobalSecondaryIndexes: [
        {
          IndexName: MEMBER_USER_INDEX,
          KeySchema: [
            { AttributeName: index.partitionKey.name, KeyType: 'HASH' },
            { AttributeName: index.sortKey.name, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    });
  });

  it('deletes the tables with a non-prod stack', () => {
    for (const [, table] of resourcesOfType(synth.json, 'AWS::DynamoDB::Table')) {
      expect(table.DeletionPolicy).toBe('Delete');
    }
  });
});

describe('fan-out queue', () => {
  it('redrives to the dead-letter queue after maxReceiveCount (default 5)', () => {
    const [dlqId] = resourcesOfType(synth.json, 'AWS::SQS::Queue').find(([, q]) => props(q).RedrivePolicy === undefined) ?? [''];
    synth.template.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] }, maxReceiveCount: 5 },
    });
  });

  it('hides a received job for at least six times the worker timeout', () => {
    const [, worker] = functionNamed(synth.json, STACK, fanoutWorker.name);
    const [, queue] = resourcesOfType(synth.json, 'AWS::SQS::Queue').find(([, q]) => props(q).RedrivePolicy !== undefined) ?? ['', { Type: '' }];
    const timeout = Number(props(worker).Timeout);
    expect(timeout).toBeGreaterThan(0);
    expect(Number(props(queue).VisibilityTimeout)).toBeGreaterThanOrEqual(FanoutQueues.VISIBILITY_FACTOR * timeout);
  });

  it('encrypts every queue (fan-out and notify, each with its DLQ) and refuses plain HTTP', () => {
    const queues = resourcesOfType(synth.json, 'AWS::SQS::Queue');
    expect(queues).toHaveLength(4);
    for (const [, queue] of queues) expect(props(queue).SqsManagedSseEnabled).toBe(true);
    const policies = resourcesOfType(synth.json, 'AWS::SQS::QueuePolicy');
    const protectedQueues = policies.flatMap(([, policy]) => {
      const text = JSON.stringify(props(policy).PolicyDocument);
      return text.includes('"aws:SecureTransport":"false"') && text.includes('"Effect":"Deny"') ? asArray(props(policy).Queues).map(refTarget) : [];
    });
    expect(protectedQueues.sort()).toEqual(queues.map(([id]) => id).sort());
  });

  it('caps the worker\'s concurrency so its posts stay within its share of the callback quota', () => {
    const [workerId] = functionNamed(synth.json, STACK, fanoutWorker.name);
    // 10,000 requests/s × 0.5 / 1,938 posts/s per worker = 2 (the event source's minimum).
    synth.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: workerId },
      ScalingConfig: { MaximumConcurrency: workerMaxConcurrency(parseSettings({})) },
    });
    expect(workerMaxConcurrency(parseSettings({}))).toBe(2);
  });

  it('feeds the worker in batches, reporting failures item by item', () => {
    const [workerId] = functionNamed(synth.json, STACK, fanoutWorker.name);
    const [queueId] = resourcesOfType(synth.json, 'AWS::SQS::Queue').find(([, q]) => props(q).RedrivePolicy !== undefined) ?? [''];
    synth.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: workerId },
      EventSourceArn: { 'Fn::GetAtt': [queueId, 'Arn'] },
      BatchSize: WORKER_BATCH_SIZE,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
  });
});

describe('ElastiCache Serverless (default Redis)', () => {
  it('is Valkey in the private subnets of a two-AZ VPC with one NAT gateway', () => {
    const [, cache] = onlyResource(synth.json, 'AWS::ElastiCache::ServerlessCache');
    expect(props(cache)).toMatchObject({ Engine: 'valkey', ServerlessCacheName: 'relay-ws-dev' });
    expect(asArray(props(cache).SubnetIds)).toHaveLength(2);
    synth.template.resourceCountIs('AWS::EC2::VPC', 1);
    synth.template.resourceCountIs('AWS::EC2::NatGateway', 1);
    synth.template.hasResourceProperties('AWS::EC2::FlowLog', { TrafficType: 'REJECT' });
  });

  it('accepts 6379 only from the Redis-using functions', () => {
    const [, cache] = onlyResource(synth.json, 'AWS::ElastiCache::ServerlessCache');
    const cacheGroups = asArray(props(cache).SecurityGroupIds).map(getAttTarget);
    expect(cacheGroups).toHaveLength(1);
    const [cacheGroupId] = cacheGroups;
    const cacheGroup = cacheGroupId === undefined ? undefined : synth.json.Resources[cacheGroupId];
    expect(cacheGroup?.Type).toBe('AWS::EC2::SecurityGroup');
    // No inline ingress: the only way in is the rule checked below.
    expect(props(cacheGroup ?? { Type: '' }).SecurityGroupIngress).toBeUndefined();
    const ingress = resourcesOfType(synth.json, 'AWS::EC2::SecurityGroupIngress').filter(
      ([, rule]) => getAttTarget(props(rule).GroupId) === cacheGroupId,
    );
    expect(ingress).toHaveLength(1);
    const rule = props(ingress[0]?.[1] ?? { Type: '' });
    expect(rule).toMatchObject({ IpProtocol: 'tcp', FromPort: 6379, ToPort: 6379 });
    const sourceGroup = getAttTarget(rule.SourceSecurityGroupId);
    for (const spec of allSpecs.filter((s) => s.access.redis)) {
      const [, fn] = functionNamed(synth.json, STACK, spec.name);
      const vpcConfig = props(fn).VpcConfig as { SecurityGroupIds: unknown[] };
      expect(vpcConfig.SecurityGroupIds.map(getAttTarget)).toEqual([sourceGroup]);
    }
  });

  it('requires AUTH: a user group with the default user switched off and the app user, password from Secrets Manager', () => {
    const [cacheId, cache] = onlyResource(synth.json, 'AWS::ElastiCache::ServerlessCache');
    const [groupId, group] = onlyResource(synth.json, 'AWS::ElastiCache::UserGroup');
    expect(props(cache).UserGroupId).toBe(props(group).UserGroupId);
    expect(asArray(cache.DependsOn)).toContain(groupId);
    expect(props(group)).toMatchObject({ Engine: 'valkey', UserIds: ['relay-ws-dev-default', 'relay-ws-dev-app'] });
    const users = new Map(resourcesOfType(synth.json, 'AWS::ElastiCache::User').map(([, user]) => [props(user).UserName, props(user)]));
    expect(users.get('default')).toMatchObject({ UserId: 'relay-ws-dev-default', AccessString: REDIS_DEFAULT_ACCESS, AuthenticationMode: { Type: 'no-password-required' } });
    expect(String(users.get('default')?.AccessString)).toMatch(/^off /);
    const app = users.get(REDIS_APP_USER);
    expect(app).toMatchObject({ UserId: 'relay-ws-dev-app', Engine: 'valkey', AccessString: REDIS_APP_ACCESS });
    expect(REDIS_APP_ACCESS).toMatch(/-@admin -@dangerous/);
    const [secretId] = resourcesOfType(synth.json, 'AWS::SecretsManager::Secret').find(([, r]) => JSON.stringify(props(r).GenerateSecretString).includes(REDIS_APP_USER)) ?? [''];
    // The password is a dynamic reference to the generated secret: it is never in the template.
    const passwords = (app?.AuthenticationMode as { Type: string; Passwords: unknown[] }).Passwords.map(flat);
    expect(passwords).toEqual([`{{resolve:secretsmanager:<${secretId}>:SecretString:password::}}`]);
    expect(cacheId).not.toBe('');
  });

  it('has usage limits (data stored and ECPUs per second) from the context', () => {
    const [, cache] = onlyResource(synth.json, 'AWS::ElastiCache::ServerlessCache');
    expect(props(cache).CacheUsageLimits).toEqual({ DataStorage: { Maximum: 5, Unit: 'GB' }, ECPUPerSecond: { Maximum: 50_000 } });
  });

  it('hands the functions that use Redis a TLS URL to the cache endpoint, in cluster mode', () => {
    const [cacheId] = onlyResource(synth.json, 'AWS::ElastiCache::ServerlessCache');
    // The rotation function AUTHs with the credentials of the event's secret (its own test in redis-rotation.test.ts).
    for (const spec of allSpecs.filter((s) => s.access.redis && s !== redisPasswordRotation)) {
      const [, fn] = functionNamed(synth.json, STACK, spec.name);
      const variables = (props(fn).Environment as { Variables: Record<string, unknown> }).Variables;
      expect(flat(variables.REDIS_URL)).toBe(`rediss://<${cacheId}.Endpoint.Address>:<${cacheId}.Endpoint.Port>`);
      expect(variables.REDIS_MODE).toBe('cluster');
      expect(variables.REDIS_URL_SECRET_ID).toBeUndefined();
      expect(variables.REDIS_AUTH_SECRET_ID).toEqual({ Ref: expect.stringMatching(/^RedisAuthSecret/) });
    }
  });
});

describe('secrets', () => {
  it('generates the app secret {"masterKey": 64 characters} and, apart, the JWT secret {"jwtSecret": 64 characters}', () => {
    const generated = resourcesOfType(synth.json, 'AWS::SecretsManager::Secret').map(([, secret]) => props(secret).GenerateSecretString);
    const spec = (key: string) => ({ SecretStringTemplate: '{}', GenerateStringKey: key, PasswordLength: 64, ExcludePunctuation: true });
    expect(generated).toEqual(expect.arrayContaining([spec('masterKey'), spec('jwtSecret')]));
    // The third is the Redis AUTH user's password (its own test in access.test.ts).
    // The fourth is the VAPID secret, made without a key pair (CloudFormation cannot make one; the operator fills it).
    expect(generated).toContainEqual({ SecretStringTemplate: '{}', GenerateStringKey: 'unset', PasswordLength: 16, ExcludePunctuation: true });
    expect(generated.filter((g) => !JSON.stringify(g).includes('password'))).toHaveLength(3);
    expect(generated).toHaveLength(4);
  });

  it('gives $connect the JWT secret and never the app secret; no other function gets the JWT secret', () => {
    for (const spec of allSpecs) {
      const [functionId] = functionNamed(synth.json, STACK, spec.name);
      const variables = (props(synth.json.Resources[functionId] ?? { Type: '' }).Environment as { Variables: Record<string, unknown> }).Variables;
      expect([spec.name, 'JWT_SECRET_ID' in variables]).toEqual([spec.name, spec.name === 'connect']);
      if (spec.name === 'connect') expect(variables).not.toHaveProperty('APP_SECRET_ID');
    }
  });

  it('gives the fan-out worker its stage\'s callback URL (the only endpoint it posts to)', () => {
    const [functionId] = functionNamed(synth.json, STACK, 'fanoutWorker');
    const [apiId] = onlyResource(synth.json, 'AWS::ApiGatewayV2::Api');
    const variables = (props(synth.json.Resources[functionId] ?? { Type: '' }).Environment as { Variables: Record<string, unknown> }).Variables;
    expect(flat(variables.CALLBACK_URL)).toBe(`https://<${apiId}>.execute-api.<AWS::Region>.<AWS::URLSuffix>/dev`);
  });
});

describe('outputs', () => {
  it('prints the wss:// URL, the callback URL, tables, queues, secret and stage', () => {
    const outputs = synth.json.Outputs ?? {};
    const [apiId] = onlyResource(synth.json, 'AWS::ApiGatewayV2::Api');
    // The platform applications' ARNs only when the stack makes them (infra/push.test.ts).
    const made = new Set<string>([OUTPUTS.apnsPlatformArn, OUTPUTS.fcmPlatformArn]);
    expect(Object.keys(outputs).sort()).toEqual(Object.values(OUTPUTS).filter((key) => !made.has(key)).sort());
    expect(flat(outputs[OUTPUTS.webSocketUrl]?.Value)).toBe(`wss://<${apiId}>.execute-api.<AWS::Region>.<AWS::URLSuffix>/dev`);
    expect(flat(outputs[OUTPUTS.callbackUrl]?.Value)).toBe(`https://<${apiId}>.execute-api.<AWS::Region>.<AWS::URLSuffix>/dev`);
    expect(outputs[OUTPUTS.stageName]?.Value).toBe('dev');
    const refs = [OUTPUTS.connectionsTable, OUTPUTS.membersTable, OUTPUTS.fanoutQueueUrl, OUTPUTS.deadLetterQueueUrl, OUTPUTS.appSecretArn, OUTPUTS.jwtSecretArn].map(
      (key) => {
        const target = refTarget(outputs[key]?.Value);
        return target === undefined ? undefined : synth.json.Resources[target]?.Type;
      },
    );
    expect(refs).toEqual(['AWS::DynamoDB::Table', 'AWS::DynamoDB::Table', 'AWS::SQS::Queue', 'AWS::SQS::Queue', 'AWS::SecretsManager::Secret', 'AWS::SecretsManager::Secret']);
  });
});

it('takes a few seconds to synthesize with bundling', () => {
  // Recorded for the report; a regression to minutes would make the infra tests painful.
  console.info(`synth with esbuild bundling and cdk-nag: ${Math.round(synth.millis)} ms`);
  expect(synth.millis).toBeLessThan(60_000);
});

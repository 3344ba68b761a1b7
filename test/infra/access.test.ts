import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fanoutWorker, notifier, presenceSweeper, routes, type FunctionSpec } from '../../deploy/routes.js';
import { tableShapes, type TableName } from '../../deploy/tables.js';
import { variablesOf } from '../../lambdas/config.js';
import { grantedDynamoActions } from '../../lib/access.js';
import { ENI_ACTIONS, REPOSITORY_ROOT } from '../../lib/functions.js';
import { REDIS_APP_USER } from '../../lib/redis.js';
import {
  actionsOf,
  asArray,
  flat,
  functionNamed,
  getAttTarget,
  onlyResource,
  props,
  refTarget,
  resourcesOfType,
  statementsOf,
  removeAssembly,
  synthesize,
  type PolicyStatementJson,
  type Synthesized,
} from './synth.js';

const STACK = 'RelayWs-dev';
const allSpecs = [...routes, fanoutWorker, presenceSweeper, notifier];

let synth: Synthesized;

beforeAll(() => {
  synth = synthesize({}, { bundle: false });
});

afterAll(() => removeAssembly(synth));

/** action → the resources it is allowed on (flattened), over all of a function's policy statements. */
function grantsOf(functionId: string): Map<string, Set<string>> {
  const grants = new Map<string, Set<string>>();
  for (const statement of statementsOf(synth.json, functionId)) {
    expect(statement.Effect).toBe('Allow');
    for (const action of actionsOf(statement)) {
      const resources = grants.get(action) ?? new Set<string>();
      for (const resource of asArray(statement.Resource)) resources.add(flat(resource));
      grants.set(action, resources);
    }
  }
  return grants;
}

function idOfType(type: string, predicate: (properties: Record<string, unknown>) => boolean): string {
  const found = resourcesOfType(synth.json, type).find(([, resource]) => predicate(props(resource)));
  if (found === undefined) throw new Error(`no ${type}`);
  return found[0];
}

/** A table's key schema as "partition/sort", to find the CloudFormation table of each shape. */
function keyOf(shape: (typeof tableShapes)[TableName]): string {
  return `${shape.partitionKey.name}/${shape.sortKey?.name ?? ''}`;
}

function tableKeyOf(properties: Record<string, unknown>): string {
  const schema = properties.KeySchema as { AttributeName: string; KeyType: string }[];
  const hash = schema.find((k) => k.KeyType === 'HASH')?.AttributeName ?? '';
  const range = schema.find((k) => k.KeyType === 'RANGE')?.AttributeName ?? '';
  return `${hash}/${range}`;
}

/** What the route table says each function may do — the whole of it, so anything extra fails. */
function expectedGrants(spec: FunctionSpec, functionId: string): Map<string, Set<string>> {
  const tableIds = new Map(
    (Object.keys(tableShapes) as TableName[]).map((name) => [name, idOfType('AWS::DynamoDB::Table', (p) => tableKeyOf(p) === keyOf(tableShapes[name]))] as const),
  );
  const generated = (key: string) => (p: Record<string, unknown>) => (p.GenerateSecretString as { GenerateStringKey?: string } | undefined)?.GenerateStringKey === key;
  const queueOf = (prefix: string) => resourcesOfType(synth.json, 'AWS::SQS::Queue').find(([id, q]) => id.startsWith(prefix) && props(q).RedrivePolicy !== undefined)?.[0] ?? '';
  const queue = queueOf('Fanout');
  const notifyQueue = queueOf('Notify');
  const vapidSecret = idOfType('AWS::SecretsManager::Secret', generated('unset'));
  const appSecret = idOfType('AWS::SecretsManager::Secret', generated('masterKey'));
  const jwtSecret = idOfType('AWS::SecretsManager::Secret', generated('jwtSecret'));
  const redisSecret = idOfType('AWS::SecretsManager::Secret', (p) => JSON.stringify(p.GenerateSecretString).includes(REDIS_APP_USER));
  const [, cache] = onlyResource(synth.json, 'AWS::ElastiCache::ServerlessCache');
  const subnetArns = asArray(props(cache).SubnetIds).map((subnet) => `arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:subnet/${flat(subnet)}`);
  const [functionGroup] = resourcesOfType(synth.json, 'AWS::EC2::SecurityGroup').find(([, g]) => String(props(g).GroupDescription).startsWith('Functions that use Redis')) ?? [''];
  const functionGroupArn = `arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:security-group/<${functionGroup}.GroupId>`;
  const [api] = onlyResource(synth.json, 'AWS::ApiGatewayV2::Api');
  const logGroup = refTarget((props(synth.json.Resources[functionId] ?? { Type: '' }).LoggingConfig as { LogGroup: unknown }).LogGroup);

  const expected = new Map<string, Set<string>>();
  const allow = (actions: string[], resources: string[]) => {
    for (const action of actions) expected.set(action, new Set([...(expected.get(action) ?? []), ...resources]));
  };
  allow(['logs:CreateLogStream', 'logs:PutLogEvents'], [`<${logGroup}.Arn>`]);
  // Each secret only where the function's environment names it: the JWT secret for $connect alone, the app
  // secret (message keys) for the functions that seal or open messages.
  if (variablesOf(spec.name).includes('APP_SECRET_ID')) {
    allow(['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'], [`<${appSecret}>`]);
  }
  if (variablesOf(spec.name).includes('JWT_SECRET_ID')) {
    allow(['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'], [`<${jwtSecret}>`]);
  }
  // The VAPID key pair: the notifier only.
  if (variablesOf(spec.name).includes('PUSH_VAPID_SECRET_ID')) {
    allow(['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'], [`<${vapidSecret}>`]);
  }
  // DynamoDB: exactly the route table's actions, per table and per queried index (never `index/*`).
  for (const grant of grantedDynamoActions(spec)) {
    const table = tableIds.get(grant.table);
    if (table === undefined) throw new Error(`no table ${grant.table}`);
    allow(grant.actions.map((action) => `dynamodb:${action}`), [grant.index === undefined ? `<${table}.Arn>` : `<${table}.Arn>/index/${grant.index}`]);
  }
  // Redis functions: the app user's credentials (ElastiCache), and their network interfaces.
  if (spec.access.redis) {
    allow(['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'], [`<${redisSecret}>`]);
    const eni = 'arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*';
    allow([...ENI_ACTIONS.create], [eni, ...subnetArns, functionGroupArn]);
    allow([...ENI_ACTIONS.manage], [eni]);
    allow([...ENI_ACTIONS.describe], ['*']);
  }
  if (spec.access.enqueue) allow(['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'], [`<${queue}.Arn>`]);
  if (spec.access.posts) {
    allow(['execute-api:ManageConnections'], [`arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<${api}>/dev/POST/@connections/*`]);
  }
  if (spec.access.notifies === true) allow(['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'], [`<${notifyQueue}.Arn>`]);
  if (spec === notifier) {
    allow(
      ['sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueUrl', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'],
      [`<${notifyQueue}.Arn>`],
    );
  }
  if (spec === fanoutWorker) {
    allow(
      ['sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueUrl', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'],
      [`<${queue}.Arn>`],
    );
  }
  return expected;
}

const sorted = (grants: Map<string, Set<string>>) =>
  Object.fromEntries([...grants.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([action, resources]) => [action, [...resources].sort()]));

describe('least privilege, from the route table', () => {
  it.each(allSpecs.map((spec) => [spec.name, spec] as const))('%s gets exactly what its access entry asks for', (_name, spec) => {
    const [functionId] = functionNamed(synth.json, STACK, spec.name);
    expect(sorted(grantsOf(functionId))).toEqual(sorted(expectedGrants(spec, functionId)));
  });

  it('grants ManageConnections only to the posting functions, and only on POST @connections of this stage', () => {
    const posting: string[] = [];
    for (const spec of allSpecs) {
      const [functionId] = functionNamed(synth.json, STACK, spec.name);
      const resources = grantsOf(functionId).get('execute-api:ManageConnections');
      if (resources === undefined) continue;
      posting.push(spec.name);
      expect([...resources]).toHaveLength(1);
      expect([...resources][0]).toMatch(/^arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<WebSocketApi[A-Z0-9]+>\/dev\/POST\/@connections\/\*$/);
    }
    expect(posting.sort()).toEqual(allSpecs.filter((s) => s.access.posts).map((s) => s.name).sort());
    expect(posting.length).toBeGreaterThan(0);
  });

  it('puts only the EC2 Describe calls (no resource-level permissions) on Resource "*", and no logs action beyond a function\'s own group', () => {
    for (const [id, policy] of resourcesOfType(synth.json, 'AWS::IAM::Policy')) {
      const document = props(policy).PolicyDocument as { Statement: PolicyStatementJson[] };
      for (const statement of document.Statement) {
        if (asArray(statement.Resource).map(flat).includes('*')) expect(actionsOf(statement).sort(), id).toEqual([...ENI_ACTIONS.describe].sort());
        for (const action of actionsOf(statement).filter((a) => a.startsWith('logs:'))) {
          expect(action, id).not.toBe('logs:*');
          expect(asArray(statement.Resource).map(flat).every((r) => /^<Logs[A-Za-z0-9]*\.Arn>$|^<[A-Za-z0-9]+Logs[A-Za-z0-9]*\.Arn>$/.test(r)), `${id} ${action}`).toBe(true);
        }
      }
    }
  });

  it('uses no AWS managed policy (the VPC functions get an inline network-interface policy instead)', () => {
    for (const spec of allSpecs) {
      const [, fn] = functionNamed(synth.json, STACK, spec.name);
      const roleId = getAttTarget(props(fn).Role);
      const role = roleId === undefined ? undefined : synth.json.Resources[roleId];
      expect(asArray(role === undefined ? undefined : props(role).ManagedPolicyArns), spec.name).toEqual([]);
      const eni = statementsOf(synth.json, functionNamed(synth.json, STACK, spec.name)[0]).filter((s) => actionsOf(s).includes('ec2:CreateNetworkInterface'));
      expect(eni, spec.name).toHaveLength(spec.access.redis ? 1 : 0);
    }
  });

  it('grants the app secret only to the functions whose handler reads it ($default does not)', () => {
    const readers = allSpecs.filter((spec) => readFileSync(join(REPOSITORY_ROOT, spec.entry), 'utf8').includes('readAppKeys(')).map((s) => s.name);
    const [secretId] = resourcesOfType(synth.json, 'AWS::SecretsManager::Secret').find(([, r]) => JSON.stringify(props(r).GenerateSecretString).includes('masterKey')) ?? [''];
    const granted = allSpecs
      .filter((spec) => statementsOf(synth.json, functionNamed(synth.json, STACK, spec.name)[0]).some((s) => actionsOf(s).includes('secretsmanager:GetSecretValue') && asArray(s.Resource).map(flat).includes(`<${secretId}>`)))
      .map((s) => s.name);
    expect(granted.sort()).toEqual(readers.sort());
    expect(granted).not.toContain('default');
    expect(granted.length).toBeGreaterThan(0);
  });
});

describe('fan-out queue policy', () => {
  const denies = (queueId: string) =>
    resourcesOfType(synth.json, 'AWS::SQS::QueuePolicy')
      .filter(([, p]) => asArray(props(p).Queues).some((q) => refTarget(q) === queueId))
      .flatMap(([, p]) => (props(p).PolicyDocument as { Statement: (PolicyStatementJson & { Principal?: unknown; Condition?: Record<string, Record<string, unknown>> })[] }).Statement)
      .filter((s) => s.Effect === 'Deny' && actionsOf(s).includes('sqs:SendMessage'));

  it('denies sqs:SendMessage to every principal but the enqueueing functions\' roles (AWS services aside)', () => {
    const [queueId] = resourcesOfType(synth.json, 'AWS::SQS::Queue').find(([, q]) => props(q).RedrivePolicy !== undefined) ?? [''];
    const [deny, ...others] = denies(queueId);
    expect(others).toEqual([]);
    expect(deny?.Principal).toEqual({ AWS: '*' });
    const allowed = asArray(deny?.Condition?.ArnNotEquals?.['aws:PrincipalArn']).map((arn) => getAttTarget(arn)).sort();
    const senders = allSpecs
      .filter((spec) => spec.access.enqueue)
      .map((spec) => getAttTarget(props(functionNamed(synth.json, STACK, spec.name)[1]).Role))
      .sort();
    expect(allowed).toEqual(senders);
    expect(senders.length).toBeGreaterThan(0);
    expect(deny?.Condition?.BoolIfExists).toEqual({ 'aws:PrincipalIsAWSService': 'false' });
  });

  it('denies sqs:SendMessage on the dead-letter queue to every principal (SQS itself moves jobs there)', () => {
    const [dlqId] = resourcesOfType(synth.json, 'AWS::SQS::Queue').find(([, q]) => props(q).RedrivePolicy === undefined) ?? [''];
    const [deny, ...others] = denies(dlqId);
    expect(others).toEqual([]);
    expect(deny?.Principal).toEqual({ AWS: '*' });
    expect(deny?.Condition).toEqual({ BoolIfExists: { 'aws:PrincipalIsAWSService': 'false' } });
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fanoutWorker, presenceSweeper, routes, type FunctionSpec } from '../../deploy/routes.js';
import { tableShapes, type TableName, type TableShape } from '../../deploy/tables.js';
import { variablesOf } from '../../lambdas/config.js';
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
  type Synthesized,
} from './synth.js';

const STACK = 'RelayWs-dev';
const allSpecs = [...routes, fanoutWorker, presenceSweeper];

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

/** The indexes a read grant names, per table (from the shapes, so a new index shows up here too). */
const INDEXES: Partial<Record<TableName, string[]>> = Object.fromEntries(
  (Object.keys(tableShapes) as TableName[]).map((name) => {
    const shape: TableShape = tableShapes[name];
    return [name, [...shape.indexes.map((i) => i.name), ...(shape.localIndexes ?? []).map((i) => i.name)]];
  }),
);

/** A table's key schema as "partition/sort", to find the CloudFormation table of each shape. */
function keyOf(shape: TableShape): string {
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
  const queue = idOfType('AWS::SQS::Queue', (p) => p.RedrivePolicy !== undefined);
  const generated = (key: string) => (p: Record<string, unknown>) => (p.GenerateSecretString as { GenerateStringKey?: string } | undefined)?.GenerateStringKey === key;
  const appSecret = idOfType('AWS::SecretsManager::Secret', generated('masterKey'));
  const jwtSecret = idOfType('AWS::SecretsManager::Secret', generated('jwtSecret'));
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
  const tableGrant = (table: string, level: string, indexes: string[]) => {
    if (level === 'read' || level === 'readwrite') {
      allow(['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query'], [`<${table}.Arn>`, ...indexes.map((index) => `<${table}.Arn>/index/${index}`)]);
    }
    if (level === 'write' || level === 'readwrite') allow(['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'], [`<${table}.Arn>`]);
  };
  for (const [name, level] of Object.entries(spec.access.tables)) {
    const table = tableIds.get(name as TableName);
    if (table === undefined) throw new Error(`no table ${name}`);
    tableGrant(table, level, INDEXES[name as TableName] ?? []);
  }
  if (spec.access.enqueue) allow(['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'], [`<${queue}.Arn>`]);
  if (spec.access.posts) {
    allow(['execute-api:ManageConnections'], [`arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<${api}>/dev/POST/@connections/*`]);
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

  it('has no statement on Resource "*" in any policy of the stack', () => {
    for (const [id, policy] of resourcesOfType(synth.json, 'AWS::IAM::Policy')) {
      const document = props(policy).PolicyDocument as { Statement: { Resource: unknown }[] };
      for (const statement of document.Statement) {
        expect(asArray(statement.Resource).map(flat), id).not.toContain('*');
      }
    }
  });

  it('uses no AWS managed policy except the VPC one for in-VPC functions', () => {
    for (const spec of allSpecs) {
      const [, fn] = functionNamed(synth.json, STACK, spec.name);
      const roleId = getAttTarget(props(fn).Role);
      const role = roleId === undefined ? undefined : synth.json.Resources[roleId];
      const managed = asArray(role === undefined ? undefined : props(role).ManagedPolicyArns).map(flat);
      expect(managed, spec.name).toEqual(
        spec.access.redis ? ['arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole'] : [],
      );
    }
  });
});

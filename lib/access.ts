import { PolicyStatement, type IRole } from 'aws-cdk-lib/aws-iam';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { tableShapes, type TableName, type TableShape } from '../deploy/tables.js';
import type { FunctionSpec, TableAccess } from '../deploy/routes.js';
import { variablesOf } from '../lambdas/config.js';
import { acknowledge, nagNotation } from './nag.js';
import type { RedisBackend } from './redis.js';
import type { Tables } from './tables.js';

export interface AccessTargets {
  tables: Tables;
  fanoutQueue: IQueue;
  appSecret: ISecret;
  jwtSecret: ISecret;
  redis: RedisBackend;
  /** `arn:…:execute-api:{region}:{account}:{apiId}/{stage}/POST/@connections/*` — the only calls the code makes. */
  postToConnectionsArn: string;
}

export const TABLE_READ_ACTIONS = ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query'] as const;
export const TABLE_WRITE_ACTIONS = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'] as const;
export const MANAGE_CONNECTIONS = 'execute-api:ManageConnections';

/** Grants one function exactly what its route-table entry says it needs. */
export function grantAccess(role: IRole, spec: FunctionSpec, targets: AccessTargets): void {
  const { access } = spec;
  // Secrets and Redis only where the function's own environment names them (lambdas/config.ts).
  const variables = new Set(variablesOf(spec.name));
  if (variables.has('APP_SECRET_ID')) targets.appSecret.grantRead(role);
  if (variables.has('JWT_SECRET_ID')) targets.jwtSecret.grantRead(role);
  if (access.redis) targets.redis.grantConnect(role);
  for (const [name, level] of Object.entries(access.tables) as [TableName, TableAccess][]) {
    grantTable(role, targets.tables.byName[name], tableShapes[name], level);
  }
  if (access.enqueue) targets.fanoutQueue.grantSendMessages(role);
  if (access.posts) {
    role.addToPrincipalPolicy(
      new PolicyStatement({ actions: [MANAGE_CONNECTIONS], resources: [targets.postToConnectionsArn] }),
    );
    acknowledge(
      role,
      `AwsSolutions-IAM5[Resource::${nagNotation(role, targets.postToConnectionsArn)}]`,
      'Connection ids exist only at run time; the grant is limited to POST on @connections of this API and stage.',
    );
  }
}

function grantTable(
  role: IRole,
  table: ITable,
  shape: TableShape,
  level: TableAccess,
): void {
  if (level === 'read' || level === 'readwrite') {
    role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: [...TABLE_READ_ACTIONS],
        // Named indexes, not `index/*`: a new index does not silently widen the grant.
        resources: [table.tableArn, ...indexNames(shape).map((index) => `${table.tableArn}/index/${index}`)],
      }),
    );
  }
  if (level === 'write' || level === 'readwrite') {
    role.addToPrincipalPolicy(new PolicyStatement({ actions: [...TABLE_WRITE_ACTIONS], resources: [table.tableArn] }));
  }
}

function indexNames(shape: TableShape): string[] {
  return [...shape.indexes.map((index) => index.name), ...(shape.localIndexes ?? []).map((index) => index.name)];
}

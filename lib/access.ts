import { PolicyStatement, type IRole } from 'aws-cdk-lib/aws-iam';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { tableShapes, type TableName, type TableShape } from '../deploy/tables.js';
import type { DynamoAction, FunctionSpec } from '../deploy/routes.js';
import { variablesOf } from '../lambdas/config.js';
import { acknowledge, nagNotation } from './nag.js';
import type { RedisBackend } from './redis.js';
import type { Tables } from './tables.js';

export interface AccessTargets {
  tables: Tables;
  fanoutQueue: IQueue;
  notifyQueue: IQueue;
  vapidSecret: ISecret;
  /** The SNS platform applications the notifier pushes through (none: no SNS grant). */
  pushPlatformArns: readonly string[];
  appSecret: ISecret;
  jwtSecret: ISecret;
  redis: RedisBackend;
  /** `arn:…:execute-api:{region}:{account}:{apiId}/{stage}/POST/@connections/*` — the only calls the code makes. */
  postToConnectionsArn: string;
}

export const MANAGE_CONNECTIONS = 'execute-api:ManageConnections';

/** Grants one function exactly what its route-table entry says it needs. */
export function grantAccess(role: IRole, spec: FunctionSpec, targets: AccessTargets): void {
  const { access } = spec;
  // Secrets and Redis only where the function's own environment names them (lambdas/config.ts).
  const variables = new Set(variablesOf(spec.name));
  if (variables.has('APP_SECRET_ID')) targets.appSecret.grantRead(role);
  if (variables.has('JWT_SECRET_ID')) targets.jwtSecret.grantRead(role);
  if (access.redis) targets.redis.grantConnect(role);
  for (const grant of grantedDynamoActions(spec)) {
    const tableArn = targets.tables.byName[grant.table].tableArn;
    role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: grant.actions.map((action) => `dynamodb:${action}`),
        resources: [grant.index === undefined ? tableArn : `${tableArn}/index/${grant.index}`],
      }),
    );
  }
  if (access.enqueue) targets.fanoutQueue.grantSendMessages(role);
  if (access.notifies === true) targets.notifyQueue.grantSendMessages(role);
  if (variables.has('PUSH_VAPID_SECRET_ID')) targets.vapidSecret.grantRead(role);
  if (access.mobilePush === true && targets.pushPlatformArns.length > 0) grantMobilePush(role, targets.pushPlatformArns);
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

/**
 * SNS mobile push: endpoints made in the stage's platform applications only, and Publish / DeleteEndpoint on their
 * endpoints only (`…:endpoint/<platform>/<app>/<id>`): never a topic, never another application.
 */
function grantMobilePush(role: IRole, platformArns: readonly string[]): void {
  role.addToPrincipalPolicy(new PolicyStatement({ actions: ['sns:CreatePlatformEndpoint'], resources: [...platformArns] }));
  const endpoints = platformArns.map((arn) => `${arn.replace(':app/', ':endpoint/')}/*`);
  role.addToPrincipalPolicy(new PolicyStatement({ actions: ['sns:Publish', 'sns:DeleteEndpoint'], resources: endpoints }));
  for (const endpoint of endpoints) {
    acknowledge(
      role,
      `AwsSolutions-IAM5[Resource::${nagNotation(role, endpoint)}]`,
      'SNS names a platform endpoint when it makes one (one per device token); the grant is limited to the endpoints of this stage\'s platform application.',
    );
  }
}

/** One statement's worth of a function's DynamoDB grant: actions on a table, or Query on one of its indexes. */
export interface DynamoGrant {
  table: TableName;
  /** Named, never `index/*`: a new index does not silently widen the grant. */
  index?: string;
  actions: DynamoAction[];
}

/** The route-table entry's DynamoDB grants, one per table and per queried index (unknown index names throw). */
export function grantedDynamoActions(spec: FunctionSpec): DynamoGrant[] {
  const grants: DynamoGrant[] = [];
  for (const [table, entries] of Object.entries(spec.access.tables) as [TableName, readonly string[]][]) {
    const onTable: DynamoAction[] = [];
    for (const entry of entries) {
      const [action, index] = entry.split(':') as [DynamoAction, string | undefined];
      if (index === undefined) {
        onTable.push(action);
        continue;
      }
      if (!indexNames(tableShapes[table]).includes(index)) throw new Error(`${spec.name}: ${table} has no index ${index}`);
      grants.push({ table, index, actions: [action] });
    }
    if (onTable.length > 0) grants.unshift({ table, actions: onTable });
  }
  return grants;
}

function indexNames(shape: TableShape): string[] {
  return [...shape.indexes.map((index) => index.name), ...(shape.localIndexes ?? []).map((index) => index.name)];
}

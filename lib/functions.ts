import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Stack, type Duration, type RemovalPolicy } from 'aws-cdk-lib';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, type BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { ConfigVariable } from '../lambdas/config.js';
import type { FunctionSpec } from '../deploy/routes.js';
import { acknowledge, nagNotation } from './nag.js';
import type { RedisPlacement } from './redis.js';

/** Values of the variables the functions read; the type keeps a misspelt name out of the stack. */
export type FunctionEnvironment = Partial<Record<ConfigVariable, string>>;

export const REPOSITORY_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const RUNTIME = Runtime.NODEJS_22_X;
export const ARCHITECTURE = Architecture.ARM_64;

/**
 * esbuild's ESM output has no `require`, `__filename` or `__dirname`; CommonJS dependencies bundled into it
 * still use them (`require` for Node built-ins, ioredis `__dirname` for error stacks), so the bundle defines them.
 */
export const ESM_REQUIRE_BANNER = [
  "import { createRequire as __relayCreateRequire } from 'node:module';",
  "import { fileURLToPath as __relayFileURLToPath } from 'node:url';",
  "import { dirname as __relayDirname } from 'node:path';",
  'const require = __relayCreateRequire(import.meta.url);',
  'const __filename = __relayFileURLToPath(import.meta.url);',
  'const __dirname = __relayDirname(__filename);',
].join(' ');

/**
 * The esbuild settings every function is bundled with (target: from RUNTIME). Exported so `npm run bench`
 * bundles exactly as the stack does.
 */
export const BUNDLING = {
  format: OutputFormat.ESM,
  mainFields: ['module', 'main'],
  banner: ESM_REQUIRE_BANNER,
  minify: true,
  sourceMap: true,
  sourcesContent: false,
  // The SDK is bundled: the version we test with is the version that runs.
  externalModules: [] as string[],
  forceDockerBundling: false,
} satisfies BundlingOptions;

export interface RelayFunctionProps {
  /** Stack name prefix: functions are named `{prefix}-{spec.name}`. */
  namePrefix: string;
  spec: FunctionSpec;
  environment: FunctionEnvironment;
  timeout: Duration;
  memorySize: number;
  logRetention: RetentionDays;
  logRemovalPolicy: RemovalPolicy;
  tracing: boolean;
  /** Set for functions that reach an in-VPC Redis. */
  placement: RedisPlacement | undefined;
}

/**
 * One route's (or the worker's) function: its own log group, and its own role that may write only to that
 * log group — grants for tables, queue and API are added by access (see access.ts).
 */
export class RelayFunction extends Construct {
  readonly spec: FunctionSpec;
  readonly function: NodejsFunction;
  readonly role: Role;
  readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: RelayFunctionProps) {
    super(scope, id);
    this.spec = props.spec;
    const functionName = `${props.namePrefix}-${props.spec.name}`;
    // No fixed name: a log group retained by a destroyed prod stack must not block the next deploy.
    this.logGroup = new LogGroup(this, 'Logs', {
      retention: props.logRetention,
      removalPolicy: props.logRemovalPolicy,
    });
    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `${functionName}: least-privilege execution role`,
    });
    this.logGroup.grantWrite(this.role);
    if (props.placement !== undefined) grantNetworkInterfaces(this.role, props.placement);

    this.function = new NodejsFunction(this, 'Function', {
      functionName,
      entry: join(REPOSITORY_ROOT, props.spec.entry),
      handler: 'handler',
      projectRoot: REPOSITORY_ROOT,
      depsLockFilePath: join(REPOSITORY_ROOT, 'package-lock.json'),
      runtime: RUNTIME,
      architecture: ARCHITECTURE,
      memorySize: props.memorySize,
      timeout: props.timeout,
      role: this.role,
      logGroup: this.logGroup,
      tracing: props.tracing ? Tracing.ACTIVE : Tracing.DISABLED,
      environment: { ...props.environment, NODE_OPTIONS: '--enable-source-maps' },
      ...(props.placement === undefined
        ? {}
        : {
            vpc: props.placement.vpc,
            vpcSubnets: props.placement.vpcSubnets,
            securityGroups: props.placement.securityGroups,
          }),
      bundling: BUNDLING,
    });
    acknowledge(
      this.function,
      'AwsSolutions-L1',
      'nodejs22.x is the runtime this code is built (esbuild target node22) and tested for; moving to a newer one is a deliberate, tested upgrade.',
    );
    // The only statements on Resource "*": actions that support no resource-level permissions.
    const unscoped = [
      ...(props.placement === undefined ? [] : ['ec2:DescribeNetworkInterfaces and ec2:DescribeSubnets (Lambda calls them for a VPC function)']),
      ...(props.tracing ? ['X-Ray PutTraceSegments/PutTelemetryRecords (added by active tracing)'] : []),
    ];
    if (unscoped.length > 0) {
      acknowledge(this.role, 'AwsSolutions-IAM5[Resource::*]', `${unscoped.join('; ')}: these actions support no resource-level permissions.`);
    }
  }
}

/** What Lambda does with a VPC function's role: create, describe and delete its network interfaces (and their IPs). */
export const ENI_ACTIONS = {
  create: ['ec2:CreateNetworkInterface'],
  manage: ['ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
  describe: ['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets'],
} as const;

/**
 * The EC2 part of AWSLambdaVPCAccessExecutionRole, inline and scoped: that managed policy also grants `logs:*`
 * actions on every log group, which would undo "its own log group only". Interfaces are created only in the
 * function's subnets with its security groups; the Describe calls support no resource-level permissions.
 */
function grantNetworkInterfaces(role: Role, placement: RedisPlacement): void {
  const stack = Stack.of(role);
  const arn = (resource: string, resourceName: string) => stack.formatArn({ service: 'ec2', resource, resourceName });
  const interfaces = arn('network-interface', '*');
  const subnets = placement.vpc.selectSubnets(placement.vpcSubnets).subnetIds.map((id) => arn('subnet', id));
  const groups = placement.securityGroups.map((group) => arn('security-group', group.securityGroupId));
  role.addToPrincipalPolicy(new PolicyStatement({ actions: [...ENI_ACTIONS.create], resources: [interfaces, ...subnets, ...groups] }));
  role.addToPrincipalPolicy(new PolicyStatement({ actions: [...ENI_ACTIONS.manage], resources: [interfaces] }));
  role.addToPrincipalPolicy(new PolicyStatement({ actions: [...ENI_ACTIONS.describe], resources: ['*'] }));
  acknowledge(
    role,
    `AwsSolutions-IAM5[Resource::${nagNotation(role, interfaces)}]`,
    'Lambda names its network interfaces at run time; the grant is limited to interfaces of this account and region (creation also to the function subnets and security group).',
  );
}

import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { ManagedPolicy, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, type BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { ConfigVariable } from '../lambdas/config.js';
import type { FunctionSpec } from '../deploy/routes.js';
import { acknowledge } from './nag.js';
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
    if (props.placement !== undefined) {
      this.role.addManagedPolicy(ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaVPCAccessExecutionRole'));
      acknowledge(
        this.role,
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
        'The AWS-maintained minimum for a function in a VPC (ENI create/describe/delete), whose EC2 actions cannot be scoped to resources.',
      );
    }

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
    if (props.tracing) {
      acknowledge(
        this.role,
        'AwsSolutions-IAM5[Resource::*]',
        'X-Ray PutTraceSegments/PutTelemetryRecords (added by active tracing) do not support resource-level permissions.',
      );
    }
  }
}

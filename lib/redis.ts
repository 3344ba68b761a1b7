import { RemovalPolicy, Stack, type Duration } from 'aws-cdk-lib';
import {
  CfnNatGateway,
  FlowLogDestination,
  FlowLogTrafficType,
  GatewayVpcEndpointAwsService,
  Peer,
  Port,
  SecurityGroup,
  SubnetType,
  Vpc,
  type ISecurityGroup,
  type IVpc,
  type SubnetSelection,
} from 'aws-cdk-lib/aws-ec2';
import { CfnServerlessCache, CfnUser, CfnUserGroup } from 'aws-cdk-lib/aws-elasticache';
import { PolicyStatement, ServicePrincipal, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { CfnRotationSchedule, Secret, type ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { FunctionSpec } from '../deploy/routes.js';
import type { ConfigOf } from '../lambdas/config.js';
import type { FunctionEnvironment, RelayFunction } from './functions.js';

/** Where a Redis-using function runs so it can reach Redis. */
export interface RedisPlacement {
  vpc: IVpc;
  vpcSubnets: SubnetSelection;
  securityGroups: ISecurityGroup[];
}

/** What the functions need from either kind of Redis. */
export interface RedisBackend {
  readonly mode: 'serverless' | 'external';
  /** REDIS_URL (with REDIS_AUTH_SECRET_ID) or REDIS_URL_SECRET_ID, and REDIS_MODE. */
  readonly environment: Readonly<Partial<Record<'REDIS_URL' | 'REDIS_URL_SECRET_ID' | 'REDIS_AUTH_SECRET_ID' | 'REDIS_MODE', string>>>;
  /** Only for functions with `access.redis`; undefined when Redis is reachable from anywhere. */
  readonly placement: RedisPlacement | undefined;
  /** Lets a function that builds the context read whatever it needs to connect. */
  grantConnect(grantee: IGrantable): void;
}

const REDIS_PORT = 6379;
const HTTPS_PORT = 443;

export interface ServerlessRedisProps {
  stage: string;
  /** 1: one NAT gateway shared by both AZs; 2: one per AZ, so an AZ outage cuts off only that AZ. */
  natGateways: 1 | 2;
  logRetention: RetentionDays;
  removalPolicy: RemovalPolicy;
  /** Usage limits: the cache refuses writes above this much data, and throttles above this many ECPUs per second. */
  maxDataStorageGb: number;
  maxEcpuPerSecond: number;
}

/** The user the functions AUTH as. */
export const REDIS_APP_USER = 'relay-app';
/**
 * What the app user may run: every key (the cache is this stage's alone) and every command but the admin and
 * dangerous ones (FLUSHALL, KEYS, CONFIG, DEBUG…); INFO and CLUSTER SLOTS back in for the client's own checks.
 * test/integration/redis-acl.test.ts runs the Redis adapters as a user with exactly this access string.
 */
export const REDIS_APP_ACCESS = 'on ~* &* +@all -@admin -@dangerous +info +cluster|slots +cluster|shards';
/**
 * The function Secrets Manager calls to rotate the app user's password (only with `redis=serverless`). In the VPC:
 * its testSecret step AUTHs to the cache with the new password (and the old one) before making it current.
 */
export const redisPasswordRotation: FunctionSpec = {
  name: 'redisPasswordRotation',
  entry: 'lambdas/handlers/redis-password-rotation.ts',
  access: { tables: {}, enqueue: false, posts: false, redis: true },
};

/** What the rotation function may do to the secret (the four steps; no GetRandomPassword: node:crypto makes it). */
export const ROTATION_SECRET_ACTIONS = [
  'secretsmanager:DescribeSecret',
  'secretsmanager:GetSecretValue',
  'secretsmanager:PutSecretValue',
  'secretsmanager:UpdateSecretVersionStage',
] as const;
/** What it may do to the app user: set its passwords and watch it become active again. */
export const ROTATION_USER_ACTIONS = ['elasticache:ModifyUser', 'elasticache:DescribeUsers'] as const;

/** The user group must hold a user named `default`: it is switched off, so a connection without AUTH can do nothing. */
export const REDIS_DEFAULT_ACCESS = 'off -@all';

/**
 * ElastiCache Serverless (Valkey) in a new two-AZ VPC. Functions in the private subnets leave through one
 * NAT gateway (or one per AZ, `natGateways: 2`). They must reach the public Management API of this WebSocket API (an execute-api interface
 * endpoint with private DNS would cut the VPC off from public APIs), so NAT is needed anyway, and interface
 * endpoints for SQS and Secrets Manager would only add about $15 a month each. DynamoDB gets a free gateway
 * endpoint, which also keeps its traffic off the NAT gateway's per-GB charge.
 */
export class ServerlessRedis extends Construct implements RedisBackend {
  readonly mode = 'serverless';
  readonly vpc: Vpc;
  readonly cache: CfnServerlessCache;
  /** `{"username", "password"}` of the app user. */
  readonly authSecret: Secret;
  readonly userGroup: CfnUserGroup;
  /** The user the functions AUTH as, whose password the rotation function sets. */
  readonly appUser: CfnUser;
  readonly functionSecurityGroup: SecurityGroup;
  readonly cacheSecurityGroup: SecurityGroup;
  readonly environment: RedisBackend['environment'];
  readonly placement: RedisPlacement;
  /** The VPC's NAT gateways (their port-allocation errors are alarmed on). */
  readonly natGatewayIds: readonly string[];

  constructor(scope: Construct, id: string, props: ServerlessRedisProps) {
    super(scope, id);
    this.vpc = new Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: props.natGateways,
      subnetConfiguration: [
        { name: 'public', subnetType: SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'private', subnetType: SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 },
      ],
      // Nothing is placed in the default security group; restricting it would add a custom-resource Lambda.
      restrictDefaultSecurityGroup: false,
    });
    this.natGatewayIds = this.vpc.node
      .findAll()
      .filter((child): child is CfnNatGateway => child instanceof CfnNatGateway)
      .map((gateway) => gateway.attrNatGatewayId);
    this.vpc.addGatewayEndpoint('DynamoDb', { service: GatewayVpcEndpointAwsService.DYNAMODB });
    // Rejected traffic only: enough to debug a security-group mistake, at a fraction of full flow-log volume.
    const flowLogs = new LogGroup(this, 'FlowLogs', { retention: props.logRetention, removalPolicy: RemovalPolicy.DESTROY });
    this.vpc.addFlowLog('FlowLog', {
      destination: FlowLogDestination.toCloudWatchLogs(flowLogs),
      trafficType: FlowLogTrafficType.REJECT,
    });

    this.functionSecurityGroup = new SecurityGroup(this, 'FunctionSecurityGroup', {
      vpc: this.vpc,
      description: 'Functions that use Redis: HTTPS to AWS APIs and the JWKS URL, Redis to the cache',
      allowAllOutbound: false,
    });
    this.functionSecurityGroup.addEgressRule(Peer.anyIpv4(), Port.tcp(HTTPS_PORT), 'AWS APIs through the NAT gateway');
    this.cacheSecurityGroup = new SecurityGroup(this, 'CacheSecurityGroup', {
      vpc: this.vpc,
      description: 'ElastiCache Serverless: Redis protocol from the Redis-using functions only',
      allowAllOutbound: false,
    });
    this.functionSecurityGroup.connections.allowTo(this.cacheSecurityGroup, Port.tcp(REDIS_PORT), 'Redis (TLS)');

    const privateSubnets = this.vpc.selectSubnets({ subnetType: SubnetType.PRIVATE_WITH_EGRESS });
    const retained = props.removalPolicy === RemovalPolicy.RETAIN;
    const name = `relay-ws-${props.stage}`;
    // AUTH: the functions connect as the app user with a password Secrets Manager generated; nobody else can.
    this.authSecret = new Secret(this, 'AuthSecret', {
      description: `relay-ws ${props.stage}: the ElastiCache user the functions AUTH as`,
      generateSecretString: {
        secretStringTemplate: JSON.stringify({ username: REDIS_APP_USER }),
        generateStringKey: 'password',
        // AUTH passwords are 16-128 printable characters; without punctuation they also need no escaping in a URL.
        passwordLength: 64,
        excludePunctuation: true,
      },
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // After a rotation the user holds passwords the template does not know: CloudFormation sets the secret's
    // current one again only if this definition changes (then the previous one is dropped; see docs/deploy.md).
    const appUser = new CfnUser(this, 'AppUser', {
      userId: `${name}-app`,
      userName: REDIS_APP_USER,
      engine: 'valkey',
      accessString: REDIS_APP_ACCESS,
      authenticationMode: { Type: 'password', Passwords: [this.authSecret.secretValueFromJson('password').unsafeUnwrap()] },
    });
    const defaultUser = new CfnUser(this, 'DefaultUser', {
      userId: `${name}-default`,
      userName: 'default',
      engine: 'valkey',
      accessString: REDIS_DEFAULT_ACCESS,
      authenticationMode: { Type: 'no-password-required' },
    });
    this.userGroup = new CfnUserGroup(this, 'UserGroup', {
      userGroupId: name,
      engine: 'valkey',
      userIds: [defaultUser.userId, appUser.userId],
    });
    this.appUser = appUser;
    this.userGroup.addResourceDependency(appUser);
    this.userGroup.addResourceDependency(defaultUser);

    this.cache = new CfnServerlessCache(this, 'Cache', {
      serverlessCacheName: name,
      userGroupId: this.userGroup.userGroupId,
      cacheUsageLimits: {
        dataStorage: { maximum: props.maxDataStorageGb, unit: 'GB' },
        ecpuPerSecond: { maximum: props.maxEcpuPerSecond },
      },
      description: `relay-ws ${props.stage}: offline queues, sequence numbers, rate limits`,
      engine: 'valkey',
      majorEngineVersion: '8',
      subnetIds: privateSubnets.subnetIds,
      securityGroupIds: [this.cacheSecurityGroup.securityGroupId],
      // Pending messages live here: prod keeps a week of daily snapshots and a final one on delete.
      ...(retained ? { snapshotRetentionLimit: 7, dailySnapshotTime: '03:00', finalSnapshotName: `${name}-final` } : {}),
    });
    // Deleting the cache (with its final snapshot in prod) lets the VPC and security groups go too.
    this.cache.applyRemovalPolicy(RemovalPolicy.DESTROY);
    this.cache.addResourceDependency(this.userGroup);

    const mode: ConfigOf<'connect'>['REDIS_MODE'] = 'cluster';
    this.environment = {
      // ElastiCache Serverless speaks TLS only, in cluster mode.
      REDIS_URL: `rediss://${this.cache.attrEndpointAddress}:${this.cache.attrEndpointPort}`,
      REDIS_AUTH_SECRET_ID: this.authSecret.secretArn,
      REDIS_MODE: mode,
    };
    this.placement = {
      vpc: this.vpc,
      vpcSubnets: { subnetType: SubnetType.PRIVATE_WITH_EGRESS },
      securityGroups: [this.functionSecurityGroup],
    };
  }

  grantConnect(grantee: IGrantable): void {
    // Reaching the cache is a network permission (the security groups above); AUTH needs the app user's password.
    this.authSecret.grantRead(grantee);
  }

  /** The rotation function's own variables: the user whose passwords it sets (REDIS_URL comes with the rest). */
  get rotationEnvironment(): FunctionEnvironment {
    return { REDIS_USER_ID: this.appUser.userId };
  }

  /**
   * Rotates the app user's password every `every` with `rotation` (redisPasswordRotation). The function may touch
   * only this secret and this user, and only Secrets Manager rotating this secret may invoke it. The schedule's
   * first rotation comes after `every`, not at deploy: `aws secretsmanager rotate-secret` rotates now.
   */
  rotateWith(rotation: RelayFunction, every: Duration): CfnRotationSchedule {
    rotation.role.addToPrincipalPolicy(new PolicyStatement({ actions: [...ROTATION_SECRET_ACTIONS], resources: [this.authSecret.secretArn] }));
    rotation.role.addToPrincipalPolicy(new PolicyStatement({ actions: [...ROTATION_USER_ACTIONS], resources: [this.appUser.attrArn] }));
    rotation.function.addPermission('InvokedBySecretsManager', {
      principal: new ServicePrincipal('secretsmanager.amazonaws.com'),
      action: 'lambda:InvokeFunction',
      sourceAccount: Stack.of(this).account,
      sourceArn: this.authSecret.secretArn,
    });
    // The L1 resource: addRotationSchedule would also grant secretsmanager:GetRandomPassword on "*" and let
    // Secrets Manager invoke the function for any secret of any account.
    const schedule = new CfnRotationSchedule(this, 'AuthSecretRotation', {
      secretId: this.authSecret.secretArn,
      rotationLambdaArn: rotation.function.functionArn,
      rotationRules: { automaticallyAfterDays: every.toDays() },
      rotateImmediatelyOnUpdate: false,
    });
    // Secrets Manager checks that it may invoke the function; the user must exist (in the cache's group) to be modified.
    schedule.node.addDependency(rotation.function, rotation.role, this.cache);
    return schedule;
  }
}

export interface ExternalRedisProps {
  redisUrlSecretArn: string;
}

/** A Redis you run elsewhere; its URL (with password) stays in Secrets Manager, never in the template. */
export class ExternalRedis extends Construct implements RedisBackend {
  readonly mode = 'external';
  readonly secret: ISecret;
  readonly environment: RedisBackend['environment'];
  readonly placement = undefined;

  constructor(scope: Construct, id: string, props: ExternalRedisProps) {
    super(scope, id);
    this.secret = Secret.fromSecretCompleteArn(this, 'UrlSecret', props.redisUrlSecretArn);
    const mode: ConfigOf<'connect'>['REDIS_MODE'] = 'standalone';
    this.environment = { REDIS_URL_SECRET_ID: this.secret.secretArn, REDIS_MODE: mode };
  }

  grantConnect(grantee: IGrantable): void {
    this.secret.grantRead(grantee);
  }
}

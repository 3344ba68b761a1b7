import { Validations } from 'aws-cdk-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENI_ACTIONS } from '../../lib/functions.js';
import { parseSettings } from '../../lib/settings.js';
import { REDIS_APP_USER, redisPasswordRotation, ROTATION_SECRET_ACTIONS, ROTATION_USER_ACTIONS, ServerlessRedis } from '../../lib/redis.js';
import {
  actionsOf,
  asArray,
  flat,
  functionNamed,
  getAttTarget,
  onlyResource,
  props,
  removeAssembly,
  resourcesOfType,
  statementsOf,
  synthesize,
  violationsIn,
  type Synthesized,
} from './synth.js';

const STACK = 'RelayWs-dev';
let synth: Synthesized;
let weekly: Synthesized;
let external: Synthesized;

beforeAll(() => {
  synth = synthesize({}, { bundle: false });
  weekly = synthesize({ redisPasswordRotationDays: '7' }, { bundle: false });
  external = synthesize({ redis: 'external', redisUrlSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:relay-ws/dev/redis-url-AbCdEf' }, { bundle: false });
});

afterAll(() => {
  removeAssembly(synth);
  removeAssembly(weekly);
  removeAssembly(external);
});

/** The one invoke permission for Secrets Manager (the routes' permissions are API Gateway's). */
function secretsManagerPermission(s: Synthesized) {
  const found = resourcesOfType(s.json, 'AWS::Lambda::Permission').filter(([, p]) => String(props(p).Principal).startsWith('secretsmanager.'));
  expect(found).toHaveLength(1);
  return found[0] ?? ['', { Type: '' }];
}

/** The logical ids of the Redis AUTH secret and the rotation function. */
function ids(s: Synthesized) {
  const [secretId] = resourcesOfType(s.json, 'AWS::SecretsManager::Secret').find(([, r]) => JSON.stringify(props(r).GenerateSecretString).includes(REDIS_APP_USER)) ?? [''];
  const [functionId] = functionNamed(s.json, STACK, redisPasswordRotation.name);
  const [userId] = resourcesOfType(s.json, 'AWS::ElastiCache::User').find(([, user]) => props(user).UserName === REDIS_APP_USER) ?? [''];
  return { secretId, functionId, userId };
}

describe('the Redis AUTH password rotation (redis=serverless)', () => {
  it('is scheduled on the AUTH secret, every 30 days by default, first after the interval (not at deploy)', () => {
    const { secretId, functionId } = ids(synth);
    const [, schedule] = onlyResource(synth.json, 'AWS::SecretsManager::RotationSchedule');
    expect(props(schedule)).toEqual({
      SecretId: { Ref: secretId },
      RotationLambdaARN: { 'Fn::GetAtt': [functionId, 'Arn'] },
      RotationRules: { AutomaticallyAfterDays: 30 },
      RotateImmediatelyOnUpdate: false,
    });
    const [, weeklySchedule] = onlyResource(weekly.json, 'AWS::SecretsManager::RotationSchedule');
    expect(props(weeklySchedule).RotationRules).toEqual({ AutomaticallyAfterDays: 7 });
  });

  it('takes 1-1000 days (what Secrets Manager allows) from -c redisPasswordRotationDays', () => {
    expect(parseSettings({ redisPasswordRotationDays: '90' }).redisPasswordRotationDays).toBe(90);
    for (const bad of ['0', '1001', '1.5', 'monthly']) {
      expect(() => parseSettings({ redisPasswordRotationDays: bad }), bad).toThrow(/-c redisPasswordRotationDays=/);
    }
  });

  it('comes after the cache (the user must be in its group) and after the function may be invoked', () => {
    const { functionId } = ids(synth);
    const [cacheId] = onlyResource(synth.json, 'AWS::ElastiCache::ServerlessCache');
    const [permissionId] = secretsManagerPermission(synth);
    const [, schedule] = onlyResource(synth.json, 'AWS::SecretsManager::RotationSchedule');
    expect(asArray(schedule.DependsOn)).toEqual(expect.arrayContaining([cacheId, functionId, permissionId]));
  });

  it('may be invoked only by Secrets Manager, for this secret in this account', () => {
    const { secretId, functionId } = ids(synth);
    const [, permission] = secretsManagerPermission(synth);
    expect(props(permission)).toEqual({
      Action: 'lambda:InvokeFunction',
      FunctionName: { 'Fn::GetAtt': [functionId, 'Arn'] },
      Principal: 'secretsmanager.amazonaws.com',
      SourceAccount: { Ref: 'AWS::AccountId' },
      SourceArn: { Ref: secretId },
    });
  });

  it('may touch only this secret and this user: no GetRandomPassword, no wildcard beyond the ENI describes', () => {
    const { secretId, functionId, userId } = ids(synth);
    const statements = statementsOf(synth.json, functionId);
    const onSecret = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('secretsmanager:')));
    expect(onSecret.map((s) => [actionsOf(s).sort(), flat(s.Resource)])).toEqual([[[...ROTATION_SECRET_ACTIONS].sort(), `<${secretId}>`]]);
    const onCache = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('elasticache:')));
    expect(onCache).toHaveLength(1);
    expect(actionsOf(onCache[0] ?? { Effect: '', Action: [], Resource: '' }).sort()).toEqual([...ROTATION_USER_ACTIONS].sort());
    expect(getAttTarget(onCache[0]?.Resource)).toBe(userId);
    const everyAction = statements.flatMap(actionsOf);
    expect(everyAction).not.toContain('secretsmanager:GetRandomPassword');
    const unscoped = statements.filter((s) => asArray(s.Resource).includes('*')).flatMap(actionsOf);
    expect(unscoped.sort()).toEqual([...ENI_ACTIONS.describe].sort());
  });

  it('runs in the VPC with the Redis functions\' security group (its testSecret AUTHs to the cache), with the user id and the cache URL', () => {
    const { functionId } = ids(synth);
    const fn = synth.json.Resources[functionId];
    const properties = props(fn ?? { Type: '' });
    expect(properties).toMatchObject({ Timeout: 180, MemorySize: 256 });
    const groupsOf = (resource: unknown) => (props(resource as never).VpcConfig as { SecurityGroupIds: unknown[] }).SecurityGroupIds.map(getAttTarget);
    const [, connect] = functionNamed(synth.json, STACK, 'connect');
    expect(groupsOf(fn)).toEqual(groupsOf(connect));
    const variables = (properties.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(Object.keys(variables).sort()).toEqual(['LOG_LEVEL', 'METRICS', 'METRICS_STAGE', 'NODE_OPTIONS', 'REDIS_URL', 'REDIS_USER_ID']);
    expect(variables.REDIS_USER_ID).toBe('relay-ws-dev-app');
    const [cacheId] = onlyResource(synth.json, 'AWS::ElastiCache::ServerlessCache');
    expect(flat(variables.REDIS_URL)).toBe(`rediss://<${cacheId}.Endpoint.Address>:<${cacheId}.Endpoint.Port>`);
  });

  it('lets the AUTH secret pass cdk-nag\'s rotation rule without an acknowledgement', () => {
    expect(violationsIn(synth.report)).toEqual([]);
    const redis = synth.stack.redis;
    if (!(redis instanceof ServerlessRedis)) throw new Error('expected ServerlessRedis');
    const acknowledged = redis.authSecret.node
      .findAll()
      .flatMap((construct) => construct.node.metadata)
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) => Object.keys(entry.data as Record<string, string>));
    expect(acknowledged).toEqual([]);
    // The other two secrets still carry their reviewed reasons: the scan above does look at acknowledgements.
    const appSecretAcks = synth.stack.appSecret.node.metadata.filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY);
    expect(JSON.stringify(appSecretAcks.map((entry) => entry.data))).toContain('AwsSolutions-SMG4');
  });

  it('exists only with redis=serverless: an external Redis has no ElastiCache user to rotate', () => {
    external.template.resourceCountIs('AWS::SecretsManager::RotationSchedule', 0);
    expect(() => functionNamed(external.json, STACK, redisPasswordRotation.name)).toThrow(/no function/);
    expect(external.stack.passwordRotation).toBeUndefined();
  });
});

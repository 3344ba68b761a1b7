import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fanoutWorker, notifier, presenceSweeper, routes } from '../../deploy/routes.js';
import { variablesOf } from '../../lambdas/config.js';
import { configFor, functionEnvironments } from './environment.js';
import {
  actionsOf,
  asArray,
  functionNamed,
  props,
  statementsOf,
  removeAssembly,
  synthesize,
  violationsIn,
  type Synthesized,
} from './synth.js';

const STACK = 'RelayWs-dev';
const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:relay-ws/dev/redis-url-AbCdEf';

let synth: Synthesized;

beforeAll(() => {
  synth = synthesize({ redis: 'external', redisUrlSecretArn: SECRET_ARN }, { bundle: false });
});

afterAll(() => removeAssembly(synth));

describe('-c redis=external', () => {
  it('creates no VPC, NAT gateway or cache', () => {
    for (const type of ['AWS::EC2::VPC', 'AWS::EC2::NatGateway', 'AWS::EC2::SecurityGroup', 'AWS::ElastiCache::ServerlessCache']) {
      synth.template.resourceCountIs(type, 0);
    }
    for (const spec of [...routes, fanoutWorker, presenceSweeper, notifier]) {
      const [, fn] = functionNamed(synth.json, STACK, spec.name);
      expect(props(fn).VpcConfig, spec.name).toBeUndefined();
    }
  });

  it('points every function that uses Redis at the Redis URL secret, which only those may read', () => {
    for (const spec of [...routes, fanoutWorker, presenceSweeper, notifier]) {
      const [functionId, fn] = functionNamed(synth.json, STACK, spec.name);
      const variables = (props(fn).Environment as { Variables: Record<string, unknown> }).Variables;
      expect(variables.REDIS_URL_SECRET_ID, spec.name).toBe(spec.access.redis ? SECRET_ARN : undefined);
      expect(variables.REDIS_URL).toBeUndefined();
      const readers = statementsOf(synth.json, functionId).filter(
        (s) => actionsOf(s).includes('secretsmanager:GetSecretValue') && asArray(s.Resource).includes(SECRET_ARN),
      );
      expect(readers, spec.name).toHaveLength(spec.access.redis ? 1 : 0);
    }
  });

  it('still gives every function an environment loadConfig accepts', () => {
    const environments = functionEnvironments(synth.json);
    // The routes, the worker, the sweeper, the notifier and the push setup (no password rotation without ElastiCache).
    expect(environments).toHaveLength(routes.length + 4);
    for (const environment of environments.filter((e) => variablesOf(e.name).includes('REDIS_URL'))) {
      const config = configFor(environment);
      expect(config.REDIS_URL_SECRET_ID).toBe(SECRET_ARN);
      expect(config.REDIS_URL).toBeUndefined();
      expect(config.REDIS_MODE).toBe('standalone');
    }
  });

  it('passes cdk-nag', () => {
    expect(violationsIn(synth.report)).toEqual([]);
  });
});

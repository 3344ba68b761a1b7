import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, requiredVariablesOf, variablesOf } from '../../lambdas/config.js';
import { ConfigError } from '../../lambdas/errors.js';
import { fanoutWorker, notifier, presenceSweeper, routes } from '../../deploy/routes.js';
import { redisPasswordRotation } from '../../lib/redis.js';
import { pushSetup } from '../../lib/push-setup.js';
import { configFor, functionEnvironments, type FunctionEnvironment } from './environment.js';
import { removeAssembly, synthesize, type Synthesized } from './synth.js';

const JWT = {
  jwtJwksUrl: 'https://issuer.example.com/.well-known/jwks.json',
  jwtIssuer: 'https://issuer.example.com/',
  jwtAudience: 'relay-ws',
};

let synth: Synthesized;
let environments: FunctionEnvironment[];

beforeAll(() => {
  synth = synthesize({ ...JWT, logLevel: 'debug', rateLimitPerSecond: '10', rateLimitBurst: '30' }, { bundle: false });
  environments = functionEnvironments(synth.json);
});

afterAll(() => removeAssembly(synth));

describe('function environment, checked against lambdas/config.ts', () => {
  it('covers every function of the route table, the worker, the sweeper, the password rotation and the push setup', () => {
    expect(environments.map((e) => e.functionName).sort()).toEqual(
      [...routes, fanoutWorker, presenceSweeper, notifier, redisPasswordRotation, pushSetup].map((spec) => `RelayWs-dev-${spec.name}`).sort(),
    );
  });

  it('sets every variable the schema requires, in every function', () => {
    for (const environment of environments) {
      const missing = requiredVariablesOf(environment.name).filter((name) => environment.raw[name] === undefined);
      expect(missing, environment.functionName).toEqual([]);
    }
  });

  it('gives each function only the variables its own schema reads', () => {
    for (const environment of environments) {
      const allowed = new Set([...variablesOf(environment.name), 'NODE_OPTIONS']);
      expect(Object.keys(environment.raw).filter((name) => !allowed.has(name)), environment.functionName).toEqual([]);
    }
    const byName = new Map(environments.map((e) => [e.name, e.raw]));
    expect(Object.keys(byName.get('disconnect') ?? {}).sort()).toEqual([
      'CONNECTIONS_TABLE',
      'LOG_LEVEL',
      'METRICS',
      'METRICS_STAGE',
      'NODE_OPTIONS',
      'REDIS_AUTH_SECRET_ID',
      'REDIS_MODE',
      'REDIS_URL',
    ]);
    expect(byName.get('presenceSweeper')?.CALLBACK_URL).toBeDefined();
    expect(byName.get('sendMessage')?.CALLBACK_URL).toBeUndefined();
    expect(byName.get('typing')?.APP_SECRET_ID).toBeUndefined();
    expect(byName.get('default')?.REDIS_URL).toBeUndefined();
  });

  it('gives every function an environment that its loadConfig accepts once deployed', () => {
    for (const environment of environments) {
      expect(() => configFor(environment), environment.functionName).not.toThrow();
      const config = configFor(environment);
      const variables = new Set(variablesOf(environment.name));
      const expected: Record<string, unknown> = {
        REDIS_MODE: 'cluster',
        LOG_LEVEL: 'DEBUG',
        // Every function writes its counters as EMF lines, under the stage's dimension.
        METRICS: 'emf',
        METRICS_STAGE: 'dev',
        RATE_LIMIT_PER_SECOND: 10,
        RATE_LIMIT_BURST: 30,
        JWT_JWKS_URL: JWT.jwtJwksUrl,
        JWT_ISSUER: JWT.jwtIssuer,
        JWT_AUDIENCE: JWT.jwtAudience,
      };
      expect(config, environment.functionName).toMatchObject(Object.fromEntries(Object.entries(expected).filter(([name]) => variables.has(name))));
      if (variables.has('APP_SECRET_ID')) expect(config.APP_SECRET_ID).toBeDefined();
      if (variables.has('REDIS_URL')) expect(config.REDIS_URL).toMatch(/^rediss:\/\//);
      // The app user's credentials come from their secret, never from the template.
      if (variables.has('REDIS_URL')) expect(config.REDIS_URL).not.toContain('@');
      if (variables.has('REDIS_AUTH_SECRET_ID')) expect(config.REDIS_AUTH_SECRET_ID).toBeDefined();
    }
  });

  it('would fail for a half-configured function', () => {
    const sample = environments.find((e) => e.name === 'sendMessage');
    expect(sample).toBeDefined();
    const deployed = sample?.deployed ?? {};
    // Redis is optional (it only speeds things up); the secret is not.
    for (const name of [...requiredVariablesOf('sendMessage'), 'APP_SECRET_ID']) {
      const { [name]: _removed, ...rest } = deployed;
      expect(() => loadConfig('sendMessage', rest), name).toThrow(ConfigError);
      expect(() => loadConfig('sendMessage', rest), name).toThrow(name);
    }
  });

  it('carries secret ids, never secret values', () => {
    for (const environment of environments) {
      expect(environment.raw.APP_SECRET_JSON).toBeUndefined();
      expect(JSON.stringify(environment.raw)).not.toMatch(/resolve:secretsmanager|masterKey/);
      if (variablesOf(environment.name).includes('APP_SECRET_ID')) {
        expect(environment.raw.APP_SECRET_ID).toEqual({ Ref: expect.stringMatching(/^AppSecret/) });
      } else {
        expect(environment.raw.APP_SECRET_ID, environment.functionName).toBeUndefined();
      }
    }
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, requiredVariables } from '../../lambdas/config.js';
import { fanoutWorker, routes } from '../../deploy/routes.js';
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
  it('covers every function of the route table and the worker', () => {
    expect(environments.map((e) => e.functionName).sort()).toEqual(
      [...routes, fanoutWorker].map((spec) => `RelayWs-dev-${spec.name}`).sort(),
    );
  });

  it('sets every variable the schema requires, in every function', () => {
    expect(requiredVariables.length).toBeGreaterThan(0);
    for (const environment of environments) {
      const missing = requiredVariables.filter((name) => environment.raw[name] === undefined);
      expect(missing, environment.functionName).toEqual([]);
    }
  });

  it('gives every function an environment that loadConfig accepts once deployed', () => {
    for (const environment of environments) {
      expect(() => configFor(environment), environment.functionName).not.toThrow();
      const config = configFor(environment);
      expect(config).toMatchObject({
        REDIS_MODE: 'cluster',
        LOG_LEVEL: 'DEBUG',
        RATE_LIMIT_PER_SECOND: 10,
        RATE_LIMIT_BURST: 30,
        JWT_JWKS_URL: JWT.jwtJwksUrl,
        JWT_ISSUER: JWT.jwtIssuer,
        JWT_AUDIENCE: JWT.jwtAudience,
        LOCAL_MODE: false,
      });
      expect(config.APP_SECRET_ID).toBeDefined();
      expect(config.REDIS_URL).toMatch(/^rediss:\/\//);
    }
  });

  it('is the same complete environment for all functions (each builds the whole context)', () => {
    const [first, ...rest] = environments;
    for (const environment of rest) expect(environment.raw, environment.functionName).toEqual(first?.raw);
  });

  it('would fail for a half-configured function', () => {
    const [sample] = environments;
    expect(sample).toBeDefined();
    const deployed = sample?.deployed ?? {};
    for (const name of [...requiredVariables, 'REDIS_URL', 'APP_SECRET_ID']) {
      const { [name]: _removed, ...rest } = deployed;
      expect(() => loadConfig(rest), name).toThrow(ConfigError);
      expect(() => loadConfig(rest), name).toThrow(name);
    }
  });

  it('carries secret ids, never secret values', () => {
    for (const environment of environments) {
      expect(environment.raw.APP_SECRET_JSON).toBeUndefined();
      expect(JSON.stringify(environment.raw)).not.toMatch(/resolve:secretsmanager|masterKey/);
      expect(environment.raw.APP_SECRET_ID).toEqual({ Ref: expect.stringMatching(/^AppSecret/) });
    }
  });
});

import { describe, expect, it } from 'vitest';
import { functionEnvironments, loadConfig, loadMembershipLimit, MAX_CONNECTION_SECONDS, requiredVariablesOf, variablesOf, type FunctionName } from '../../lambdas/config.js';
import { ConfigError } from '../../lambdas/errors.js';
import { fanoutWorker, presenceSweeper, routes } from '../../deploy/routes.js';
import { completeEnv } from '../support/env.js';

describe('loadConfig', () => {
  it('parses a complete environment with defaults', () => {
    const config = loadConfig('connect', completeEnv('redis://127.0.0.1:6379'));
    expect(config).toMatchObject({
      CONNECTIONS_TABLE: 'connections-test',
      IDEMPOTENCY_WINDOW_SECONDS: 7 * 24 * 3600,
      DEVICE_TTL_SECONDS: 30 * 24 * 3600,
      MAX_DEVICES_PER_USER: 10,
      REDIS_MODE: 'standalone',
      ORIGIN_ALLOW_LIST: [],
    });
  });

  it('defaults the rate limit for the frame routes', () => {
    expect(loadConfig('sendMessage', completeEnv('redis://x'))).toMatchObject({ RATE_LIMIT_PER_SECOND: 20, RATE_LIMIT_BURST: 40 });
  });

  const required = (Object.keys(functionEnvironments) as FunctionName[]).flatMap((fn) => requiredVariablesOf(fn).map((name) => [fn, name] as const));
  it.each(required)('%s: names %s when it is missing', (fn, name) => {
    const env = Object.fromEntries(Object.entries(completeEnv('redis://x')).filter(([key]) => key !== name));
    expect(() => loadConfig(fn, env)).toThrowError(new RegExp(`${name} is missing`));
  });

  it('gives each function only the variables it reads', () => {
    // $disconnect reaches Redis only to end the connection's presence.
    expect(variablesOf('disconnect')).toEqual(expect.arrayContaining(['CONNECTIONS_TABLE', 'LOG_LEVEL', 'REDIS_URL', 'PRESENCE_GRACE_SECONDS']));
    expect(variablesOf('presenceSweeper')).toContain('PRESENCE_SWEEP_SECONDS');
    expect(variablesOf('ping')).not.toContain('PRESENCE_SWEEP_SECONDS');
    for (const absent of ['APP_SECRET_ID', 'MEMBERS_TABLE', 'FANOUT_QUEUE_URL', 'RATE_LIMIT_PER_SECOND']) {
      expect(variablesOf('disconnect')).not.toContain(absent);
    }
    expect(variablesOf('typing')).not.toContain('APP_SECRET_ID');
    expect(variablesOf('ack')).not.toContain('FANOUT_QUEUE_URL');
    expect(variablesOf('default')).not.toContain('CONNECTIONS_TABLE');
  });

  it('reads the Redis settings in exactly the functions the manifest lets reach Redis (the others build no client)', () => {
    for (const spec of [...routes, fanoutWorker, presenceSweeper]) {
      const reads = ['REDIS_URL', 'REDIS_URL_SECRET_ID', 'REDIS_MODE'].filter((name) => variablesOf(spec.name).includes(name));
      expect({ name: spec.name, reads }).toEqual({ name: spec.name, reads: spec.access.redis ? ['REDIS_URL', 'REDIS_URL_SECRET_ID', 'REDIS_MODE'] : [] });
    }
  });

  it('reads the fan-out budgets in the functions that fan out what a user sends: defaults, raised, refused when not positive', () => {
    expect(loadConfig('sendMessage', completeEnv('redis://x'))).toMatchObject({
      FANOUT_BUDGET_CONVERSATION_PER_SECOND: 500,
      FANOUT_BUDGET_SENDER_PER_SECOND: 1000,
    });
    const raised = loadConfig('typing', { ...completeEnv('redis://x'), FANOUT_BUDGET_CONVERSATION_PER_SECOND: '100000', FANOUT_BUDGET_SENDER_PER_SECOND: '200000' });
    expect(raised).toMatchObject({ FANOUT_BUDGET_CONVERSATION_PER_SECOND: 100_000, FANOUT_BUDGET_SENDER_PER_SECOND: 200_000 });
    for (const bad of ['0', '-5', '1.5', 'many']) {
      expect(() => loadConfig('sendMessage', { ...completeEnv('redis://x'), FANOUT_BUDGET_SENDER_PER_SECOND: bad })).toThrowError(/FANOUT_BUDGET_SENDER_PER_SECOND/);
    }
    const readers = (Object.keys(functionEnvironments) as FunctionName[]).filter((fn) => variablesOf(fn).includes('FANOUT_BUDGET_CONVERSATION_PER_SECOND'));
    expect(readers.sort()).toEqual(['deleteMessage', 'editMessage', 'sendMessage', 'typing']);
  });

  it('reads MAX_CONVERSATION_MEMBERS for the tools that add members (default 1000), naming it when invalid', () => {
    expect(loadMembershipLimit({})).toBe(1000);
    expect(loadMembershipLimit({ MAX_CONVERSATION_MEMBERS: '25000' })).toBe(25_000);
    expect(() => loadMembershipLimit({ MAX_CONVERSATION_MEMBERS: '0' })).toThrowError(/MAX_CONVERSATION_MEMBERS: must be a positive integer/);
    const readers = (Object.keys(functionEnvironments) as FunctionName[]).filter((fn) => variablesOf(fn).includes('MAX_CONVERSATION_MEMBERS'));
    expect(readers).toEqual([]);
  });

  it('reads the typing times in the typing function only: defaults, 0 to send every frame, a start outliving the window', () => {
    expect(loadConfig('typing', completeEnv('redis://x'))).toMatchObject({ TYPING_COALESCE_MS: 2000, TYPING_EXPIRES_MS: 6000, LARGE_CONVERSATION_MEMBERS: 100 });
    expect(loadConfig('typing', { ...completeEnv('redis://x'), TYPING_COALESCE_MS: '0' }).TYPING_COALESCE_MS).toBe(0);
    expect(() => loadConfig('typing', { ...completeEnv('redis://x'), TYPING_COALESCE_MS: '-1' })).toThrowError(/TYPING_COALESCE_MS/);
    expect(() => loadConfig('typing', { ...completeEnv('redis://x'), TYPING_COALESCE_MS: '6000' })).toThrowError(/TYPING_EXPIRES_MS: must be greater than TYPING_COALESCE_MS/);
    const readers = (Object.keys(functionEnvironments) as FunctionName[]).filter((fn) => variablesOf(fn).includes('TYPING_COALESCE_MS'));
    expect(readers).toEqual(['typing']);
  });

  it('names every invalid variable and never prints a value', () => {
    const env = { ...completeEnv('redis://x'), FANOUT_QUEUE_URL: 'not a url', RATE_LIMIT_BURST: 'lots', APP_SECRET_JSON: 'hunter2-secret' };
    try {
      loadConfig('sendMessage', env);
      expect.unreachable('loadConfig accepted an invalid environment');
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const message = (error as ConfigError).message;
      expect(message).toContain('FANOUT_QUEUE_URL');
      expect(message).toContain('RATE_LIMIT_BURST');
      expect(message).not.toContain('hunter2');
    }
  });

  it('needs at most one Redis source and exactly one secret source; reads the history retention', () => {
    expect(loadConfig('sendMessage', completeEnv('redis://x')).HISTORY_RETENTION_SECONDS).toBeUndefined();
    expect(loadConfig('sendMessage', { ...completeEnv('redis://x'), HISTORY_RETENTION_SECONDS: '86400' }).HISTORY_RETENTION_SECONDS).toBe(86_400);
    expect(() => loadConfig('sendMessage', { ...completeEnv('redis://x'), HISTORY_RETENTION_SECONDS: '-1' })).toThrowError(/HISTORY_RETENTION_SECONDS/);
    const base: Record<string, string> = completeEnv('redis://x');
    const noRedis = { ...base };
    delete noRedis.REDIS_URL;
    // Redis is optional (it only speeds things up), but at most one source.
    expect(loadConfig('sendMessage', noRedis).REDIS_URL).toBeUndefined();
    expect(() => loadConfig('sendMessage', { ...base, REDIS_URL_SECRET_ID: 'arn:x' })).toThrowError(/only one of REDIS_URL/);
    expect(() => loadConfig('sendMessage', { ...base, APP_SECRET_ID: 'arn:y' })).toThrowError(/only one of APP_SECRET_ID/);
    // The ElastiCache app user's credentials are for REDIS_URL.
    expect(loadConfig('sendMessage', { ...base, REDIS_AUTH_SECRET_ID: 'arn:z' }).REDIS_AUTH_SECRET_ID).toBe('arn:z');
    expect(() => loadConfig('sendMessage', { ...noRedis, REDIS_AUTH_SECRET_ID: 'arn:z' })).toThrowError(/REDIS_AUTH_SECRET_ID: needs REDIS_URL/);
  });

  it('$connect: a JWT secret source, a JWKS only with its issuer and audience, and a maximum token age', () => {
    const base: Record<string, string> = completeEnv('redis://x');
    expect(loadConfig('connect', base).MAX_TOKEN_AGE_SECONDS).toBe(86_400);
    expect(loadConfig('connect', { ...base, MAX_TOKEN_AGE_SECONDS: '900' }).MAX_TOKEN_AGE_SECONDS).toBe(900);
    // A deployed stage names its own JWT secret; $connect never reads the app secret.
    expect(loadConfig('connect', { ...base, APP_SECRET_JSON: '', JWT_SECRET_ID: 'arn:jwt' }).JWT_SECRET_ID).toBe('arn:jwt');
    expect(variablesOf('connect')).not.toContain('APP_SECRET_ID');
    expect(() => loadConfig('connect', { ...base, APP_SECRET_JSON: '' })).toThrowError(/set JWT_SECRET_ID or APP_SECRET_JSON/);
    const jwks = { ...base, JWT_JWKS_URL: 'https://id.example/.well-known/jwks.json' };
    expect(() => loadConfig('connect', jwks)).toThrowError(/JWT_ISSUER: is required with JWT_JWKS_URL.*JWT_AUDIENCE: is required with JWT_JWKS_URL/);
    expect(() => loadConfig('connect', { ...jwks, JWT_ISSUER: 'https://id.example' })).toThrowError(/JWT_AUDIENCE: is required/);
    expect(loadConfig('connect', { ...jwks, JWT_ISSUER: 'https://id.example', JWT_AUDIENCE: 'relay' })).toMatchObject({ JWT_AUDIENCE: 'relay' });
  });

  it('the fan-out worker needs its stage\'s own callback URL', () => {
    expect(() => loadConfig('fanoutWorker', completeEnv('redis://x'))).toThrowError(/CALLBACK_URL is missing/);
    expect(loadConfig('fanoutWorker', { ...completeEnv('redis://x'), CALLBACK_URL: 'https://abc.execute-api.eu-west-1.amazonaws.com/prod' }).CALLBACK_URL).toMatch(/prod$/);
  });

  it('refuses a burst below the rate and parses the origin allow list', () => {
    expect(() => loadConfig('ack', { ...completeEnv('redis://x'), RATE_LIMIT_PER_SECOND: '50', RATE_LIMIT_BURST: '10' })).toThrowError(/RATE_LIMIT_BURST/);
    const config = loadConfig('connect', { ...completeEnv('redis://x'), ORIGIN_ALLOW_LIST: 'https://a.example, https://b.example' });
    expect(config.ORIGIN_ALLOW_LIST).toEqual(['https://a.example', 'https://b.example']);
  });
});

describe('connection lifetime and metrics settings', () => {
  it('keeps a connection row no longer than API Gateway keeps the connection: 2 hours at most, the default', () => {
    expect(loadConfig('connect', completeEnv('redis://x')).CONNECTION_TTL_SECONDS).toBe(MAX_CONNECTION_SECONDS);
    expect(MAX_CONNECTION_SECONDS).toBe(7200);
    expect(loadConfig('connect', { ...completeEnv('redis://x'), CONNECTION_TTL_SECONDS: '3600' }).CONNECTION_TTL_SECONDS).toBe(3600);
    expect(() => loadConfig('connect', { ...completeEnv('redis://x'), CONNECTION_TTL_SECONDS: '10800' })).toThrowError(/CONNECTION_TTL_SECONDS/);
  });

  it('counts nothing unless METRICS=emf, and names the stage dimension', () => {
    expect(loadConfig('sendMessage', completeEnv('redis://x'))).toMatchObject({ METRICS: 'off', METRICS_STAGE: 'local' });
    expect(loadConfig('sendMessage', { ...completeEnv('redis://x'), METRICS: 'emf', METRICS_STAGE: 'prod' })).toMatchObject({ METRICS: 'emf', METRICS_STAGE: 'prod' });
    expect(() => loadConfig('sendMessage', { ...completeEnv('redis://x'), METRICS: 'statsd' })).toThrowError(/METRICS/);
  });
});

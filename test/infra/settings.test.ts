import { describe, expect, it } from 'vitest';
import { ContextError, parseSettings, stackNameFor, workerMaxConcurrency } from '../../lib/settings.js';

function problemsOf(context: Record<string, unknown>): readonly string[] {
  try {
    parseSettings(context);
  } catch (error) {
    if (error instanceof ContextError) return error.problems;
    throw error;
  }
  return [];
}

describe('context values', () => {
  it('defaults to a dev stage with ElastiCache Serverless', () => {
    expect(parseSettings({})).toEqual({
      stage: 'dev',
      logRetentionDays: 30,
      throttleRate: 500,
      throttleBurst: 1000,
      redis: 'serverless',
      maxReceiveCount: 5,
      logLevel: 'INFO',
      rateLimitPerSecond: 20,
      rateLimitBurst: 40,
      tracing: false,
      apiGatewayCloudWatchRole: true,
      pushPreview: false,
      pushApnsSandbox: false,
      pushVapidSubject: 'mailto:webpush@example.com',
      callbackQuotaPerSecond: 10_000,
      callbackQuotaShare: 0.5,
      workerPostsPerSecond: 1_938,
      cacheMaxDataStorageGb: 5,
      cacheMaxEcpuPerSecond: 50_000,
      redisPasswordRotationDays: 30,
      retainData: false,
      natGateways: 1,
    });
    expect(stackNameFor('dev')).toBe('RelayWs-dev');
  });

  it('retains data for the stage named prod unless told otherwise, and for any stage told to', () => {
    expect(parseSettings({ stage: 'prod' }).retainData).toBe(true);
    expect(parseSettings({ stage: 'prod', retainData: 'false' }).retainData).toBe(false);
    expect(parseSettings({ stage: 'production', retainData: 'true' }).retainData).toBe(true);
    expect(parseSettings({ stage: 'production' }).retainData).toBe(false);
    expect(parseSettings({ stage: 'staging', retainData: true }).retainData).toBe(true);
    expect(problemsOf({ retainData: 'yes' })).toEqual([expect.stringMatching(/^-c retainData="yes": must be true or false$/)]);
  });

  it('takes one NAT gateway or one per AZ, only with redis=serverless', () => {
    expect(parseSettings({ natGateways: '2' }).natGateways).toBe(2);
    expect(parseSettings({ natGateways: 1 }).natGateways).toBe(1);
    expect(problemsOf({ natGateways: '3' })).toEqual([expect.stringMatching(/^-c natGateways="3": must be 1 .* or 2 \(one per Availability Zone\)$/)]);
    expect(problemsOf({ natGateways: '2', redis: 'external', redisUrlSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:x-AbCdEf' })).toEqual([
      expect.stringMatching(/^-c natGateways="2": is only used with redis=serverless/),
    ]);
  });

  it('accepts command-line strings and cdk.json values alike', () => {
    const fromCli = parseSettings({ logRetentionDays: '90', maxReceiveCount: '3', tracing: 'true', alarmEmail: 'ops@example.com' });
    const fromJson = parseSettings({ logRetentionDays: 90, maxReceiveCount: 3, tracing: true, alarmEmail: 'ops@example.com' });
    expect(fromCli).toEqual(fromJson);
    expect(fromCli).toMatchObject({ logRetentionDays: 90, maxReceiveCount: 3, tracing: true });
  });

  it('treats an empty value as not set', () => {
    expect(parseSettings({ alarmEmail: '', stage: '' })).toMatchObject({ stage: 'dev', alarmEmail: undefined });
  });

  it('names each bad value and why', () => {
    const problems = problemsOf({ stage: 'Prod!', logRetentionDays: '31', alarmEmail: 'ops', tracing: 'yes', redis: 'memcached' });
    expect(problems).toHaveLength(5);
    expect(problems.join('\n')).toMatch(/-c stage="Prod!": must be 1-20 lowercase/);
    expect(problems.join('\n')).toMatch(/-c logRetentionDays="31": must be one of 1, 3, 5, 7, 14, 30/);
    expect(problems.join('\n')).toMatch(/-c alarmEmail="ops": must be an e-mail address/);
    expect(problems.join('\n')).toMatch(/-c tracing="yes": must be true or false/);
    expect(problems.join('\n')).toMatch(/-c redis="memcached": must be serverless or external/);
  });

  it('needs the secret ARN with redis=external, and only then', () => {
    expect(problemsOf({ redis: 'external' })).toEqual([expect.stringMatching(/^-c redisUrlSecretArn: is required with redis=external/)]);
    expect(problemsOf({ redis: 'external', redisUrlSecretArn: 'relay-ws/dev/redis-url' })).toEqual([
      expect.stringMatching(/complete ARN/),
    ]);
    expect(problemsOf({ redisUrlSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:x-AbCdEf' })).toEqual([
      expect.stringMatching(/only used with redis=external/),
    ]);
  });

  it('reuses the function config rules for LOG_LEVEL and the rate limits', () => {
    expect(problemsOf({ logLevel: 'verbose' })).toEqual([expect.stringMatching(/^-c logLevel="verbose"/)]);
    expect(problemsOf({ rateLimitPerSecond: '50', rateLimitBurst: '10' })).toEqual([
      expect.stringMatching(/^-c rateLimitBurst="10": must be at least rateLimitPerSecond$/),
    ]);
    expect(problemsOf({ throttleRate: '2000' })).toEqual([expect.stringMatching(/^-c throttleBurst: must be at least throttleRate$/)]);
    expect(problemsOf({ jwtJwksUrl: 'http://issuer.example.com/jwks', jwtIssuer: 'https://issuer.example.com/', jwtAudience: 'relay-ws' })).toEqual([expect.stringMatching(/jwtJwksUrl.*https URL/)]);
  });

  it('accepts a JWKS only with an issuer and an audience', () => {
    const jwtJwksUrl = 'https://id.example.com/.well-known/jwks.json';
    expect(problemsOf({ jwtJwksUrl })).toEqual([
      expect.stringMatching(/^-c jwtIssuer: is required with jwtJwksUrl$/),
      expect.stringMatching(/^-c jwtAudience: is required with jwtJwksUrl$/),
    ]);
    expect(problemsOf({ jwtJwksUrl, jwtIssuer: 'https://id.example.com/' })).toEqual([expect.stringMatching(/^-c jwtAudience: is required/)]);
    expect(problemsOf({ jwtJwksUrl, jwtIssuer: 'https://id.example.com/', jwtAudience: 'relay-ws' })).toEqual([]);
  });

  it('reports the problems in the error message, for the cdk CLI to print', () => {
    expect(() => parseSettings({ maxReceiveCount: '0' })).toThrow(/invalid CDK context:\n {2}-c maxReceiveCount="0"/);
  });
});

describe('worker concurrency', () => {
  it('is floor(quota × share / posts per second of one worker), between 2 and 1,000', () => {
    expect(workerMaxConcurrency(parseSettings({}))).toBe(2);
    expect(workerMaxConcurrency(parseSettings({ callbackQuotaPerSecond: 50_000, callbackQuotaShare: 0.8, workerPostsPerSecond: 1_000 }))).toBe(40);
    expect(workerMaxConcurrency(parseSettings({ callbackQuotaPerSecond: '1000000', callbackQuotaShare: '1', workerPostsPerSecond: '10' }))).toBe(1_000);
    expect(workerMaxConcurrency(parseSettings({ callbackQuotaShare: 0.01 }))).toBe(2);
  });

  it('refuses a share outside (0, 1]', () => {
    expect(() => parseSettings({ callbackQuotaShare: 1.5 })).toThrow(ContextError);
    expect(() => parseSettings({ callbackQuotaShare: 0 })).toThrow(ContextError);
  });
});

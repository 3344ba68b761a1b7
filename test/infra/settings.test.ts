import { describe, expect, it } from 'vitest';
import { ContextError, parseSettings, stackNameFor } from '../../lib/settings.js';

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
    });
    expect(stackNameFor('dev')).toBe('RelayWs-dev');
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

import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { readRedisUrl, withCredentials } from '../../lambdas/context/secrets.js';
import { SecretError } from '../../lambdas/errors.js';

const secrets = mockClient(SecretsManagerClient);
const config = { AWS_REGION: 'us-east-1', REDIS_URL: 'rediss://cache.example:6379', REDIS_AUTH_SECRET_ID: 'arn:redis-auth' };
const env = { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' };

afterEach(() => secrets.reset());

describe('the ElastiCache app user credentials', () => {
  it('are added to REDIS_URL from the secret named by REDIS_AUTH_SECRET_ID', async () => {
    secrets.on(GetSecretValueCommand, { SecretId: 'arn:redis-auth' }).resolves({ SecretString: JSON.stringify({ username: 'relay-app', password: 'p4ss/w:rd' }) });
    const url = new URL(await readRedisUrl(config, env));
    expect(url.host).toBe('cache.example:6379');
    expect(url.protocol).toBe('rediss:');
    expect(decodeURIComponent(url.username)).toBe('relay-app');
    expect(decodeURIComponent(url.password)).toBe('p4ss/w:rd');
  });

  it('leave REDIS_URL as it is without REDIS_AUTH_SECRET_ID, and read nothing', async () => {
    expect(await readRedisUrl({ AWS_REGION: 'us-east-1', REDIS_URL: 'redis://127.0.0.1:6379' }, env)).toBe('redis://127.0.0.1:6379');
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(0);
  });

  it('refuse a malformed secret without quoting any of it', () => {
    for (const value of ['not json at all secret-ish', JSON.stringify({ username: 'relay-app' }), JSON.stringify({ password: 'only-a-password-here' })]) {
      let thrown: unknown;
      try {
        withCredentials(config.REDIS_URL, value);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(SecretError);
      const message = thrown instanceof Error ? thrown.message : '';
      expect(message).not.toContain('secret-ish');
      expect(message).not.toContain('only-a-password');
    }
  });
});

import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeEach, describe, expect, inject, it, onTestFinished } from 'vitest';
import { ConfigError } from '../../lambdas/config.js';
import { buildContext, getContext, resetContext } from '../../lambdas/context.js';
import { handler as typing } from '../../lambdas/handlers/typing.js';
import { mockAws } from '../support/aws-mocks.js';
import { applyEnv, completeEnv, restoreEnv, TEST_SECRET_JSON } from '../support/env.js';
import { answerOf, messageEvent } from '../support/events.js';

const secrets = mockClient(SecretsManagerClient);

function secretEnv(): Record<string, string> {
  const env: Record<string, string> = { ...completeEnv(inject('redisUrl')), APP_SECRET_ID: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:app' };
  delete env.APP_SECRET_JSON;
  return env;
}

beforeEach(async () => {
  await resetContext();
  secrets.reset();
  restoreEnv();
  delete process.env.APP_SECRET_JSON;
});
afterEach(async () => {
  await resetContext();
  restoreEnv();
});
afterAll(() => secrets.restore());

describe('the shared context', () => {
  it('builds completely from a complete environment', async () => {
    const context = await buildContext(completeEnv(inject('redisUrl')));
    try {
      for (const key of ['config', 'settings', 'registry', 'members', 'store', 'fanout', 'sealer', 'clock', 'log', 'auth'] as const) {
        expect(context[key], key).toBeDefined();
      }
      expect(context.posterFor('https://a.example/dev')).toBe(context.posterFor('https://a.example/dev'));
      expect(context.posterFor('https://a.example/dev')).not.toBe(context.posterFor('https://b.example/dev'));
      expect(context.sealer.open('c', 'm', context.sealer.seal('c', 'm', 'round trip'))).toBe('round trip');
    } finally {
      await context.close();
    }
  });

  it('names a missing variable', async () => {
    const env: Record<string, string> = completeEnv(inject('redisUrl'));
    delete env.MEMBERS_TABLE;
    await expect(buildContext(env)).rejects.toThrowError(ConfigError);
    await expect(buildContext(env)).rejects.toThrowError(/MEMBERS_TABLE is missing/);
  });

  it('builds once for 100 concurrent first calls', async () => {
    applyEnv(secretEnv());
    secrets.on(GetSecretValueCommand).resolves({ SecretString: TEST_SECRET_JSON });
    const contexts = await Promise.all(Array.from({ length: 100 }, () => getContext()));
    expect(new Set(contexts).size).toBe(1);
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(1);
  });

  it('does not keep a failed build: the next call retries and succeeds without a restart', async () => {
    applyEnv(secretEnv());
    secrets.on(GetSecretValueCommand)
      .rejectsOnce(Object.assign(new Error('secret not found'), { name: 'ResourceNotFoundException' }))
      .resolves({ SecretString: TEST_SECRET_JSON });
    await expect(getContext()).rejects.toThrow(/secret not found/);
    const context = await getContext();
    expect(context.config.APP_SECRET_ID).toContain('secret:app');
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it('answers every frame with a clear error while the context cannot be built, then recovers', async () => {
    applyEnv(secretEnv());
    secrets.on(GetSecretValueCommand).resolves({ SecretString: '{"masterKey":"too-short"}' });
    const event = messageEvent('C1', { action: 'typing', conversationId: 'c' }, 'typing');
    for (let i = 0; i < 3; i += 1) {
      expect(answerOf(await typing(event))).toMatchObject({ type: 'error', code: 'internal', message: expect.stringMatching(/misconfigured/) });
    }
    secrets.on(GetSecretValueCommand).resolves({ SecretString: TEST_SECRET_JSON });
    const aws = await mockAws();
    onTestFinished(() => aws.restore());
    // Fixed secret: the next invocation builds; the unknown connection is now refused by the domain instead.
    expect(answerOf(await typing(event))).toMatchObject({ type: 'error', code: 'forbidden' });
  });

  it('answers unavailable when the secret store is down', async () => {
    applyEnv(secretEnv());
    secrets.on(GetSecretValueCommand).rejects(Object.assign(new Error('timeout'), { name: 'TimeoutError' }));
    const answer = answerOf(await typing(messageEvent('C1', { action: 'typing', conversationId: 'c' }, 'typing')));
    expect(answer).toMatchObject({ type: 'error', code: 'unavailable' });
  });
});

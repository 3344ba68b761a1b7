import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeEach, describe, expect, inject, it, onTestFinished } from 'vitest';
import { Scope } from '../../lambdas/context/lazy.js';
import { ConfigError } from '../../lambdas/errors.js';
import { route as disconnectRoute } from '../../lambdas/handlers/disconnect.js';
import { route as sendMessageRoute } from '../../lambdas/handlers/send-message.js';
import { mockAws } from '../support/aws-mocks.js';
import { applyEnv, completeEnv, restoreEnv, TEST_SECRET_JSON } from '../support/env.js';
import { answerOf, messageEvent } from '../support/events.js';
import { lambdas } from '../support/lambdas.js';

const sendMessage = lambdas.sendMessage;

const secrets = mockClient(SecretsManagerClient);

function secretEnv(): Record<string, string> {
  const env: Record<string, string> = { ...completeEnv(inject('redisUrl')), APP_SECRET_ID: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:app' };
  delete env.APP_SECRET_JSON;
  return env;
}

beforeEach(async () => {
  await lambdas.reset();
  secrets.reset();
  restoreEnv();
  delete process.env.APP_SECRET_JSON;
});
afterEach(async () => {
  await lambdas.reset();
  restoreEnv();
});
afterAll(() => secrets.restore());

const FIELDS = { conversationId: 'c', messageId: 'm', seq: 1, senderId: 'u', senderDevice: 'd', clientMessageId: 'cm', sentAt: 1 };

describe('per-route services', () => {
  it('builds completely from a complete environment', async () => {
    const scope = new Scope();
    onTestFinished(() => scope.close());
    const services = await sendMessageRoute.build(completeEnv(inject('redisUrl')), scope);
    for (const key of ['limits', 'delivery', 'registry', 'messages', 'limiter', 'seqCache', 'fanout', 'sealer', 'clock', 'log', 'newMessageId'] as const) {
      expect(services[key], key).toBeDefined();
    }
    expect(services.posterFor('https://a.example/dev')).toBe(services.posterFor('https://a.example/dev'));
    expect(services.posterFor('https://a.example/dev')).not.toBe(services.posterFor('https://b.example/dev'));
    expect(services.sealer.open(FIELDS, services.sealer.seal(FIELDS, 'round trip'))).toBe('round trip');
  });

  it('builds only what the route uses: $disconnect needs no secret or queue (without a Redis, presence is in process)', async () => {
    const scope = new Scope();
    onTestFinished(() => scope.close());
    const services = await disconnectRoute.build({ CONNECTIONS_TABLE: 'connections-test', AWS_REGION: 'us-east-1' }, scope);
    expect(Object.keys(services).sort()).toEqual(['clock', 'log', 'presence', 'registry']);
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(0);
  });

  it('names a missing variable', async () => {
    const env: Record<string, string> = completeEnv(inject('redisUrl'));
    delete env.CONNECTIONS_TABLE;
    const scope = new Scope();
    onTestFinished(() => scope.close());
    await expect(sendMessageRoute.build(env, scope)).rejects.toThrowError(ConfigError);
    await expect(sendMessageRoute.build(env, scope)).rejects.toThrowError(/CONNECTIONS_TABLE is missing/);
  });

  it('builds once for 100 concurrent first calls', async () => {
    applyEnv(secretEnv());
    secrets.on(GetSecretValueCommand).resolves({ SecretString: TEST_SECRET_JSON });
    const built = await Promise.all(Array.from({ length: 100 }, () => lambdas.services.sendMessage()));
    expect(new Set(built).size).toBe(1);
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(1);
  });

  it('does not keep a failed build: the next call retries and succeeds without a restart', async () => {
    applyEnv(secretEnv());
    secrets.on(GetSecretValueCommand)
      .rejectsOnce(Object.assign(new Error('secret not found'), { name: 'ResourceNotFoundException' }))
      .resolves({ SecretString: TEST_SECRET_JSON });
    await expect(lambdas.services.sendMessage()).rejects.toThrow(/could not be built/);
    const built = await lambdas.services.sendMessage();
    expect(built.sealer.open(FIELDS, built.sealer.seal(FIELDS, 'after retry'))).toBe('after retry');
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });
  it('answers every frame with a clear error while the services cannot be built, then recovers', async () => {
    applyEnv(secretEnv());
    secrets.on(GetSecretValueCommand).resolves({ SecretString: '{"masterKey":"too-short"}' });
    const event = messageEvent('C1', { action: 'sendMessage', conversationId: 'c', clientMessageId: 'm1', body: 'hi' }, 'sendMessage');
    for (let i = 0; i < 3; i += 1) {
      expect(answerOf(await sendMessage(event))).toMatchObject({ type: 'error', code: 'internal', message: expect.stringMatching(/misconfigured/) });
    }
    secrets.on(GetSecretValueCommand).resolves({ SecretString: TEST_SECRET_JSON });
    const aws = await mockAws();
    onTestFinished(() => aws.restore());
    // Fixed secret: the next invocation builds; the unknown connection is now refused by the domain instead.
    expect(answerOf(await sendMessage(event))).toMatchObject({ type: 'error', code: 'forbidden' });
  });

  it('answers unavailable when the secret store is down', async () => {
    applyEnv(secretEnv());
    secrets.on(GetSecretValueCommand).rejects(Object.assign(new Error('timeout'), { name: 'TimeoutError' }));
    const answer = answerOf(
      await sendMessage(messageEvent('C1', { action: 'sendMessage', conversationId: 'c', clientMessageId: 'm1', body: 'hi' }, 'sendMessage')),
    );
    expect(answer).toMatchObject({ type: 'error', code: 'unavailable' });
  });
});

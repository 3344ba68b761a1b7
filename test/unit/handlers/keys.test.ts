import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it, vi } from 'vitest';
import { keyIdOf } from '../../../lambdas/encryption.js';
import { signToken } from '../../../local/tokens.js';
import { captureOutput } from '../../hardening/support/capture.js';
import { mockAws, type AwsMocks } from '../../support/aws-mocks.js';
import { applyEnv, completeEnv, restoreEnv, TEST_SECRET_JSON, uniqueId } from '../../support/env.js';
import { answerOf, connectEvent, messageEvent } from '../../support/events.js';
import { fakeDevicePositions, fakeMessageLog } from '../../support/fake-store.js';
import { testLambdas } from '../../support/lambdas.js';
import { sqsRecord } from '../../support/sqs-record.js';

/**
 * The two secrets through the handlers: the JWT secret of a deployed stage (its own Secrets Manager secret,
 * rotated with previousJwtSecrets), the master key's keyring (rotated with previousMasterKeys), and what a
 * malformed secret leaves in the logs. Rotation is a new secret value read by new containers (`lambdas.reset()`).
 */
// The boot log (what a failed build logs through) takes its level when it is imported: every level, here.
vi.hoisted(() => {
  process.env.LOG_LEVEL = 'DEBUG';
});
const store = { messages: fakeMessageLog(), positions: fakeDevicePositions() };
const lambdas = testLambdas(() => process.env, store);
const secrets = mockClient(SecretsManagerClient);
const JWT_SECRET_ID = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:jwt-AbCdEf';
const APP_SECRET_ID = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:app-AbCdEf';
const encode = (text: string) => new TextEncoder().encode(text);

let aws: AwsMocks;

beforeAll(async () => {
  applyEnv(completeEnv(inject('redisUrl'), { RATE_LIMIT_PER_SECOND: '1000', RATE_LIMIT_BURST: '1000' }));
  aws = await mockAws();
});
afterAll(async () => {
  await lambdas.reset();
  await aws.restore();
  secrets.restore();
  restoreEnv();
});
beforeEach(async () => {
  aws.reset();
  secrets.reset();
  // Each test names its secrets; a blank variable is unset.
  applyEnv({ APP_SECRET_JSON: TEST_SECRET_JSON, APP_SECRET_ID: '', JWT_SECRET_ID: '', LOG_LEVEL: 'SILENT' });
  await lambdas.reset();
});

/** The secret values Secrets Manager holds now, by id. */
function holds(values: Record<string, unknown>): void {
  secrets.reset();
  for (const [id, value] of Object.entries(values)) {
    secrets.on(GetSecretValueCommand, { SecretId: id }).resolves({ SecretString: typeof value === 'string' ? value : JSON.stringify(value) });
  }
}

describe('the JWT secret of a deployed stage (JWT_SECRET_ID)', () => {
  const OLD = 'old-jwt-secret-0123456789abcdefghijklmnop';
  const NEW = 'new-jwt-secret-0123456789abcdefghijklmnop';
  const connectWith = async (token: string, connectionId: string) =>
    (await lambdas.connect(connectEvent(connectionId, { token, clientId: 'phone' }))).statusCode;

  beforeEach(() => applyEnv({ JWT_SECRET_ID, APP_SECRET_JSON: '' }));

  it('is the only secret $connect reads, and tokens signed with it connect', async () => {
    holds({ [JWT_SECRET_ID]: { jwtSecret: OLD } });
    expect(await connectWith(await signToken(encode(OLD), 'alice'), 'C-1=')).toBe(200);
    expect(secrets.commandCalls(GetSecretValueCommand).map((call) => call.args[0].input.SecretId)).toEqual([JWT_SECRET_ID]);
  });

  it('rotates: during the overlap tokens of both secrets connect; once the previous one is dropped, its tokens are refused', async () => {
    holds({ [JWT_SECRET_ID]: { jwtSecret: OLD } });
    const issuedBefore = await signToken(encode(OLD), 'alice');
    expect(await connectWith(issuedBefore, 'C-1=')).toBe(200);

    // Step 1: the new secret signs, the old one still verifies.
    holds({ [JWT_SECRET_ID]: { jwtSecret: NEW, previousJwtSecrets: [OLD] } });
    await lambdas.reset();
    expect(await connectWith(issuedBefore, 'C-2=')).toBe(200);
    expect(await connectWith(await signToken(encode(NEW), 'bob'), 'C-3=')).toBe(200);

    // Step 2 (after the longest token lifetime): the previous secret goes.
    holds({ [JWT_SECRET_ID]: { jwtSecret: NEW } });
    await lambdas.reset();
    expect(await connectWith(issuedBefore, 'C-4=')).toBe(401);
    expect(await connectWith(await signToken(encode(NEW), 'bob'), 'C-5=')).toBe(200);
  });

  it('requires jwtSecret: a stage secret without one (a master key in its place) fails the build, never derived from', async () => {
    const masterKey = 'a-master-key-in-the-wrong-secret-0123456789';
    holds({ [JWT_SECRET_ID]: { masterKey } });
    const output = captureOutput();
    let status: number;
    try {
      applyEnv({ LOG_LEVEL: 'DEBUG' });
      status = (await lambdas.connect(connectEvent('C-1=', { token: await signToken(encode(masterKey), 'alice'), clientId: 'phone' }))).statusCode;
    } finally {
      output.stop();
    }
    expect(status).toBe(503);
    expect(output.text()).toMatch(/the JWT secret is invalid: jwtSecret: must be string/);
    expect(aws.connections.size).toBe(0);
  });

  it('remembers the token\'s exp on the connection record', async () => {
    holds({ [JWT_SECRET_ID]: { jwtSecret: OLD } });
    const before = Date.now();
    expect(await connectWith(await signToken(encode(OLD), 'alice', { ttlSeconds: 600 }), 'C-1=')).toBe(200);
    const tokenExpiresAt = Number(aws.connections.get('C-1=|#connection')?.tokenExpiresAt);
    expect(Math.abs(tokenExpiresAt - (before + 600_000))).toBeLessThan(2000);
  });
});

describe('master key rotation (previousMasterKeys)', () => {
  const K1 = 'first-master-key-0123456789abcdefghijklmnop';
  const K2 = 'second-master-key-0123456789abcdefghijklmno';

  async function sendAndRead(conversationId: string, clientMessageId: string) {
    const sent = await lambdas.sendMessage(messageEvent('A1', { action: 'sendMessage', conversationId, clientMessageId, body: `body ${clientMessageId}` }, 'sendMessage'));
    expect(sent.statusCode).toBe(200);
    return answerOf(await lambdas.getHistory(messageEvent('A1', { action: 'getHistory', conversationId }, 'getHistory')));
  }

  it('seals new messages under the new key while the old ones still open; without the old key they are undecryptable', async () => {
    // Prepare
    const conversationId = uniqueId('conv');
    aws.addMember(conversationId, 'alice');
    aws.connect({ connectionId: 'A1', userId: 'alice', deviceId: 'phone', conversationId });
    applyEnv({ APP_SECRET_JSON: JSON.stringify({ masterKey: K1 }) });
    await sendAndRead(conversationId, 'before');

    // Act: rotated (new containers read the new secret value), one more message.
    applyEnv({ APP_SECRET_JSON: JSON.stringify({ masterKey: K2, previousMasterKeys: [K1] }) });
    await lambdas.reset();
    const history = await sendAndRead(conversationId, 'after');

    // Assess: both open; each sealed body names its key.
    expect(history.messages).toEqual([
      expect.objectContaining({ seq: 1, body: 'body before' }),
      expect.objectContaining({ seq: 2, body: 'body after' }),
    ]);
    const [first, second] = await Promise.all([store.messages.get(conversationId, 1), store.messages.get(conversationId, 2)]);
    expect(first?.sealed.split('.')[1]).toBe(keyIdOf(Buffer.from(K1)));
    expect(second?.sealed.split('.')[1]).toBe(keyIdOf(Buffer.from(K2)));

    // Dropping the old key too early makes its messages unreadable (which is why step 2 waits for re-encryption
    // or the history retention): the others still open.
    applyEnv({ APP_SECRET_JSON: JSON.stringify({ masterKey: K2 }) });
    await lambdas.reset();
    const dropped = answerOf(await lambdas.getHistory(messageEvent('A1', { action: 'getHistory', conversationId }, 'getHistory')));
    expect(dropped.messages).toEqual([
      expect.objectContaining({ seq: 1, error: 'undecryptable' }),
      expect.objectContaining({ seq: 2, body: 'body after' }),
    ]);
  });
});

describe('a malformed secret', () => {
  /** Distinctive runs, so that any 4 characters of one of them in the logs is a leak. */
  const RUN_A = 'Qz7vXk2mWp9rLt4nHs8d';
  const RUN_B = 'Jf3yBc6gNu1eVa5oKi0w';
  const malformed: Record<string, string> = {
    'not JSON': `{"masterKey": "${RUN_A}${RUN_B}`,
    'bare text': `${RUN_A}${RUN_B}`,
    'a JSON string': JSON.stringify(`${RUN_A}${RUN_B}`),
    'a short key': JSON.stringify({ masterKey: RUN_A }),
    'a key of the wrong type': `{"masterKey": ${JSON.stringify([RUN_A, RUN_B])}}`,
    'previous keys as text': JSON.stringify({ masterKey: `${RUN_A}${RUN_B}`, previousMasterKeys: RUN_B }),
    'a short previous key': JSON.stringify({ masterKey: `${RUN_A}${RUN_B}`, previousMasterKeys: [RUN_B] }),
    'a short JWT secret': JSON.stringify({ masterKey: `${RUN_A}${RUN_B}`, jwtSecret: RUN_B }),
    'a misspelt field': JSON.stringify({ [RUN_A]: RUN_B }),
    'single quotes': `{'masterKey': '${RUN_A}${RUN_B}'}`,
  };
  const windows = [RUN_A, RUN_B].flatMap((run) => Array.from({ length: run.length - 3 }, (_, i) => run.slice(i, i + 4)));

  it.each(Object.keys(malformed))('%s: the error logs (at DEBUG) hold no 4 characters of it, inline or from Secrets Manager', async (name) => {
    const value = malformed[name] ?? '';
    const conversationId = uniqueId('conv');
    aws.addMember(conversationId, 'alice');
    aws.connect({ connectionId: 'A1', userId: 'alice', deviceId: 'phone', conversationId });
    const output = captureOutput();
    try {
      const environments: Record<string, string>[] = [
        { APP_SECRET_JSON: value, LOG_LEVEL: 'DEBUG' },
        { APP_SECRET_JSON: '', APP_SECRET_ID, JWT_SECRET_ID, LOG_LEVEL: 'DEBUG' },
      ];
      for (const env of environments) {
        applyEnv(env);
        holds({ [APP_SECRET_ID]: value, [JWT_SECRET_ID]: value });
        await lambdas.reset();
        const send = await lambdas.sendMessage(messageEvent('A1', { action: 'sendMessage', conversationId, clientMessageId: 'x', body: 'x' }, 'sendMessage'));
        expect(answerOf(send)).toMatchObject({ type: 'error', code: 'internal' });
        expect((await lambdas.connect(connectEvent('C-1=', { token: 'x.y.z', clientId: 'phone' }))).statusCode).toBe(503);
        const worker = await lambdas.fanoutWorker({ Records: [sqsRecord('w', JSON.stringify({ kind: 'read', conversationId, userId: 'a', seq: 1, at: 1, connectionIds: ['A1'] }))] });
        expect(worker.batchItemFailures).toEqual([{ itemIdentifier: 'w' }]);
      }
    } finally {
      output.stop();
    }
    const text = output.text();
    // The failures were logged (names the fields, so an operator can fix it)…
    expect(text).toMatch(/secret is (not JSON|invalid)/);
    // …and none of the secret's characters runs went with them.
    expect(windows.filter((window) => text.includes(window))).toEqual([]);
  });
});

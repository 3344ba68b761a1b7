import { GetSecretValueCommand, PutSecretValueCommand, ResourceNotFoundException, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import {
  CreatePlatformApplicationCommand,
  DeletePlatformApplicationCommand,
  NotFoundException,
  SNSClient,
  SetPlatformApplicationAttributesCommand,
} from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import webpush from 'web-push';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Scope } from '../../../lambdas/context/lazy.js';
import { generateVapidKeyPair, PushSetupError, route, type SetupResult } from '../../../lambdas/handlers/push-setup.js';
import type { Log } from '../../../lambdas/ports.js';

/** The push custom resources against aws-sdk-client-mock stand-ins of Secrets Manager and SNS. */
const VAPID_SECRET = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:VapidSecret-AbCdEf';
const APNS_SECRET = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:apns-credentials-AbCdEf';
const APP_ARN = 'arn:aws:sns:us-east-1:123456789012:app/APNS/relay-ws-dev-apns';
const SIGNING_KEY = '-----BEGIN PRIVATE KEY-----\nMIGTAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBHkwdwIBAQQg\n-----END PRIVATE KEY-----';

const secretsMock = mockClient(SecretsManagerClient);
const snsMock = mockClient(SNSClient);
let lines: string[];
let stored: Map<string, string>;

function recordingLog(): Log {
  const record = (message: string, fields?: Record<string, unknown>) => void lines.push(JSON.stringify({ message, ...fields }));
  return { debug: record, info: record, warn: record, error: record };
}

async function run(event: Record<string, unknown>): Promise<SetupResult> {
  const services = await route.build({ AWS_REGION: 'us-east-1', LOG_LEVEL: 'SILENT' }, new Scope(), {
    log: recordingLog(),
    secrets: new SecretsManagerClient({ region: 'us-east-1' }),
    sns: new SNSClient({ region: 'us-east-1' }),
  });
  return route.create(async () => services)(event);
}

const vapidEvent = (RequestType: string, extra: Record<string, unknown> = {}) => ({
  RequestType,
  ResourceProperties: { ServiceToken: 'arn:aws:lambda:…', Kind: 'vapidKeys', SecretId: VAPID_SECRET, Subject: 'mailto:ops@example.com' },
  ...extra,
});
const apnsEvent = (RequestType: string, extra: Record<string, unknown> = {}) => ({
  RequestType,
  ResourceProperties: { ServiceToken: 'arn:aws:lambda:…', Kind: 'platformApplication', Name: 'relay-ws-dev-apns', Platform: 'APNS', CredentialsSecretId: APNS_SECRET },
  ...extra,
});

beforeEach(() => {
  lines = [];
  stored = new Map();
  secretsMock.reset();
  snsMock.reset();
  secretsMock.on(GetSecretValueCommand).callsFake(async (input: { SecretId: string }) => {
    const value = stored.get(input.SecretId);
    if (value === undefined) throw new ResourceNotFoundException({ message: 'no such secret', $metadata: {} });
    return { SecretString: value };
  });
  secretsMock.on(PutSecretValueCommand).callsFake(async (input: { SecretId: string; SecretString: string }) => {
    stored.set(input.SecretId, input.SecretString);
    return {};
  });
});

afterEach(() => {
  // Whatever happened, no log line carries a key, a signing key or a credential.
  const logged = lines.join('\n');
  for (const value of stored.values()) {
    try {
      const parsed = JSON.parse(value) as Record<string, unknown>;
      for (const key of ['privateKey', 'signingKey']) {
        const secret = parsed[key];
        if (typeof secret === 'string') expect(logged).not.toContain(secret);
      }
    } catch {
      // not JSON: nothing of it to look for
    }
  }
  expect(logged).not.toContain('MIGTAgEA');
});

describe('vapidKeys', () => {
  it('generates a pair web-push accepts, answering only the public key', async () => {
    stored.set(VAPID_SECRET, JSON.stringify({ unset: 'x7Kq2' }));
    const result = await run(vapidEvent('Create'));
    const value = JSON.parse(stored.get(VAPID_SECRET) ?? '{}') as { publicKey: string; privateKey: string; subject: string };
    expect(value.subject).toBe('mailto:ops@example.com');
    expect(result.Data).toEqual({ PublicKey: value.publicKey });
    expect(JSON.stringify(result)).not.toContain(value.privateKey);
    // web-push validates both keys' sizes and signs a VAPID JWT with them.
    expect(() => webpush.setVapidDetails(value.subject, value.publicKey, value.privateKey)).not.toThrow();
    const request = webpush.generateRequestDetails(
      { endpoint: 'https://fcm.googleapis.com/fcm/send/x', keys: { p256dh: generateVapidKeyPair().publicKey, auth: 'aaaaaaaaaaaaaaaaaaaaaa' } },
      'hi',
      { vapidDetails: { subject: value.subject, publicKey: value.publicKey, privateKey: value.privateKey } },
    );
    expect(String(request.headers.Authorization)).toMatch(/^vapid t=/);
    expect(lines.some((l) => l.includes('"outcome":"generated"'))).toBe(true);
  });

  it('never replaces a valid pair (a new one would void every browser subscription); only the subject follows', async () => {
    const pair = generateVapidKeyPair();
    stored.set(VAPID_SECRET, JSON.stringify({ ...pair, subject: 'mailto:ops@example.com' }));
    for (const type of ['Create', 'Update']) {
      expect(await run(vapidEvent(type, type === 'Update' ? { PhysicalResourceId: 'vapid-keys:x' } : {}))).toMatchObject({ Data: { PublicKey: pair.publicKey } });
    }
    expect(secretsMock.commandCalls(PutSecretValueCommand)).toHaveLength(0);
    await run({ ...vapidEvent('Update'), ResourceProperties: { ...vapidEvent('Update').ResourceProperties, Subject: 'https://example.com/contact' } });
    expect(JSON.parse(stored.get(VAPID_SECRET) ?? '{}')).toEqual({ ...pair, subject: 'https://example.com/contact' });
  });

  it('replaces a malformed value, and does nothing on Delete', async () => {
    stored.set(VAPID_SECRET, JSON.stringify({ publicKey: 'short', privateKey: 'short', subject: 'mailto:a@b.c' }));
    await run(vapidEvent('Update', { PhysicalResourceId: 'vapid-keys:x' }));
    const value = JSON.parse(stored.get(VAPID_SECRET) ?? '{}') as { publicKey: string };
    expect(Buffer.from(value.publicKey, 'base64url')).toHaveLength(65);
    secretsMock.resetHistory();
    expect(await run(vapidEvent('Delete', { PhysicalResourceId: 'vapid-keys:x' }))).toEqual({ PhysicalResourceId: 'vapid-keys:x' });
    expect(secretsMock.calls()).toHaveLength(0);
  });

  it('makes a different pair each time', () => {
    expect(generateVapidKeyPair().privateKey).not.toBe(generateVapidKeyPair().privateKey);
  });
});

describe('platformApplication', () => {
  const credentials = { signingKey: SIGNING_KEY, keyId: 'ABC123DEFG', teamId: 'TEAM123456', bundleId: 'com.example.chat' };

  it('creates the application from the credentials secret, and answers its ARN', async () => {
    stored.set(APNS_SECRET, JSON.stringify(credentials));
    snsMock.on(CreatePlatformApplicationCommand).resolves({ PlatformApplicationArn: APP_ARN });
    expect(await run(apnsEvent('Create'))).toEqual({ PhysicalResourceId: APP_ARN, Data: { Arn: APP_ARN } });
    expect(snsMock.commandCalls(CreatePlatformApplicationCommand)[0]?.args[0].input).toEqual({
      Name: 'relay-ws-dev-apns',
      Platform: 'APNS',
      Attributes: { PlatformCredential: SIGNING_KEY, PlatformPrincipal: 'ABC123DEFG', ApplePlatformTeamID: 'TEAM123456', ApplePlatformBundleID: 'com.example.chat' },
    });
  });

  it('sets the new credentials on an update of the same application; a new platform makes a new one', async () => {
    stored.set(APNS_SECRET, JSON.stringify({ ...credentials, keyId: 'NEWKEY0000' }));
    snsMock.on(SetPlatformApplicationAttributesCommand).resolves({});
    expect(await run(apnsEvent('Update', { PhysicalResourceId: APP_ARN }))).toEqual({ PhysicalResourceId: APP_ARN, Data: { Arn: APP_ARN } });
    expect(snsMock.commandCalls(SetPlatformApplicationAttributesCommand)[0]?.args[0].input.Attributes?.PlatformPrincipal).toBe('NEWKEY0000');
    const sandbox = 'arn:aws:sns:us-east-1:123456789012:app/APNS_SANDBOX/relay-ws-dev-apns';
    snsMock.on(CreatePlatformApplicationCommand).resolves({ PlatformApplicationArn: sandbox });
    const event = apnsEvent('Update', { PhysicalResourceId: APP_ARN });
    expect(await run({ ...event, ResourceProperties: { ...event.ResourceProperties, Platform: 'APNS_SANDBOX' } })).toMatchObject({ PhysicalResourceId: sandbox });
  });

  it('takes FCM service account JSON as a string or an object', async () => {
    const fcmSecret = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:fcm-AbCdEf';
    stored.set(fcmSecret, JSON.stringify({ serviceAccount: { type: 'service_account', project_id: 'chat' } }));
    snsMock.on(CreatePlatformApplicationCommand).resolves({ PlatformApplicationArn: 'arn:aws:sns:us-east-1:123456789012:app/GCM/relay-ws-dev-fcm' });
    const event = apnsEvent('Create');
    await run({ ...event, ResourceProperties: { ...event.ResourceProperties, Name: 'relay-ws-dev-fcm', Platform: 'GCM', CredentialsSecretId: fcmSecret } });
    expect(snsMock.commandCalls(CreatePlatformApplicationCommand)[0]?.args[0].input.Attributes).toEqual({
      PlatformCredential: JSON.stringify({ type: 'service_account', project_id: 'chat' }),
    });
  });

  it('names a missing field of the credentials, never a value, and makes nothing', async () => {
    stored.set(APNS_SECRET, JSON.stringify({ ...credentials, teamId: '' }));
    const error = await run(apnsEvent('Create')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PushSetupError);
    expect(String(error)).toContain('has no "teamId"');
    expect(String(error)).not.toContain('MIGTAgEA');
    expect(snsMock.commandCalls(CreatePlatformApplicationCommand)).toHaveLength(0);
    stored.set(APNS_SECRET, 'not json');
    await expect(run(apnsEvent('Create'))).rejects.toThrow(/does not hold a JSON object/);
  });

  it('deletes the application, and a delete of one already gone succeeds', async () => {
    snsMock.on(DeletePlatformApplicationCommand).resolvesOnce({}).rejectsOnce(new NotFoundException({ message: 'gone', $metadata: {} }));
    expect(await run(apnsEvent('Delete', { PhysicalResourceId: APP_ARN }))).toEqual({ PhysicalResourceId: APP_ARN });
    expect(await run(apnsEvent('Delete', { PhysicalResourceId: APP_ARN }))).toEqual({ PhysicalResourceId: APP_ARN });
    expect(snsMock.commandCalls(DeletePlatformApplicationCommand)).toHaveLength(2);
    // A create that failed left a physical id that is no ARN: nothing to delete.
    await run(apnsEvent('Delete', { PhysicalResourceId: 'relay-ws-dev-apns' }));
    expect(snsMock.commandCalls(DeletePlatformApplicationCommand)).toHaveLength(2);
  });

  it('refuses an event that is not one of its custom resources', async () => {
    await expect(run({ RequestType: 'Create', ResourceProperties: { Kind: 'bucket' } })).rejects.toBeInstanceOf(PushSetupError);
  });
});

import { generateKeyPairSync } from 'node:crypto';
import { GetSecretValueCommand, PutSecretValueCommand, ResourceNotFoundException, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import {
  CreatePlatformApplicationCommand,
  DeletePlatformApplicationCommand,
  NotFoundException,
  SNSClient,
  SetPlatformApplicationAttributesCommand,
} from '@aws-sdk/client-sns';
import * as z from 'zod/mini';
import '../zod.js';
import { bootLog, createLog } from '../adapters/log.js';
import { loadConfig } from '../config.js';
import { credentialsOption } from '../context/credentials.js';
import { lambdaHandler, type Route, type ServiceSource } from '../context/lazy.js';
import { RelayError } from '../errors.js';
import type { Log } from '../ports.js';

/**
 * The CloudFormation custom resources of push notifications (lib/push-setup.ts), behind the CDK Provider framework:
 *
 * - `vapidKeys`: the stage's VAPID key pair. Create (and Update) generate a P-256 pair with node:crypto and write
 *   `{publicKey, privateKey, subject}` into the VAPID secret, unless it already holds a valid pair: a new pair
 *   would invalidate every browser's push subscription, so an existing one is never replaced (only its subject
 *   follows the stack's). Delete does nothing: the secret follows its own removal policy. Answers the public key
 *   (apps need it as `applicationServerKey`); the private key never leaves the secret.
 * - `platformApplication`: an SNS platform application for APNs or FCM, made from credentials the operator keeps
 *   in a Secrets Manager secret (CloudFormation has no resource for it). Create makes it, Update re-reads the
 *   credentials and sets them, Delete deletes it. Its ARN is the physical id.
 *
 * Logs and errors name the resource, the secret and which field is missing, never a value.
 */

export class PushSetupError extends RelayError {
  override readonly name = 'PushSetupError';
}

const vapidProperties = z.looseObject({
  Kind: z.literal('vapidKeys'),
  SecretId: z.string().check(z.minLength(1)),
  Subject: z.string().check(z.regex(/^(mailto:|https:\/\/)/)),
});
const platformProperties = z.looseObject({
  Kind: z.literal('platformApplication'),
  Name: z.string().check(z.regex(/^[A-Za-z0-9_.-]{1,256}$/)),
  Platform: z.enum(['APNS', 'APNS_SANDBOX', 'GCM']),
  CredentialsSecretId: z.string().check(z.minLength(1)),
  /** Changed by the operator (`-c pushCredentialsVersion=…`) to make CloudFormation re-read the credentials. */
  CredentialsVersion: z.optional(z.string()),
});

export const setupEventSchema = z.looseObject({
  RequestType: z.enum(['Create', 'Update', 'Delete']),
  PhysicalResourceId: z.optional(z.string()),
  ResourceProperties: z.union([vapidProperties, platformProperties]),
});
export type SetupEvent = z.output<typeof setupEventSchema>;

/** What the Provider framework hands back to CloudFormation. */
export interface SetupResult {
  PhysicalResourceId: string;
  Data?: Record<string, string>;
}

export interface PushSetupServices {
  log: Log;
  secrets: Pick<SecretsManagerClient, 'send'>;
  sns: Pick<SNSClient, 'send'>;
}

/** The VAPID keys as web-push takes them: the uncompressed public point (65 bytes) and the private scalar (32), base64url. */
export function generateVapidKeyPair(): { publicKey: string; privateKey: string } {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const jwk = privateKey.export({ format: 'jwk' });
  if (jwk.x === undefined || jwk.y === undefined || jwk.d === undefined) throw new PushSetupError('node:crypto made an incomplete P-256 key');
  const point = Buffer.concat([Buffer.from([0x04]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
  return { publicKey: point.toString('base64url'), privateKey: Buffer.from(jwk.d, 'base64url').toString('base64url') };
}

/** A stored pair is kept only if it decodes to a 65-byte uncompressed point and a 32-byte scalar. */
function validPair(value: unknown): { publicKey: string; privateKey: string } | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { publicKey, privateKey } = value as Record<string, unknown>;
  if (typeof publicKey !== 'string' || typeof privateKey !== 'string') return undefined;
  const base64url = /^[A-Za-z0-9_-]+$/;
  if (!base64url.test(publicKey) || !base64url.test(privateKey)) return undefined;
  const point = Buffer.from(publicKey, 'base64url');
  if (point.length !== 65 || point[0] !== 0x04 || Buffer.from(privateKey, 'base64url').length !== 32) return undefined;
  return { publicKey, privateKey };
}

async function secretJson(services: PushSetupServices, secretId: string): Promise<unknown> {
  let text: string | undefined;
  try {
    text = (await services.secrets.send(new GetSecretValueCommand({ SecretId: secretId }))).SecretString;
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return undefined;
    throw error;
  }
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

async function vapidKeys(services: PushSetupServices, event: SetupEvent, properties: z.output<typeof vapidProperties>): Promise<SetupResult> {
  const physicalId = event.PhysicalResourceId ?? `vapid-keys:${properties.SecretId}`;
  if (event.RequestType === 'Delete') return { PhysicalResourceId: physicalId };
  const stored = await secretJson(services, properties.SecretId);
  const kept = validPair(stored);
  const pair = kept ?? generateVapidKeyPair();
  const storedSubject = typeof stored === 'object' && stored !== null ? (stored as Record<string, unknown>).subject : undefined;
  if (kept === undefined || storedSubject !== properties.Subject) {
    await services.secrets.send(
      new PutSecretValueCommand({ SecretId: properties.SecretId, SecretString: JSON.stringify({ ...pair, subject: properties.Subject }) }),
    );
  }
  services.log.info('vapid keys', { secretId: properties.SecretId, outcome: kept === undefined ? 'generated' : 'kept', requestType: event.RequestType });
  return { PhysicalResourceId: physicalId, Data: { PublicKey: pair.publicKey } };
}

/** The platform application's attributes from the operator's credentials secret; names a missing field, never a value. */
async function platformAttributes(services: PushSetupServices, properties: z.output<typeof platformProperties>): Promise<Record<string, string>> {
  const stored = await secretJson(services, properties.CredentialsSecretId);
  if (typeof stored !== 'object' || stored === null) {
    throw new PushSetupError(`the credentials secret ${properties.CredentialsSecretId} does not hold a JSON object`);
  }
  const fields = stored as Record<string, unknown>;
  const text = (name: string): string => {
    const value = fields[name];
    if (typeof value === 'string' && value.trim() !== '') return value;
    if (name === 'serviceAccount' && typeof value === 'object' && value !== null) return JSON.stringify(value);
    throw new PushSetupError(`the credentials secret ${properties.CredentialsSecretId} has no "${name}"`);
  };
  if (properties.Platform === 'GCM') return { PlatformCredential: text('serviceAccount') };
  return {
    PlatformCredential: text('signingKey'),
    PlatformPrincipal: text('keyId'),
    ApplePlatformTeamID: text('teamId'),
    ApplePlatformBundleID: text('bundleId'),
  };
}

async function platformApplication(services: PushSetupServices, event: SetupEvent, properties: z.output<typeof platformProperties>): Promise<SetupResult> {
  const fields = { name: properties.Name, platform: properties.Platform, requestType: event.RequestType };
  const existing = event.PhysicalResourceId;
  if (event.RequestType === 'Delete') {
    if (existing !== undefined && existing.startsWith('arn:')) {
      try {
        await services.sns.send(new DeletePlatformApplicationCommand({ PlatformApplicationArn: existing }));
      } catch (error) {
        if (!(error instanceof NotFoundException)) throw error;
      }
    }
    services.log.info('platform application deleted', fields);
    return { PhysicalResourceId: existing ?? properties.Name };
  }
  const attributes = await platformAttributes(services, properties);
  // The same name and platform: set the new credentials on it. Another platform (sandbox ↔ production) or name: a
  // new application, and CloudFormation deletes the old one after (its physical id changed).
  const sameApp = existing !== undefined && existing.endsWith(`:app/${properties.Platform}/${properties.Name}`);
  if (event.RequestType === 'Update' && sameApp) {
    await services.sns.send(new SetPlatformApplicationAttributesCommand({ PlatformApplicationArn: existing, Attributes: attributes }));
    services.log.info('platform application updated', fields);
    return { PhysicalResourceId: existing, Data: { Arn: existing } };
  }
  const made = await services.sns.send(new CreatePlatformApplicationCommand({ Name: properties.Name, Platform: properties.Platform, Attributes: attributes }));
  const arn = made.PlatformApplicationArn;
  if (arn === undefined) throw new PushSetupError(`SNS answered no ARN for platform application ${properties.Name}`);
  services.log.info('platform application created', fields);
  return { PhysicalResourceId: arn, Data: { Arn: arn } };
}

export async function runSetup(services: PushSetupServices, event: SetupEvent): Promise<SetupResult> {
  const properties = event.ResourceProperties;
  return properties.Kind === 'vapidKeys' ? vapidKeys(services, event, properties) : platformApplication(services, event, properties);
}

export const route: Route<PushSetupServices, (event: unknown) => Promise<SetupResult>> = {
  async build(env, _scope, given = {}) {
    const config = loadConfig('pushSetup', env);
    const clientConfig = { region: config.AWS_REGION, ...credentialsOption(env) };
    return {
      log: given.log ?? createLog(config.LOG_LEVEL, 'relay-ws-push-setup'),
      secrets:
        given.secrets ??
        new SecretsManagerClient({ ...clientConfig, ...(config.SECRETS_ENDPOINT === undefined ? {} : { endpoint: config.SECRETS_ENDPOINT }) }),
      sns: given.sns ?? new SNSClient(clientConfig),
    };
  },
  create: (services: ServiceSource<PushSetupServices>) => async (event) => {
    const parsed = z.safeParse(setupEventSchema, event);
    if (!parsed.success) {
      bootLog.error('not a push setup event', { issues: parsed.error.issues.map((issue) => issue.path.join('.')) });
      throw new PushSetupError('not a custom resource event of the push setup');
    }
    const built = await services();
    try {
      return await runSetup(built, parsed.data);
    } catch (error) {
      // The name and our own message only (they never hold a value); an SDK error's message is the service's.
      built.log.error('push setup failed', {
        kind: parsed.data.ResourceProperties.Kind,
        requestType: parsed.data.RequestType,
        error: error instanceof PushSetupError ? error.message : error instanceof Error ? error.name : typeof error,
      });
      throw error;
    }
  },
};

export const handler = lambdaHandler(route);

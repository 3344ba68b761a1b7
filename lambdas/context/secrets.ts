import type { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import * as z from 'zod/mini';
import { SecretError } from '../errors.js';
import { appKeysFrom, jwtKeysFrom, type AppKeys, type JwtKeys } from '../secret.js';
import { credentialsOption } from './credentials.js';
import type { Env } from './lazy.js';

interface SecretsConfig {
  AWS_REGION: string;
  SECRETS_ENDPOINT?: string | undefined;
}

/**
 * Loaded on first use: most functions never read a secret from Secrets Manager at all (typing and ack only for an
 * external Redis's URL), and the module is a large share of a cold start.
 */
async function secretsProvider(config: SecretsConfig, env: Env): Promise<SecretsProvider> {
  const { SecretsProvider } = await import('@aws-lambda-powertools/parameters/secrets');
  return new SecretsProvider({
    clientConfig: {
      region: config.AWS_REGION,
      ...credentialsOption(env),
      ...(config.SECRETS_ENDPOINT === undefined ? {} : { endpoint: config.SECRETS_ENDPOINT }),
    },
  });
}

/** The app secret: from Secrets Manager, or inline JSON for local development. */
export async function readAppKeys(config: SecretsConfig & { APP_SECRET_ID?: string | undefined; APP_SECRET_JSON?: string | undefined }, env: Env): Promise<AppKeys> {
  if (config.APP_SECRET_ID === undefined) return appKeysFrom(config.APP_SECRET_JSON ?? '');
  return appKeysFrom(await (await secretsProvider(config, env)).get(config.APP_SECRET_ID));
}

/**
 * The HS256 secrets of connection tokens: a deployed stage's own JWT secret (JWT_SECRET_ID, where `jwtSecret` is
 * required), or for local development the inline APP_SECRET_JSON.
 */
export async function readJwtKeys(config: SecretsConfig & { JWT_SECRET_ID?: string | undefined; APP_SECRET_JSON?: string | undefined }, env: Env): Promise<JwtKeys> {
  if (config.JWT_SECRET_ID === undefined) return appKeysFrom(config.APP_SECRET_JSON ?? '');
  return jwtKeysFrom(await (await secretsProvider(config, env)).get(config.JWT_SECRET_ID));
}

const vapidSchema = z.object({
  publicKey: z.string().check(z.regex(/^[A-Za-z0-9_-]{80,100}$/)),
  privateKey: z.string().check(z.regex(/^[A-Za-z0-9_-]{40,50}$/)),
  subject: z.string().check(z.regex(/^(mailto:|https:\/\/)/)),
});

/**
 * The VAPID key pair of Web Push: inline JSON locally, else the stage's secret. Undefined while the secret holds
 * no key pair yet (the stack creates it empty and its PushSetup custom resource fills it during the same deploy;
 * docs/deploy.md, "Push notifications"): Web Push pushes fail until then.
 */
export async function readVapidKeys(
  config: SecretsConfig & { PUSH_VAPID_SECRET_ID?: string | undefined; PUSH_VAPID_JSON?: string | undefined },
  env: Env,
): Promise<{ publicKey: string; privateKey: string; subject: string } | undefined> {
  const value = config.PUSH_VAPID_SECRET_ID === undefined ? config.PUSH_VAPID_JSON : await (await secretsProvider(config, env)).get(config.PUSH_VAPID_SECRET_ID);
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof value === 'string' ? value : '');
  } catch {
    throw new SecretError('the VAPID secret is not JSON');
  }
  if (typeof parsed === 'object' && parsed !== null && !('privateKey' in parsed)) return undefined;
  const keys = z.safeParse(vapidSchema, parsed);
  if (!keys.success) throw new SecretError('the VAPID secret needs "publicKey", "privateKey" (base64url) and "subject" (mailto: or https:)');
  return keys.data;
}

const redisCredentialsSchema = z.object({ username: z.string().check(z.minLength(1)), password: z.string().check(z.minLength(1)) });

/**
 * The Redis URL: given (with the credentials of REDIS_AUTH_SECRET_ID added, for ElastiCache's app user), or the
 * value of a secret (an external Redis with a password). Read once per container, when its services are built,
 * and again after Redis refused the credentials (context/redis.ts): each call asks Secrets Manager (a provider of
 * its own, so no cached value), which is what a re-read after a rotation needs.
 */
export async function readRedisUrl(
  config: SecretsConfig & { REDIS_URL?: string | undefined; REDIS_URL_SECRET_ID?: string | undefined; REDIS_AUTH_SECRET_ID?: string | undefined },
  env: Env,
): Promise<string> {
  if (config.REDIS_URL !== undefined && config.REDIS_AUTH_SECRET_ID !== undefined) {
    const value = await (await secretsProvider(config, env)).get(config.REDIS_AUTH_SECRET_ID);
    return withCredentials(config.REDIS_URL, typeof value === 'string' ? value : '');
  }
  if (config.REDIS_URL !== undefined) return config.REDIS_URL;
  const value = await (await secretsProvider(config, env)).get(config.REDIS_URL_SECRET_ID ?? '');
  if (typeof value !== 'string' || value === '') throw new SecretError('the Redis URL secret is empty');
  return value;
}

/** `url` with the username and password of a `{"username", "password"}` secret; nothing of the value is ever in an error. */
export function withCredentials(url: string, secretValue: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(secretValue);
  } catch {
    throw new SecretError('the Redis credentials secret is not JSON');
  }
  const credentials = z.safeParse(redisCredentialsSchema, parsed);
  if (!credentials.success) throw new SecretError('the Redis credentials secret needs a "username" and a "password"');
  const withAuth = new URL(url);
  withAuth.username = encodeURIComponent(credentials.data.username);
  withAuth.password = encodeURIComponent(credentials.data.password);
  return withAuth.toString();
}

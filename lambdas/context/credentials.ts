import type { AwsCredentialIdentity } from '@smithy/types';
import type { Env } from './lazy.js';

/**
 * AWS credentials from a route's environment (Lambda puts the role's there; the local backend puts dummies in
 * its own env object), so no client falls back to probing for credentials on the network. Undefined: the
 * SDK's default chain.
 */
export function credentialsIn(env: Env): AwsCredentialIdentity | undefined {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (accessKeyId === undefined || secretAccessKey === undefined) return undefined;
  const sessionToken = env.AWS_SESSION_TOKEN;
  return { accessKeyId, secretAccessKey, ...(sessionToken === undefined ? {} : { sessionToken }) };
}

/** The `credentials` member of an SDK client's config, only when the environment has them. */
export function credentialsOption(env: Env): { credentials?: AwsCredentialIdentity } {
  const credentials = credentialsIn(env);
  return credentials === undefined ? {} : { credentials };
}

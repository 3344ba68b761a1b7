import { hkdfSync } from 'node:crypto';
import * as z from 'zod/mini';
import './zod.js';
import { SecretError } from './errors.js';

/**
 * The app secret (Secrets Manager in AWS, APP_SECRET_JSON locally):
 * `{"masterKey": string, "previousMasterKeys"?: string[], "jwtSecret"?: string}`.
 * `masterKey` is high-entropy text (the stack generates 64 characters); message keys are derived from it
 * with HKDF. After a rotation the old key moves to `previousMasterKeys`, so messages sealed under it still open
 * (each sealed body names its key). Without `jwtSecret`, the HS256 signing secret is derived from the master key.
 */
const key = z.string().check(z.minLength(32, 'must be at least 32 characters'));
export const appSecretSchema = z.object({
  masterKey: key,
  previousMasterKeys: z.optional(z.array(key).check(z.maxLength(10))),
  jwtSecret: z.optional(z.string().check(z.minLength(32, 'jwtSecret must be at least 32 characters'))),
});

export interface AppKeys {
  /** Input key material for per-conversation message keys: the current key first, then older ones. */
  masterKeys: Buffer[];
  /** HS256 secret for connection tokens. */
  jwtSecret: Uint8Array;
}

/** Parses the secret's value (an object, or its JSON text) into keys; the error names fields, never values. */
export function appKeysFrom(raw: unknown): AppKeys {
  let value = raw;
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw);
    } catch {
      // The parser's message quotes the text it choked on: part of the secret. Say only what is wrong.
      throw new SecretError('the app secret is not JSON');
    }
  }
  const parsed = appSecretSchema.safeParse(value);
  if (!parsed.success) {
    throw new SecretError(`the app secret is invalid: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; ')}`);
  }
  const masterKey = Buffer.from(parsed.data.masterKey, 'utf8');
  const previous = (parsed.data.previousMasterKeys ?? []).map((k) => Buffer.from(k, 'utf8'));
  const jwtSecret =
    parsed.data.jwtSecret === undefined
      ? new Uint8Array(hkdfSync('sha256', masterKey, Buffer.from('relay-ws/jwt/v1'), 'hs256-signing', 32))
      : new TextEncoder().encode(parsed.data.jwtSecret);
  return { masterKeys: [masterKey, ...previous], jwtSecret };
}

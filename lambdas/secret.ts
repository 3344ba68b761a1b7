import { hkdfSync } from 'node:crypto';
import * as z from 'zod/mini';
import './zod.js';
import { SecretError } from './errors.js';

/**
 * The two secrets, each rotatable on its own (docs/deploy.md, "Rotation"):
 *
 * - the app secret (Secrets Manager `APP_SECRET_ID`): `{"masterKey": string, "previousMasterKeys"?: string[]}`.
 *   `masterKey` is high-entropy text (the stack generates 64 characters); message keys are derived from it with
 *   HKDF. After a rotation the old key moves to `previousMasterKeys`, so messages sealed under it still open (each
 *   sealed body names its key) while new ones are sealed under the new key.
 * - the JWT secret (Secrets Manager `JWT_SECRET_ID`, read by `$connect` only): `{"jwtSecret": string,
 *   "previousJwtSecrets"?: string[]}`. Tokens are signed with `jwtSecret`; those signed with a previous secret
 *   are accepted until they expire. Whoever can mint tokens thus cannot open messages, and the reverse.
 *
 * Locally both may sit in one inline `APP_SECRET_JSON`; without `jwtSecret` there, the HS256 secret is derived
 * from the master key (local development only: a deployed stage always has its own JWT secret).
 */
const key = z.string().check(z.minLength(32, 'must be at least 32 characters'));
const jwtFields = {
  jwtSecret: key,
  previousJwtSecrets: z.optional(z.array(key).check(z.maxLength(10))),
};
export const appSecretSchema = z.object({
  masterKey: key,
  previousMasterKeys: z.optional(z.array(key).check(z.maxLength(10))),
  jwtSecret: z.optional(jwtFields.jwtSecret),
  previousJwtSecrets: jwtFields.previousJwtSecrets,
});
export const jwtSecretSchema = z.object(jwtFields);

export interface AppKeys {
  /** Input key material for per-conversation message keys: the current key first, then older ones. */
  masterKeys: Buffer[];
  /** HS256 secret new connection tokens are signed with. */
  jwtSecret: Uint8Array;
  /** Every HS256 secret a token may be signed with: `jwtSecret` first, then the previous ones. */
  jwtSecrets: Uint8Array[];
}

export type JwtKeys = Pick<AppKeys, 'jwtSecret' | 'jwtSecrets'>;

/**
 * Parses a secret's value (an object, or its JSON text). Every error names fields and rules, never a value:
 * JSON.parse quotes the text around where it choked, and zod's messages may quote what they were given, so
 * neither is passed on.
 */
function parse<T>(raw: unknown, schema: z.ZodMiniType<T>, what: string): T {
  let value = raw;
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw);
    } catch {
      throw new SecretError(`${what} is not JSON`);
    }
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'value'}: ${problemOf(issue)}`);
    throw new SecretError(`${what} is invalid: ${problems.join('; ')}`);
  }
  return parsed.data;
}

/** What is wrong with a field, from the issue's code alone (never its message, which may quote the input). */
function problemOf(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `must be ${issue.expected}`;
    case 'too_small':
      return issue.origin === 'string' ? `must be at least ${String(issue.minimum)} characters` : `must have at least ${String(issue.minimum)} items`;
    case 'too_big':
      return `must have at most ${String(issue.maximum)} items`;
    default:
      return 'is invalid';
  }
}

const utf8 = (text: string) => new TextEncoder().encode(text);

/** The app secret's keys (and, inline for local development, the JWT secret). */
export function appKeysFrom(raw: unknown): AppKeys {
  const secret = parse(raw, appSecretSchema, 'the app secret');
  const masterKey = Buffer.from(secret.masterKey, 'utf8');
  const previous = (secret.previousMasterKeys ?? []).map((k) => Buffer.from(k, 'utf8'));
  const jwtSecret =
    secret.jwtSecret === undefined
      ? new Uint8Array(hkdfSync('sha256', masterKey, Buffer.from('relay-ws/jwt/v1'), 'hs256-signing', 32))
      : utf8(secret.jwtSecret);
  return { masterKeys: [masterKey, ...previous], jwtSecret, jwtSecrets: [jwtSecret, ...(secret.previousJwtSecrets ?? []).map(utf8)] };
}

/** The JWT secret of a deployed stage: `jwtSecret` is required. */
export function jwtKeysFrom(raw: unknown): JwtKeys {
  const secret = parse(raw, jwtSecretSchema, 'the JWT secret');
  const jwtSecret = utf8(secret.jwtSecret);
  return { jwtSecret, jwtSecrets: [jwtSecret, ...(secret.previousJwtSecrets ?? []).map(utf8)] };
}

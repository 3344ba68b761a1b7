import { SignJWT } from 'jose';

export interface TokenOptions {
  ttlSeconds?: number;
  issuer?: string;
  audience?: string;
}

/** Signs an HS256 connection token (dev server, admin CLI, tests). */
export async function signToken(secret: Uint8Array, userId: string, options: TokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  let jwt = new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(userId)
    .setIssuedAt(now)
    .setExpirationTime(now + (options.ttlSeconds ?? 3600));
  if (options.issuer !== undefined) jwt = jwt.setIssuer(options.issuer);
  if (options.audience !== undefined) jwt = jwt.setAudience(options.audience);
  return jwt.sign(secret);
}

/** Parses a TTL such as `90s`, `15m`, `1h`, `7d` (or plain seconds). */
export function parseTtl(text: string): number {
  const match = /^(\d+)([smhd]?)$/.exec(text.trim());
  if (match === null) throw new RangeError(`invalid TTL "${text}": use e.g. 90s, 15m, 1h or 7d`);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[match[2] ?? ''] ?? 1;
  return Number(match[1]) * unit;
}

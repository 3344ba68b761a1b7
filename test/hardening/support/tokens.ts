import { SignJWT, UnsecuredJWT } from 'jose';

/** Connection tokens that must all be refused (401), each named for what is wrong with it. */
export async function badTokens(secret: Uint8Array, userId: string): Promise<Record<string, string>> {
  const now = Math.floor(Date.now() / 1000);
  const base = () => new SignJWT({}).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject(userId).setIssuedAt(now);
  const valid = await base().setExpirationTime(now + 3600).sign(secret);
  const [header = '', payload = ''] = valid.split('.');
  return {
    malformed: 'not.a.jwt',
    garbage: 'eyJhbGciOiJIUzI1NiJ9.%%%.###',
    truncated: valid.slice(0, valid.length - 10),
    'signature stripped': `${header}.${payload}.`,
    'alg none': new UnsecuredJWT({}).setSubject(userId).setIssuedAt(now).setExpirationTime(now + 3600).encode(),
    expired: await base().setExpirationTime(now - 60).sign(secret),
    'wrongly signed': await base().setExpirationTime(now + 3600).sign(new TextEncoder().encode('another-secret-of-at-least-32-bytes!!')),
    'without exp': await base().sign(secret),
    'without sub': await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuedAt(now).setExpirationTime(now + 3600).sign(secret),
    'not yet valid': await base().setNotBefore(now + 3600).setExpirationTime(now + 7200).sign(secret),
    'without iat': await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(userId).setExpirationTime(now + 3600).sign(secret),
    'issued in the future': await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(userId).setIssuedAt(now + 600).setExpirationTime(now + 3600).sign(secret),
    'exp 1e300': await base().setExpirationTime(1e300).sign(secret),
    'living longer than 24 h': await base().setExpirationTime(now + 24 * 3600 + 60).sign(secret),
    'HS512 with the right secret': await new SignJWT({}).setProtectedHeader({ alg: 'HS512' }).setSubject(userId).setExpirationTime(now + 3600).sign(secret),
  };
}

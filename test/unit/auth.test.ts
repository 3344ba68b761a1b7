import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenVerifier } from '../../lambdas/auth.js';
import { ConfigError } from '../../lambdas/errors.js';
import { signToken } from '../../local/tokens.js';

const secret = new TextEncoder().encode('s'.repeat(40));
const DAY = 86_400;
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** An HS256 token with exactly the claims given (no defaults). */
const tokenWith = (claims: { iat?: number; exp?: number; sub?: string }, key = secret) => {
  let jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256' });
  if (claims.sub !== undefined) jwt = jwt.setSubject(claims.sub);
  if (claims.iat !== undefined) jwt = jwt.setIssuedAt(claims.iat);
  if (claims.exp !== undefined) jwt = jwt.setExpirationTime(claims.exp);
  return jwt.sign(key);
};

describe('TokenVerifier (HS256)', () => {
  const verifier = new TokenVerifier({ hmacSecrets: [secret], maxTokenAgeSeconds: DAY });

  it('accepts a valid token and returns sub as the user, with its expiry', async () => {
    const token = await signToken(secret, 'alice', { ttlSeconds: 600 });
    const check = await verifier.verify(token);
    expect(check).toEqual({ ok: true, userId: 'alice', expiresAt: expect.any(Number) });
    if (!check.ok) throw new RangeError('refused');
    expect(Math.abs(check.expiresAt - (Date.now() + 600_000))).toBeLessThan(2000);
  });

  it('tells expired from invalid', async () => {
    expect(await verifier.verify(await signToken(secret, 'alice', { ttlSeconds: -60 }))).toEqual({ ok: false, reason: 'expired' });
    expect(await verifier.verify('garbage')).toEqual({ ok: false, reason: 'invalid' });
    expect(await verifier.verify(await signToken(new TextEncoder().encode('t'.repeat(40)), 'alice'))).toEqual({ ok: false, reason: 'invalid' });
  });

  it('requires exp, iat and sub', async () => {
    const now = nowSeconds();
    expect(await verifier.verify(await tokenWith({ sub: 'alice', iat: now }))).toEqual({ ok: false, reason: 'invalid' });
    expect(await verifier.verify(await tokenWith({ sub: 'alice', exp: now + 600 }))).toEqual({ ok: false, reason: 'invalid' });
    expect(await verifier.verify(await tokenWith({ iat: now, exp: now + 600 }))).toEqual({ ok: false, reason: 'invalid' });
    expect(await verifier.verify(await tokenWith({ sub: 'alice', iat: now, exp: now + 600 }))).toMatchObject({ ok: true });
  });

  it('refuses a token that lives longer than the maximum token age (exp - iat), however far its exp', async () => {
    const now = nowSeconds();
    expect(await verifier.verify(await tokenWith({ sub: 'alice', iat: now, exp: now + DAY }))).toMatchObject({ ok: true });
    expect(await verifier.verify(await tokenWith({ sub: 'alice', iat: now, exp: now + DAY + 1 }))).toEqual({ ok: false, reason: 'invalid' });
    expect(await verifier.verify(await tokenWith({ sub: 'alice', iat: now, exp: 1e300 }))).toMatchObject({ ok: false });
    // Issued long ago, still unexpired by its own exp: older than the maximum age, so refused.
    expect(await verifier.verify(await tokenWith({ sub: 'alice', iat: now - DAY - 120, exp: now + 60 }))).toMatchObject({ ok: false });
    const short = new TokenVerifier({ hmacSecrets: [secret], maxTokenAgeSeconds: 900 });
    expect(await short.verify(await signToken(secret, 'alice', { ttlSeconds: 3600 }))).toEqual({ ok: false, reason: 'invalid' });
    expect(await short.verify(await signToken(secret, 'alice', { ttlSeconds: 900 }))).toMatchObject({ ok: true });
  });

  it('tolerates an iat a little in the future (clock skew, 30 s), not more', async () => {
    const now = nowSeconds();
    expect(await verifier.verify(await tokenWith({ sub: 'alice', iat: now + 20, exp: now + 600 }))).toMatchObject({ ok: true });
    expect(await verifier.verify(await tokenWith({ sub: 'alice', iat: now + 120, exp: now + 600 }))).toEqual({ ok: false, reason: 'invalid' });
    expect(await verifier.verify(await tokenWith({ sub: 'alice', iat: now + 3600, exp: now + 7200 }))).toEqual({ ok: false, reason: 'invalid' });
  });

  it('accepts tokens signed with a previous secret (rotation) and signs nothing with it', async () => {
    const current = new TextEncoder().encode('n'.repeat(40));
    const rotated = new TokenVerifier({ hmacSecrets: [current, secret], maxTokenAgeSeconds: DAY });
    expect(await rotated.verify(await signToken(current, 'alice'))).toMatchObject({ ok: true, userId: 'alice' });
    expect(await rotated.verify(await signToken(secret, 'bob'))).toMatchObject({ ok: true, userId: 'bob' });
    // An expired token of the previous secret is still expired; a stranger's secret is still invalid.
    expect(await rotated.verify(await signToken(secret, 'bob', { ttlSeconds: -60 }))).toEqual({ ok: false, reason: 'expired' });
    expect(await rotated.verify(await signToken(new TextEncoder().encode('x'.repeat(40)), 'eve'))).toEqual({ ok: false, reason: 'invalid' });
    // Once the previous secret is dropped, its tokens are refused.
    const after = new TokenVerifier({ hmacSecrets: [current], maxTokenAgeSeconds: DAY });
    expect(await after.verify(await signToken(secret, 'bob'))).toEqual({ ok: false, reason: 'invalid' });
  });

  it('enforces issuer and audience when configured', async () => {
    const strict = new TokenVerifier({ hmacSecrets: [secret], issuer: 'https://issuer.example', audience: 'relay', maxTokenAgeSeconds: DAY });
    const good = await signToken(secret, 'alice', { issuer: 'https://issuer.example', audience: 'relay' });
    expect(await strict.verify(good)).toMatchObject({ ok: true, userId: 'alice' });
    expect(await strict.verify(await signToken(secret, 'alice', { issuer: 'https://evil.example', audience: 'relay' }))).toMatchObject({ ok: false });
    expect(await strict.verify(await signToken(secret, 'alice', { issuer: 'https://issuer.example', audience: 'other' }))).toMatchObject({ ok: false });
  });

  it('refuses alg none', async () => {
    const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'a', iat: nowSeconds(), exp: nowSeconds() + 60 })).toString('base64url')}.`;
    expect(await verifier.verify(unsigned)).toEqual({ ok: false, reason: 'invalid' });
  });
});

describe('TokenVerifier (JWKS, RS256)', () => {
  let server: Server;
  let url: string;
  let privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  const jwks = { issuer: 'https://id.example', audience: 'relay-ws', maxTokenAgeSeconds: DAY };

  beforeAll(async () => {
    const pair = await generateKeyPair('RS256');
    privateKey = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    server = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}/jwks.json`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const rs256 = (issuer: string, audience: string) =>
    new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setSubject('bob').setIssuer(issuer).setAudience(audience).setIssuedAt().setExpirationTime('1h').sign(privateKey);

  it('verifies against the JWKS, refuses HS256 tokens and tokens minted for another app', async () => {
    const verifier = new TokenVerifier({ hmacSecrets: [secret], jwksUrl: url, ...jwks });
    expect(await verifier.verify(await rs256(jwks.issuer, jwks.audience))).toMatchObject({ ok: true, userId: 'bob' });
    expect(await verifier.verify(await signToken(secret, 'bob', { issuer: jwks.issuer, audience: jwks.audience }))).toEqual({ ok: false, reason: 'invalid' });
    expect(await verifier.verify(await rs256(jwks.issuer, 'another-app'))).toEqual({ ok: false, reason: 'invalid' });
    expect(await verifier.verify(await rs256('https://other-id.example', jwks.audience))).toEqual({ ok: false, reason: 'invalid' });
  });

  it('requires an issuer and an audience', () => {
    expect(() => new TokenVerifier({ hmacSecrets: [], jwksUrl: url, maxTokenAgeSeconds: DAY })).toThrow(ConfigError);
    expect(() => new TokenVerifier({ hmacSecrets: [], jwksUrl: url, issuer: jwks.issuer, maxTokenAgeSeconds: DAY })).toThrow(/JWT_AUDIENCE/);
    expect(() => new TokenVerifier({ hmacSecrets: [], jwksUrl: url, audience: jwks.audience, maxTokenAgeSeconds: DAY })).toThrow(/JWT_ISSUER/);
  });
});

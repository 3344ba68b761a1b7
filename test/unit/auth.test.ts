import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenVerifier } from '../../lambdas/auth.js';
import { signToken } from '../../local/tokens.js';

const secret = new TextEncoder().encode('s'.repeat(40));

describe('TokenVerifier (HS256)', () => {
  const verifier = new TokenVerifier({ hmacSecret: secret });

  it('accepts a valid token and returns sub as the user', async () => {
    expect(await verifier.verify(await signToken(secret, 'alice'))).toEqual({ ok: true, userId: 'alice' });
  });

  it('tells expired from invalid', async () => {
    expect(await verifier.verify(await signToken(secret, 'alice', { ttlSeconds: -10 }))).toEqual({ ok: false, reason: 'expired' });
    expect(await verifier.verify('garbage')).toEqual({ ok: false, reason: 'invalid' });
    expect(await verifier.verify(await signToken(new TextEncoder().encode('t'.repeat(40)), 'alice'))).toEqual({ ok: false, reason: 'invalid' });
  });

  it('requires exp and sub', async () => {
    const noExp = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').sign(secret);
    const noSub = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(secret);
    expect(await verifier.verify(noExp)).toEqual({ ok: false, reason: 'invalid' });
    expect(await verifier.verify(noSub)).toEqual({ ok: false, reason: 'invalid' });
  });

  it('enforces issuer and audience when configured', async () => {
    const strict = new TokenVerifier({ hmacSecret: secret, issuer: 'https://issuer.example', audience: 'relay' });
    const good = await signToken(secret, 'alice', { issuer: 'https://issuer.example', audience: 'relay' });
    expect(await strict.verify(good)).toEqual({ ok: true, userId: 'alice' });
    expect(await strict.verify(await signToken(secret, 'alice', { issuer: 'https://evil.example', audience: 'relay' }))).toMatchObject({ ok: false });
    expect(await strict.verify(await signToken(secret, 'alice', { issuer: 'https://issuer.example', audience: 'other' }))).toMatchObject({ ok: false });
  });

  it('refuses alg none and an HS256 token when a JWKS is configured', async () => {
    const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'a', exp: 9999999999 })).toString('base64url')}.`;
    expect(await verifier.verify(unsigned)).toEqual({ ok: false, reason: 'invalid' });
  });
});

describe('TokenVerifier (JWKS, RS256)', () => {
  let server: Server;
  let url: string;
  let privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

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

  it('verifies against the JWKS and refuses HS256 tokens', async () => {
    const verifier = new TokenVerifier({ hmacSecret: secret, jwksUrl: url });
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setSubject('bob').setExpirationTime('1h').sign(privateKey);
    expect(await verifier.verify(token)).toEqual({ ok: true, userId: 'bob' });
    expect(await verifier.verify(await signToken(secret, 'bob'))).toEqual({ ok: false, reason: 'invalid' });
  });
});

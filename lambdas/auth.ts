import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { TokenCheck, TokenVerifier as TokenVerifierPort } from './ports.js';
import { isWellFormed } from './protocol.js';

/** Verifies connection tokens: `sub` is the user, `exp` is required; issuer/audience/JWKS when configured. */
export interface AuthSettings {
  hmacSecret: Uint8Array;
  jwksUrl?: string | undefined;
  issuer?: string | undefined;
  audience?: string | undefined;
}


export class TokenVerifier implements TokenVerifierPort {
  private readonly key: Uint8Array | JWTVerifyGetKey;
  private readonly algorithms: string[];

  constructor(private readonly settings: AuthSettings) {
    if (settings.jwksUrl !== undefined) {
      this.key = createRemoteJWKSet(new URL(settings.jwksUrl), { timeoutDuration: 3000, cooldownDuration: 30_000 });
      this.algorithms = ['RS256', 'ES256'];
    } else {
      this.key = settings.hmacSecret;
      this.algorithms = ['HS256'];
    }
  }

  async verify(token: string): Promise<TokenCheck> {
    try {
      const options = {
        algorithms: this.algorithms,
        requiredClaims: ['exp', 'sub'],
        ...(this.settings.issuer === undefined ? {} : { issuer: this.settings.issuer }),
        ...(this.settings.audience === undefined ? {} : { audience: this.settings.audience }),
      };
      const { payload } =
        this.key instanceof Uint8Array
          ? await jwtVerify(token, this.key, options)
          : await jwtVerify(token, this.key, options);
      const sub = payload.sub;
      // The user id becomes part of storage keys: it must survive UTF-8 unchanged.
      if (typeof sub !== 'string' || sub.length === 0 || sub.length > 256 || !isWellFormed(sub)) return { ok: false, reason: 'invalid' };
      return { ok: true, userId: sub };
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) return { ok: false, reason: 'expired' };
      if (error instanceof joseErrors.JWKSTimeout) return { ok: false, reason: 'unavailable' };
      return { ok: false, reason: 'invalid' };
    }
  }
}

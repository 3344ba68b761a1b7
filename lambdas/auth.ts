import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
import { ConfigError } from './errors.js';
import type { TokenCheck, TokenVerifier as TokenVerifierPort } from './ports.js';
import { isWellFormed } from './protocol.js';

/**
 * Verifies connection tokens: `sub` is the user; `exp` and `iat` are required, and the token may live at most
 * `maxTokenAgeSeconds` (exp - iat), so a token with `exp: 1e300` is refused. HS256 with the stage's JWT secrets
 * (the current one first, then those still accepted after a rotation), or RS256/ES256 from a JWKS — which
 * requires an issuer and an audience, else a token minted for another app of the same identity provider would
 * pass.
 */
export interface AuthSettings {
  hmacSecrets: readonly Uint8Array[];
  jwksUrl?: string | undefined;
  issuer?: string | undefined;
  audience?: string | undefined;
  maxTokenAgeSeconds: number;
  /** Clocks differ a little: an `iat` up to this far in the future (and an `exp` this far past) still passes. */
  clockToleranceSeconds?: number;
}

export const CLOCK_TOLERANCE_SECONDS = 30;

export class TokenVerifier implements TokenVerifierPort {
  private readonly keys: readonly (Uint8Array | JWTVerifyGetKey)[];
  private readonly options: JWTVerifyOptions;

  constructor(private readonly settings: AuthSettings) {
    if (settings.jwksUrl !== undefined) {
      const missing = (['issuer', 'audience'] as const).filter((name) => settings[name] === undefined);
      if (missing.length > 0) throw new ConfigError(missing.map((name) => `JWT_${name.toUpperCase()} is required with JWT_JWKS_URL`));
      this.keys = [createRemoteJWKSet(new URL(settings.jwksUrl), { timeoutDuration: 3000, cooldownDuration: 30_000 })];
    } else {
      if (settings.hmacSecrets.length === 0) throw new ConfigError(['no JWT secret']);
      this.keys = settings.hmacSecrets;
    }
    this.options = {
      algorithms: settings.jwksUrl === undefined ? ['HS256'] : ['RS256', 'ES256'],
      requiredClaims: ['exp', 'iat', 'sub'],
      // Measured from `iat`: also refuses an `iat` in the future beyond the tolerance.
      maxTokenAge: settings.maxTokenAgeSeconds,
      clockTolerance: settings.clockToleranceSeconds ?? CLOCK_TOLERANCE_SECONDS,
      ...(settings.issuer === undefined ? {} : { issuer: settings.issuer }),
      ...(settings.audience === undefined ? {} : { audience: settings.audience }),
    };
  }

  async verify(token: string): Promise<TokenCheck> {
    try {
      const payload = await this.payloadOf(token);
      const { sub, exp, iat } = payload;
      // The user id becomes part of storage keys: it must survive UTF-8 unchanged.
      if (typeof sub !== 'string' || sub.length === 0 || sub.length > 256 || !isWellFormed(sub)) return { ok: false, reason: 'invalid' };
      // jose checks both are numeric dates; a lifetime longer than the maximum is refused whatever `exp` says.
      if (typeof exp !== 'number' || typeof iat !== 'number' || exp - iat > this.settings.maxTokenAgeSeconds) return { ok: false, reason: 'invalid' };
      return { ok: true, userId: sub, expiresAt: exp * 1000 };
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) return { ok: false, reason: 'expired' };
      if (error instanceof joseErrors.JWKSTimeout) return { ok: false, reason: 'unavailable' };
      return { ok: false, reason: 'invalid' };
    }
  }

  /** Tries each key in turn: a signature that fails with the current secret may be a previous secret's. */
  private async payloadOf(token: string): Promise<JWTPayload> {
    let failure: unknown;
    for (const key of this.keys) {
      try {
        const { payload } = key instanceof Uint8Array ? await jwtVerify(token, key, this.options) : await jwtVerify(token, key, this.options);
        return payload;
      } catch (error) {
        if (!(error instanceof joseErrors.JWSSignatureVerificationFailed)) throw error;
        failure = error;
      }
    }
    throw failure;
  }
}

import type { ErrorFrame } from './protocol.js';

/**
 * Every error this code raises, in one small class tree, and the only two mappings used at the edges: to an
 * `error` frame (`errorFrameFor`) and to a handshake status (`handshakeStatusFor`). Each error carries a `name`
 * and, where another error caused it, a `cause`; messages never carry bodies, tokens or secrets.
 */
export type ErrorCode =
  | 'bad_request'
  | 'forbidden'
  | 'not_found'
  | 'payload_too_large'
  | 'rate_limited'
  | 'unavailable'
  | 'token_expired'
  | 'internal';

/** The base of every error of ours. */
export abstract class RelayError extends Error {}

/** An error with a wire code (PROTOCOL.md): the client gets its message. */
export abstract class DomainError extends RelayError {
  abstract readonly code: ErrorCode;
}

export class BadRequestError extends DomainError {
  override readonly name = 'BadRequestError';
  readonly code = 'bad_request';
}

export class ForbiddenError extends DomainError {
  override readonly name = 'ForbiddenError';
  readonly code = 'forbidden';
}

export class NotFoundError extends DomainError {
  override readonly name = 'NotFoundError';
  readonly code = 'not_found';
}

/** A member add would take a conversation past MAX_CONVERSATION_MEMBERS. */
export class ConversationFullError extends DomainError {
  override readonly name = 'ConversationFullError';
  readonly code = 'forbidden';
}

export class PayloadTooLargeError extends DomainError {
  override readonly name = 'PayloadTooLargeError';
  readonly code = 'payload_too_large';
}

export class RateLimitedError extends DomainError {
  override readonly name = 'RateLimitedError';
  readonly code = 'rate_limited';
  constructor(
    message = 'too many frames; slow down and retry',
    /** When known, how long until a retry can succeed (goes to the client as `retryAfterMs`). */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** A dependency (Redis, DynamoDB, SQS, the secret store) is down or timing out: the client may retry later. */
export class UnavailableError extends DomainError {
  override readonly name = 'UnavailableError';
  readonly code = 'unavailable';
}

/** The connection's token has expired since it connected: the client must reconnect with a fresh token. */
export class TokenExpiredError extends DomainError {
  override readonly name = 'TokenExpiredError';
  readonly code = 'token_expired';
  constructor(message = 'the connection token has expired; reconnect with a fresh token') {
    super(message);
  }
}

/** Why a $connect was refused; the status goes back on the handshake and nothing is written. */
export class HandshakeError extends RelayError {
  override readonly name = 'HandshakeError';
  constructor(
    readonly statusCode: 400 | 401 | 403 | 429 | 500 | 503,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The environment of a function is incomplete or invalid (names variables, never values). */
export class ConfigError extends RelayError {
  override readonly name = 'ConfigError';
  constructor(
    readonly problems: readonly string[],
    options?: { cause?: unknown },
  ) {
    super(`invalid configuration: ${problems.join('; ')}`, options);
  }
}

/** The app secret is missing or malformed (names fields, never values). */
export class SecretError extends RelayError {
  override readonly name = 'SecretError';
}

/** A sealed body did not open: wrong key, tampered, or not ours. */
export class DecryptionError extends RelayError {
  override readonly name = 'DecryptionError';
}

/** A stored record does not have the shape we write. */
export class CorruptRecordError extends RelayError {
  override readonly name = 'CorruptRecordError';
}

/** Redis could not be asked: the client is known to be disconnected, or the call outlived its deadline. */
export class RedisUnavailableError extends RelayError {
  override readonly name = 'RedisUnavailableError';
}

/** SQS refused to take a fan-out batch. */
export class FanoutRejectedError extends RelayError {
  override readonly name = 'FanoutRejectedError';
}

/** A queue record that is not a fan-out job: it can never succeed, so it goes to the DLQ. */
export class PoisonRecordError extends RelayError {
  override readonly name = 'PoisonRecordError';
}

/** A push service refused a push for a reason other than the target being gone (a bad key, a bad request). */
export class PushFailedError extends RelayError {
  override readonly name = 'PushFailedError';
}

/** An error's name and message for logs (our messages never carry bodies or tokens). */
export function errorSummary(error: unknown): { name: string; message: string } {
  return error instanceof Error ? { name: error.name, message: error.message } : { name: 'unknown', message: String(error) };
}

/** The summary of an error's cause, if it has one. */
export function causeSummary(error: unknown): { name: string; message: string } | undefined {
  return error instanceof Error && error.cause !== undefined ? errorSummary(error.cause) : undefined;
}

const GENERIC: Record<ErrorCode, string> = {
  bad_request: 'bad request',
  forbidden: 'forbidden',
  not_found: 'not found',
  payload_too_large: 'payload too large',
  rate_limited: 'too many frames; slow down and retry',
  token_expired: 'the connection token has expired; reconnect with a fresh token',
  unavailable: 'a dependency is unavailable; retry later',
  internal: 'internal error',
};

export function errorCodeOf(error: unknown): ErrorCode {
  if (error instanceof DomainError) return error.code;
  // The services of a route could not be built: bad configuration is ours to fix, anything else is retryable.
  if (error instanceof ServicesBuildError) return error.misconfigured ? 'internal' : 'unavailable';
  return 'internal';
}

/** The services of a route could not be built at this event; the next event builds them again. */
export class ServicesBuildError extends RelayError {
  override readonly name = 'ServicesBuildError';
  /** True when the environment or the secret is wrong (an operator must act); else a dependency was down. */
  readonly misconfigured: boolean;
  constructor(cause: unknown) {
    super('the services of this route could not be built', { cause });
    this.misconfigured = cause instanceof ConfigError || cause instanceof SecretError;
  }
}

/**
 * Mapping 1 of 2: any error to the `error` frame the client gets. Domain errors keep their message; a
 * misconfiguration says so without detail; anything else is `internal`.
 */
export function errorFrameFor(error: unknown, action?: string, requestId?: string): ErrorFrame {
  const code = errorCodeOf(error);
  let message = GENERIC[code];
  if (error instanceof DomainError && error.message !== '') message = error.message;
  else if (error instanceof ServicesBuildError) {
    message = error.misconfigured
      ? 'the service is misconfigured; the operator has been told'
      : 'the service is starting or a dependency is down; retry later';
  }
  return {
    type: 'error',
    code,
    message,
    ...(action === undefined ? {} : { action }),
    ...(requestId === undefined ? {} : { requestId }),
    ...(error instanceof RateLimitedError && error.retryAfterMs !== undefined ? { retryAfterMs: error.retryAfterMs } : {}),
  };
}

/** Mapping 2 of 2: any error to the status and reason of a refused handshake. */
export function handshakeRefusalFor(error: unknown): HandshakeError {
  if (error instanceof HandshakeError) return error;
  if (error instanceof RateLimitedError) return new HandshakeError(429, error.message, { cause: error });
  if (error instanceof UnavailableError || error instanceof ServicesBuildError) {
    return new HandshakeError(503, 'service unavailable, retry later', { cause: error });
  }
  return new HandshakeError(500, 'internal error', { cause: error });
}

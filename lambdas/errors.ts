/**
 * Errors the domain raises, one class per wire error code (PROTOCOL.md). Each carries a `name` and, where
 * another error caused it, a `cause`. Handlers map them to `error` frames; anything else becomes `internal`.
 */
export type ErrorCode =
  | 'bad_request'
  | 'forbidden'
  | 'not_found'
  | 'payload_too_large'
  | 'rate_limited'
  | 'unavailable'
  | 'internal';

export abstract class DomainError extends Error {
  abstract readonly code: ErrorCode;
}

export class ForbiddenError extends DomainError {
  override readonly name = 'ForbiddenError';
  readonly code = 'forbidden';
}

export class PayloadTooLargeError extends DomainError {
  override readonly name = 'PayloadTooLargeError';
  readonly code = 'payload_too_large';
}

export class RateLimitedError extends DomainError {
  override readonly name = 'RateLimitedError';
  readonly code = 'rate_limited';
  constructor(message = 'too many frames; slow down and retry') {
    super(message);
  }
}

/** A dependency (Redis, DynamoDB, SQS, the secret store) is down or timing out: the client may retry later. */
export class UnavailableError extends DomainError {
  override readonly name = 'UnavailableError';
  readonly code = 'unavailable';
}

/** Why a $connect was refused; the status goes back on the handshake and nothing is written. */
export class HandshakeError extends Error {
  override readonly name = 'HandshakeError';
  constructor(
    readonly statusCode: 400 | 401 | 403 | 500 | 503,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function errorCodeOf(error: unknown): ErrorCode {
  return error instanceof DomainError ? error.code : 'internal';
}

import type { ErrorCode } from './protocol.js';

/**
 * What a client call can fail with: the server's error codes (an `error` frame answering the request), or the
 * client's own: `timeout` (no answer in time), `disconnected` (the connection dropped before the answer),
 * `closed` (the app closed the client), `listener_failed` (an app listener threw; reported on `error`).
 */
export type RelayClientErrorCode = ErrorCode | 'timeout' | 'disconnected' | 'closed' | 'listener_failed';

export class RelayClientError extends Error {
  override readonly name = 'RelayClientError';

  constructor(
    readonly code: RelayClientErrorCode,
    message: string,
    /**
     * The action the failed frame named and its requestId, when known; `retryAfterMs` when the server said how
     * long until the same frame can succeed (`rate_limited` by a fan-out budget).
     */
    readonly details: { action?: string; requestId?: string; retryAfterMs?: number } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

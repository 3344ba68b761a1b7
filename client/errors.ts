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
    /** The action the failed frame named and its requestId, when known. */
    readonly details: { action?: string; requestId?: string } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

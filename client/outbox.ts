import { backoffDelay, type BackoffOptions, type Timers } from './connection.js';
import { RelayClientError, type RelayClientErrorCode } from './errors.js';
import type { Requests } from './requests.js';
import type { SentFrame } from './protocol.js';

/**
 * Failures after which the same clientMessageId is sent again: the server stores it once either way. After
 * `token_expired` the client reconnects with a fresh token, and the resend waits for that.
 */
const RESEND_ON: ReadonlySet<RelayClientErrorCode> = new Set(['unavailable', 'timeout', 'rate_limited', 'token_expired']);

export interface OutboxOptions {
  requests: Requests;
  timers: Timers;
  backoff: BackoffOptions;
  random: () => number;
  newClientMessageId: () => string;
  /** Attempts per message before `send` rejects with the last error. */
  maxAttempts: number;
}

interface Outgoing {
  conversationId: string;
  clientMessageId: string;
  body: string;
  attempts: number;
  requestId: string | undefined;
  retryTimer: unknown;
  resolve(sent: SentFrame): void;
  reject(error: RelayClientError): void;
}

/**
 * Messages on their way out. Each has one clientMessageId for all its attempts, so however often it is resent
 * (after `unavailable`, a timeout, a reconnect) the server stores one message. A message sent while offline
 * waits (a `ready` request) and goes out once the connection is back and resubscribed.
 */
export class Outbox {
  private readonly outgoing = new Map<string, Outgoing>();

  constructor(private readonly options: OutboxOptions) {}

  send(conversationId: string, body: string): Promise<SentFrame> {
    return new Promise((resolve, reject) => {
      const message: Outgoing = {
        conversationId,
        clientMessageId: this.options.newClientMessageId(),
        body,
        attempts: 0,
        requestId: undefined,
        retryTimer: undefined,
        resolve,
        reject,
      };
      this.outgoing.set(message.clientMessageId, message);
      this.attempt(message);
    });
  }

  /** A `sent` frame for one of ours, from any attempt (a late answer of an earlier one counts): it is stored. */
  settle(sent: SentFrame): boolean {
    const message = this.outgoing.get(sent.clientMessageId);
    if (message === undefined || message.conversationId !== sent.conversationId) return false;
    this.finish(message);
    message.resolve(sent);
    return true;
  }

  closeAll(): void {
    for (const message of [...this.outgoing.values()]) {
      this.finish(message);
      message.reject(new RelayClientError('closed', 'the client was closed before the message was stored', { action: 'sendMessage' }));
    }
  }

  private attempt(message: Outgoing): void {
    message.attempts += 1;
    const requestId = this.options.requests.newRequestId();
    message.requestId = requestId;
    const frame = { action: 'sendMessage', conversationId: message.conversationId, clientMessageId: message.clientMessageId, body: message.body };
    this.options.requests.request(frame, ['sent'], 'ready', requestId).then(
      (sent) => this.settle(sent),
      (error: unknown) => this.failed(message, error),
    );
  }

  private failed(message: Outgoing, error: unknown): void {
    if (this.outgoing.get(message.clientMessageId) !== message) return;
    const failure = error instanceof RelayClientError ? error : new RelayClientError('internal', String(error), { action: 'sendMessage' });
    if (!RESEND_ON.has(failure.code) || message.attempts >= this.options.maxAttempts) {
      this.finish(message);
      message.reject(failure);
      return;
    }
    // Never sooner than the server said the same frame can succeed (a fan-out budget's wait).
    const delayMs = Math.max(backoffDelay(message.attempts - 1, this.options.backoff, this.options.random), failure.details.retryAfterMs ?? 0);
    message.retryTimer = this.options.timers.setTimeout(() => this.attempt(message), delayMs);
  }

  private finish(message: Outgoing): void {
    this.options.timers.clearTimeout(message.retryTimer);
    if (message.requestId !== undefined) this.options.requests.cancel(message.requestId);
    this.outgoing.delete(message.clientMessageId);
  }
}

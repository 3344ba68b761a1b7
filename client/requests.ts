import { RelayClientError } from './errors.js';
import type { Timers } from './connection.js';
import type { IncomingFrame, OutgoingFrame } from './protocol.js';

/**
 * When a request may go out: `open` needs only a socket (the resubscribe itself, gap fills, acks: they are redone
 * after a reconnect anyway, so a drop rejects them with `disconnected`); `ready` waits until the connection is
 * resubscribed and is sent again after a drop (the app's requests: reads, and writes the server dedupes).
 */
export type Gate = 'open' | 'ready';

export interface RequestIo {
  transmit(frame: OutgoingFrame): boolean;
  isOpen(): boolean;
  isReady(): boolean;
  timers: Timers;
  timeoutMs: number;
}

interface Pending {
  frame: OutgoingFrame & { requestId: string };
  answers: readonly string[];
  gate: Gate;
  inFlight: boolean;
  timer: unknown;
  resolve(frame: IncomingFrame): void;
  reject(error: RelayClientError): void;
}

type AnswerOf<T extends IncomingFrame['type']> = Extract<IncomingFrame, { type: T }>;

/** Requests matched to their answers by `requestId` (the server echoes it on every answer, `error` included). */
export class Requests {
  private readonly pending = new Map<string, Pending>();
  private counter = 0;

  constructor(private readonly io: RequestIo) {}

  newRequestId(): string {
    this.counter += 1;
    return `r${this.counter}`;
  }

  /** Sends `frame` (with a requestId of its own) and resolves with its answer of one of the `answers` types. */
  request<T extends IncomingFrame['type']>(frame: OutgoingFrame, answers: readonly T[], gate: Gate, requestId = this.newRequestId()): Promise<AnswerOf<T>> {
    return new Promise<AnswerOf<T>>((resolve, reject) => {
      if (gate === 'open' && !this.io.isOpen()) {
        reject(new RelayClientError('disconnected', 'not connected', { action: frame.action, requestId }));
        return;
      }
      const pending: Pending = {
        frame: { ...frame, requestId },
        answers,
        gate,
        inFlight: false,
        timer: undefined,
        resolve: (answer) => resolve(answer as AnswerOf<T>),
        reject,
      };
      this.pending.set(requestId, pending);
      if (gate === 'open' || this.io.isReady()) this.transmit(pending);
    });
  }

  /** Settles the request `frame` answers, if any; true when it did. */
  settle(frame: IncomingFrame): boolean {
    const requestId = 'requestId' in frame ? frame.requestId : undefined;
    if (requestId === undefined) return false;
    const pending = this.pending.get(requestId);
    if (pending === undefined || !pending.inFlight) return false;
    if (frame.type === 'error') {
      this.finish(requestId, pending);
      const retryAfterMs = typeof frame.retryAfterMs === 'number' && frame.retryAfterMs > 0 ? { retryAfterMs: frame.retryAfterMs } : {};
      pending.reject(new RelayClientError(frame.code, frame.message, { action: frame.action ?? pending.frame.action, requestId, ...retryAfterMs }));
      return true;
    }
    if (!pending.answers.includes(frame.type)) return false;
    this.finish(requestId, pending);
    pending.resolve(frame);
    return true;
  }

  /** Forgets a request (its answer no longer matters); it settles never. */
  cancel(requestId: string): void {
    const pending = this.pending.get(requestId);
    if (pending !== undefined) this.finish(requestId, pending);
  }

  /** The connection is resubscribed: what waits goes out, in the order it was asked. */
  flush(): void {
    for (const pending of [...this.pending.values()]) if (!pending.inFlight) this.transmit(pending);
  }

  /** The socket dropped: `ready` requests wait to go out again; `open` ones are rejected. */
  dropped(): void {
    for (const [requestId, pending] of [...this.pending]) {
      if (pending.gate === 'ready') {
        this.io.timers.clearTimeout(pending.timer);
        pending.inFlight = false;
        continue;
      }
      this.finish(requestId, pending);
      pending.reject(new RelayClientError('disconnected', 'the connection dropped before the answer', { action: pending.frame.action, requestId }));
    }
  }

  /** The client closed: nothing will be answered. */
  closeAll(): void {
    for (const [requestId, pending] of [...this.pending]) {
      this.finish(requestId, pending);
      pending.reject(new RelayClientError('closed', 'the client was closed', { action: pending.frame.action, requestId }));
    }
  }

  private transmit(pending: Pending): void {
    if (!this.io.transmit(pending.frame)) {
      if (pending.gate === 'open') {
        this.finish(pending.frame.requestId, pending);
        pending.reject(new RelayClientError('disconnected', 'not connected', { action: pending.frame.action, requestId: pending.frame.requestId }));
      }
      return;
    }
    pending.inFlight = true;
    pending.timer = this.io.timers.setTimeout(() => {
      if (this.pending.get(pending.frame.requestId) !== pending) return;
      this.finish(pending.frame.requestId, pending);
      pending.reject(new RelayClientError('timeout', `no answer within ${this.io.timeoutMs} ms`, { action: pending.frame.action, requestId: pending.frame.requestId }));
    }, this.io.timeoutMs);
  }

  private finish(requestId: string, pending: Pending): void {
    this.io.timers.clearTimeout(pending.timer);
    this.pending.delete(requestId);
  }
}

/** One socket at a time to the gateway, reopened with capped exponential backoff and full jitter. */

/** A received frame, as both the browser's WebSocket and `ws` give it. */
export interface MessageEventLike {
  readonly data: unknown;
}
export interface CloseEventLike {
  readonly code: number;
  readonly reason: string;
}
/** Method-style parameters are checked both ways, so `ws`'s and the DOM's own event types both fit. */
type Handler<E> = { handle(event: E): void }['handle'];

/** The part of the WebSocket API the client uses (the browser's `WebSocket`, or `ws` in Node). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<unknown> | null;
  onmessage: Handler<MessageEventLike> | null;
  onclose: Handler<CloseEventLike> | null;
  onerror: Handler<unknown> | null;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** The clock the client schedules with; tests pass their own. */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  now(): number;
}

export const systemTimers: Timers = {
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as Parameters<typeof globalThis.clearTimeout>[0]),
  now: () => Date.now(),
};

export interface BackoffOptions {
  /** The first retry waits up to this long (ms). @default 500 */
  baseMs: number;
  /** No retry waits longer than this (ms). @default 30000 */
  capMs: number;
}

/** Full jitter: uniform in [0, min(cap, base · 2^attempt)), so reconnecting clients spread out. */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number): number {
  const ceiling = Math.min(options.capMs, options.baseMs * 2 ** attempt);
  return Math.floor(random() * ceiling);
}

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface ConnectionEvents {
  connecting: { attempt: number };
  open: { attempt: number };
  /** The connection is down; the next attempt starts after `delayMs`. */
  reconnecting: { attempt: number; delayMs: number; reason: string; code?: number };
  closed: { reason: string; code?: number };
}

export interface ConnectionOptions {
  url: string;
  clientId: string;
  /** Called before every attempt, so a reconnect presents a fresh token. */
  token: () => string | Promise<string>;
  WebSocket: WebSocketConstructor;
  backoff: BackoffOptions;
  random: () => number;
  timers: Timers;
  /** A `ping` goes out this often while open (API Gateway closes a connection idle for 10 minutes). */
  pingIntervalMs: number;
}

export interface ConnectionHooks {
  state<K extends keyof ConnectionEvents>(name: K, event: ConnectionEvents[K]): void;
  opened(): void;
  frame(data: unknown): void;
  /** The open socket went away (or the app closed it). */
  dropped(): void;
}

const OPEN = 1;

export class Connection {
  private socket: WebSocketLike | undefined;
  private current: ConnectionState = 'idle';
  /** Attempts since the last open: the backoff exponent. */
  private failures = 0;
  private attempts = 0;
  private retryTimer: unknown;
  private pingTimer: unknown;

  constructor(
    private readonly options: ConnectionOptions,
    private readonly hooks: ConnectionHooks,
  ) {}

  get state(): ConnectionState {
    return this.current;
  }

  get isOpen(): boolean {
    return this.current === 'open' && this.socket?.readyState === OPEN;
  }

  /** Read through a getter: `close()` may run while an attempt awaits its token. */
  private get stopped(): boolean {
    return this.current === 'closed';
  }

  start(): void {
    if (this.current === 'idle') void this.attempt();
  }

  /** Sends one text frame; false when there is no open socket (the caller keeps it for later). */
  send(text: string): boolean {
    if (!this.isOpen || this.socket === undefined) return false;
    try {
      this.socket.send(text);
      return true;
    } catch {
      return false;
    }
  }

  /** Drops the socket on purpose (e.g. a resubscribe failed): it reconnects as after any drop. */
  restart(reason: string): void {
    const socket = this.socket;
    if (socket === undefined) return;
    this.detach(socket);
    socket.close(4000, reason);
    this.hooks.dropped();
    this.scheduleRetry(reason);
  }

  close(): void {
    if (this.current === 'closed') return;
    const wasConnected = this.socket !== undefined;
    this.current = 'closed';
    this.options.timers.clearTimeout(this.retryTimer);
    if (this.socket !== undefined) {
      const socket = this.socket;
      this.detach(socket);
      socket.close(1000, 'closed by the app');
    }
    if (wasConnected) this.hooks.dropped();
    this.hooks.state('closed', { reason: 'closed by the app' });
  }

  private async attempt(): Promise<void> {
    this.attempts += 1;
    const attempt = this.attempts;
    this.current = 'connecting';
    this.hooks.state('connecting', { attempt });
    let token: string;
    try {
      token = await this.options.token();
    } catch (error) {
      if (!this.stopped) this.scheduleRetry(`the token provider failed: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    if (this.stopped) return;
    const url = new URL(this.options.url);
    url.searchParams.set('token', token);
    url.searchParams.set('clientId', this.options.clientId);
    let socket: WebSocketLike;
    try {
      socket = new this.options.WebSocket(url.toString());
    } catch (error) {
      this.scheduleRetry(`could not open a socket: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    this.socket = socket;
    let opened = false;
    socket.onopen = () => {
      opened = true;
      this.failures = 0;
      this.current = 'open';
      this.hooks.state('open', { attempt });
      this.schedulePing();
      this.hooks.opened();
    };
    socket.onmessage = (event) => this.hooks.frame(event.data);
    socket.onerror = () => undefined; // a close event follows, with the code
    socket.onclose = (event) => {
      this.detach(socket);
      if (opened) this.hooks.dropped();
      const reason = opened ? `closed ${event.code}${event.reason === '' ? '' : `: ${event.reason}`}` : `refused or unreachable (${event.code})`;
      this.scheduleRetry(reason, event.code);
    };
  }

  private detach(socket: WebSocketLike): void {
    socket.onopen = null;
    socket.onmessage = null;
    socket.onclose = null;
    socket.onerror = () => undefined;
    if (this.socket === socket) this.socket = undefined;
    this.options.timers.clearTimeout(this.pingTimer);
  }

  private scheduleRetry(reason: string, code?: number): void {
    if (this.current === 'closed') return;
    const delayMs = backoffDelay(this.failures, this.options.backoff, this.options.random);
    this.failures += 1;
    this.current = 'reconnecting';
    this.hooks.state('reconnecting', { attempt: this.attempts + 1, delayMs, reason, ...(code === undefined ? {} : { code }) });
    this.retryTimer = this.options.timers.setTimeout(() => void this.attempt(), delayMs);
  }

  private schedulePing(): void {
    this.pingTimer = this.options.timers.setTimeout(() => {
      if (this.send(JSON.stringify({ action: 'ping' }))) this.schedulePing();
    }, this.options.pingIntervalMs);
  }
}

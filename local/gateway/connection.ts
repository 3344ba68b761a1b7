import type { Duplex } from 'node:stream';
import { WebSocket, type RawData } from 'ws';
import type { ConnectionFacts } from './events.js';
import { FrameSizeMonitor } from './frames.js';
import type { ManagedConnection } from './management.js';

/** How long a server-initiated close waits for the client's close frame before dropping the TCP connection. */
const CLOSE_GRACE_MS = 1_000;

export const GOING_AWAY = { code: 1001, reason: 'Going away' } as const;

export interface CloseInfo {
  code: number;
  reason: string;
}

export interface ConnectionLimits {
  idleTimeoutMs: number;
  maxConnectionMs: number;
  maxFrameBytes: number;
  maxMessageBytes: number;
}

export interface ConnectionHooks {
  onText(connection: Connection, text: string): void;
  /** Called exactly once, after the socket is fully closed, with the code and reason `$disconnect` should report. */
  onClosed(connection: Connection, close: CloseInfo): void;
}

function rawDataToBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** `ws` errors carry the close code it sends under a private symbol; read it without depending on the symbol. */
function wsErrorCloseCode(error: Error): number {
  for (const key of Object.getOwnPropertySymbols(error)) {
    if (key.description !== 'status-code') continue;
    const value: unknown = Object.getOwnPropertyDescriptor(error, key)?.value;
    if (typeof value === 'number') return value;
  }
  const code = 'code' in error ? error.code : undefined;
  if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') return 1009;
  if (code === 'WS_ERR_INVALID_UTF8') return 1007;
  return 1002;
}

/** One accepted WebSocket: its timers, limits and the once-only close bookkeeping. */
export class Connection implements ManagedConnection {
  readonly connectionId: string;
  readonly connectedAt: number;
  readonly sourceIp: string;
  readonly userAgent: string | undefined;
  lastActiveAt: number;
  private serverClose: CloseInfo | undefined;
  private finished = false;
  private readonly idleTimer: NodeJS.Timeout;
  private readonly lifetimeTimer: NodeJS.Timeout;
  private graceTimer: NodeJS.Timeout | undefined;
  private markClosed: () => void = () => undefined;
  /** Settles once the socket is closed and `onClosed` has run. */
  readonly closed: Promise<void>;

  constructor(
    readonly facts: ConnectionFacts,
    private readonly ws: WebSocket,
    socket: Duplex,
    limits: ConnectionLimits,
    private readonly hooks: ConnectionHooks,
  ) {
    this.connectionId = facts.connectionId;
    this.connectedAt = facts.connectedAt;
    this.sourceIp = facts.identity.sourceIp;
    this.userAgent = facts.identity.userAgent;
    this.lastActiveAt = facts.connectedAt;
    this.closed = new Promise((resolve) => {
      this.markClosed = resolve;
    });

    this.idleTimer = setTimeout(() => this.close(GOING_AWAY.code, GOING_AWAY.reason), limits.idleTimeoutMs);
    this.lifetimeTimer = setTimeout(() => this.close(GOING_AWAY.code, GOING_AWAY.reason), limits.maxConnectionMs);

    // Prepended so each frame header is checked before `ws` parses (and possibly delivers) that frame.
    const monitor = new FrameSizeMonitor(limits.maxFrameBytes, limits.maxMessageBytes);
    const onData = (chunk: Buffer): void => {
      if (monitor.feed(chunk)) {
        socket.removeListener('data', onData);
        // AWS documents the 1009 code but not a reason text, so none is sent.
        this.close(1009, '');
      }
    };
    socket.prependListener('data', onData);

    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('error', (error) => {
      // `ws` has already started its own close with this code (protocol error, message over maxPayload).
      this.serverClose ??= { code: wsErrorCloseCode(error), reason: '' };
    });
    ws.on('close', (code, reason) => this.onClose(code, reason));
  }

  isOpen(): boolean {
    return this.serverClose === undefined && this.ws.readyState === WebSocket.OPEN;
  }

  sendText(data: Buffer | string): Promise<boolean> {
    if (!this.isOpen()) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.ws.send(data, { binary: false }, (error) => resolve(error === undefined || error === null));
    });
  }

  closeFromServer(): void {
    this.close(1000, '');
  }

  /** Starts a server-side close; a no-op when a close is already under way. */
  close(code: number, reason: string): boolean {
    if (this.serverClose !== undefined || this.ws.readyState !== WebSocket.OPEN) return false;
    this.serverClose = { code, reason };
    this.ws.close(code, reason);
    this.graceTimer = setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS);
    return true;
  }

  /** Like `close`, but also bounds a close that was already under way, so shutting down never waits on a client. */
  shutdown(code: number, reason: string): void {
    if (this.close(code, reason) || this.finished) return;
    this.graceTimer ??= setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS);
  }

  /** Drops the TCP connection at once, with no close handshake (the client sees 1006). */
  drop(): void {
    this.serverClose ??= { code: 1006, reason: '' };
    this.ws.terminate();
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.serverClose !== undefined) return;
    this.lastActiveAt = Date.now();
    this.idleTimer.refresh();
    if (isBinary) {
      // API Gateway does not accept binary frames and disconnects with 1003.
      this.close(1003, '');
      return;
    }
    this.hooks.onText(this, rawDataToBuffer(data).toString('utf8'));
  }

  private onClose(code: number, reason: Buffer): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.idleTimer);
    clearTimeout(this.lifetimeTimer);
    if (this.graceTimer !== undefined) clearTimeout(this.graceTimer);
    try {
      this.hooks.onClosed(this, this.serverClose ?? { code, reason: reason.toString('utf8') });
    } finally {
      this.markClosed();
    }
  }
}

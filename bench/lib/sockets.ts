import { openClient, type OpenOptions, type TestClient } from '../../local/gateway/testing.js';
import { mapLimit, now, sleep } from './limit.js';

/** What a set of receiving sockets got since the last reset. */
export interface Delivered {
  received: number;
  /** Wall-clock ms (performance.timeOrigin-based) of the first and last frame; 0 when none arrived. */
  firstAt: number;
  lastAt: number;
}

const OPEN_TIMEOUT_MS = 15_000;
const CLOSE_TIMEOUT_MS = 5_000;

/**
 * Many receiving WebSocket clients that only count text frames (no parsing: the count is what fan-out is
 * measured by, and all three contenders send the same frame to the same sockets).
 */
export class SocketSet {
  private sockets: TestClient[] = [];
  private received = 0;
  private firstAt = 0;
  private lastAt = 0;

  async open(urls: readonly string[], concurrency: number, onOpened: (opened: number) => void = () => undefined): Promise<void> {
    let opened = 0;
    await mapLimit(urls, concurrency, async (url) => {
      const socket = await openSocket(url, {
        onFrame: () => {
          const at = now();
          if (this.received === 0) this.firstAt = at;
          this.received += 1;
          this.lastAt = at;
        },
      });
      this.sockets.push(socket);
      opened += 1;
      onOpened(opened);
    });
  }

  get size(): number {
    return this.sockets.length;
  }

  reset(): void {
    this.received = 0;
    this.firstAt = 0;
    this.lastAt = 0;
  }

  snapshot(): Delivered {
    return { received: this.received, firstAt: this.firstAt, lastAt: this.lastAt };
  }

  /** Resolves once `total` frames have arrived or `timeoutMs` has passed (then with what did arrive). */
  async waitFor(total: number, timeoutMs: number, onProgress: (received: number) => void): Promise<Delivered> {
    const deadline = Date.now() + timeoutMs;
    let lastReport = 0;
    while (this.received < total && Date.now() < deadline) {
      await sleep(10);
      if (Date.now() - lastReport >= 100) {
        lastReport = Date.now();
        onProgress(this.received);
      }
    }
    onProgress(this.received);
    return this.snapshot();
  }

  async close(): Promise<void> {
    const sockets = this.sockets.splice(0);
    await Promise.all(sockets.map((socket) => socket.close()));
  }
}

/**
 * Opens a bench socket through the repository's one raw transport (no compression): it fails on a refused upgrade
 * or after `OPEN_TIMEOUT_MS`, and its `close()` terminates after `CLOSE_TIMEOUT_MS` without a close handshake.
 */
export function openSocket(url: string, options: OpenOptions = {}): Promise<TestClient> {
  return openClient(url, { openTimeoutMs: OPEN_TIMEOUT_MS, closeTimeoutMs: CLOSE_TIMEOUT_MS, ...options });
}

import { WebSocket } from 'ws';
import { mapLimit, now, sleep } from './limit.js';
import { closeSocket } from './sender.js';

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
  private sockets: WebSocket[] = [];
  private received = 0;
  private firstAt = 0;
  private lastAt = 0;

  async open(urls: readonly string[], concurrency: number, onOpened: (opened: number) => void = () => undefined): Promise<void> {
    let opened = 0;
    await mapLimit(urls, concurrency, async (url) => {
      const ws = await openSocket(url);
      ws.on('message', () => {
        const at = now();
        if (this.received === 0) this.firstAt = at;
        this.received += 1;
        this.lastAt = at;
      });
      this.sockets.push(ws);
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
    await Promise.all(sockets.map((ws) => closeSocket(ws, CLOSE_TIMEOUT_MS)));
  }
}

/** Opens a socket (no compression), failing on a refused upgrade or after `timeoutMs`. */
export function openSocket(url: string, timeoutMs: number = OPEN_TIMEOUT_MS): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('socket did not open in time'));
    }, timeoutMs);
    ws.once('open', () => {
      clearTimeout(timer);
      resolve(ws);
    });
    ws.once('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      res.resume();
      ws.terminate();
      reject(new Error(`upgrade refused with HTTP ${res.statusCode ?? 0}`));
    });
    // Kept for the socket's lifetime: an 'error' without a listener would throw.
    ws.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

import { WebSocket } from 'ws';

/**
 * The sending client: a `ws` socket through the gateway that sends frames with a bounded number in flight,
 * counting each answer (`sent`, or an `error`) as the end of one frame.
 */
export class Sender {
  private answered = 0;
  private readonly errors = new Map<string, number>();
  private readonly waiters = new Set<() => void>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const text = String(data);
      if (text.startsWith('{"type":"error"')) {
        const code = /"code":"([a-z_]+)"/.exec(text)?.[1] ?? 'unknown';
        this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
      }
      if (text.startsWith('{"type":"sent"') || text.startsWith('{"type":"error"')) {
        this.answered += 1;
        for (const wake of this.waiters) wake();
      }
    });
  }

  static open(url: string, timeoutMs = 15_000): Promise<Sender> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false });
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error('sender did not open in time'));
      }, timeoutMs);
      ws.once('open', () => {
        clearTimeout(timer);
        resolve(new Sender(ws));
      });
      ws.once('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        res.resume();
        reject(new Error(`sender refused with HTTP ${res.statusCode ?? 0}`));
      });
      ws.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  /** Error answers by code since the sender opened. */
  errorCounts(): Record<string, number> {
    return Object.fromEntries(this.errors);
  }

  /** Sends every frame, keeping at most `window` unanswered; resolves when all are answered (or at the deadline). */
  async sendAll(frames: readonly string[], window: number, timeoutMs: number): Promise<boolean> {
    const base = this.answered;
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < frames.length; i += 1) {
      if (!(await this.until(base + i - window + 1, deadline))) return false;
      const frame = frames[i];
      if (frame !== undefined) this.ws.send(frame);
    }
    return this.until(base + frames.length, deadline);
  }

  /** Sends one frame without waiting for an answer (typing answers only on error). */
  sendRaw(frame: string): void {
    this.ws.send(frame);
  }

  close(): Promise<void> {
    return closeSocket(this.ws);
  }

  private until(answers: number, deadline: number): Promise<boolean> {
    if (this.answered >= answers) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(false), Math.max(0, deadline - Date.now()));
      const check = () => {
        if (this.answered >= answers) finish(true);
      };
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(ok);
      };
      this.waiters.add(check);
    });
  }
}

/** Closes a socket and resolves once it is closed (or terminated after 5 s without a close handshake). */
export function closeSocket(ws: WebSocket, timeoutMs = 5_000): Promise<void> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) {
      resolve();
      return;
    }
    const timer = setTimeout(() => {
      ws.terminate();
      resolve();
    }, timeoutMs);
    ws.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    ws.close();
  });
}

import type { TestClient } from '../../local/gateway/testing.js';
import { openSocket } from './sockets.js';

/**
 * The sending client: a raw socket (local/gateway/testing.ts) through the gateway that sends frames with a bounded number in flight,
 * counting each answer (`sent`, or an `error`) as the end of one frame.
 */
export class Sender {
  private answered = 0;
  private readonly errors = new Map<string, number>();
  private readonly waiters = new Set<() => void>();

  private constructor(private readonly socket: TestClient) {}

  private onFrame(text: string): void {
    if (text.startsWith('{"type":"error"')) {
      const code = /"code":"([a-z_]+)"/.exec(text)?.[1] ?? 'unknown';
      this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
    }
    if (text.startsWith('{"type":"sent"') || text.startsWith('{"type":"error"')) {
      this.answered += 1;
      for (const wake of this.waiters) wake();
    }
  }

  static async open(url: string, timeoutMs = 15_000): Promise<Sender> {
    let sender: Sender | undefined = undefined; // set once open: frames reach it from then on
    const socket = await openSocket(url, { openTimeoutMs: timeoutMs, onFrame: (text) => sender?.onFrame(text) });
    sender = new Sender(socket);
    return sender;
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
      if (frame !== undefined) this.socket.ws.send(frame);
    }
    return this.until(base + frames.length, deadline);
  }

  /** Sends one frame without waiting for an answer (typing answers only on error). */
  sendRaw(frame: string): void {
    this.socket.ws.send(frame);
  }

  async close(): Promise<void> {
    await this.socket.close();
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

import { openClient, type TestClient } from '../../local/gateway/testing.js';
import { signToken } from '../../local/tokens.js';
import type { LocalBackend } from '../../local/backend.js';
import { appKeysFrom } from '../../lambdas/secret.js';

export type Frame = Record<string, unknown> & { type?: string };

/** A chat client for end-to-end tests: a real `ws` socket through the local gateway, with frame helpers. */
export class ChatClient {
  private cursor = 0;

  private constructor(
    readonly socket: TestClient,
    readonly userId: string,
    readonly deviceId: string,
  ) {}

  static async connect(backend: LocalBackend, conversationId: string, userId: string, deviceId: string): Promise<ChatClient> {
    const token = await tokenFor(backend, userId);
    const socket = await openClient(connectUrl(backend, { token, conversationId, clientId: deviceId }));
    return new ChatClient(socket, userId, deviceId);
  }

  /** A v2 connection: one per device, for all its conversations (it subscribes afterwards). */
  static async connectDevice(backend: LocalBackend, userId: string, deviceId: string): Promise<ChatClient> {
    const token = await tokenFor(backend, userId);
    const socket = await openClient(connectUrl(backend, { token, clientId: deviceId }));
    return new ChatClient(socket, userId, deviceId);
  }

  async send(frame: Record<string, unknown>): Promise<void> {
    await this.socket.send(JSON.stringify(frame));
  }

  /**
   * The frames received so far, parsed, but pushed `presence` changes (they arrive whenever a member comes or
   * goes, so tests about other frames count without them; `allFrames` has them).
   */
  frames(): Frame[] {
    return this.allFrames().filter((f) => !(f.type === 'presence' && f.requestId === undefined));
  }

  /** Every frame received so far, parsed. */
  allFrames(): Frame[] {
    return this.socket.received.map((text) => JSON.parse(text) as Frame);
  }

  /** Waits for the next frame (after those already awaited) that matches; earlier non-matching ones are skipped. */
  async waitFor(match: (frame: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const all = this.allFrames();
      for (; this.cursor < all.length; this.cursor += 1) {
        const frame = all[this.cursor];
        if (frame !== undefined && match(frame)) {
          this.cursor += 1;
          return frame;
        }
      }
      if (Date.now() > deadline) throw new Error(`no matching frame; received ${JSON.stringify(all).slice(0, 500)}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Sends a frame and waits for the answer of the given type (or an error). */
  async request(frame: Record<string, unknown>, type: string): Promise<Frame> {
    await this.send(frame);
    return this.waitFor((f) => f.type === type || f.type === 'error');
  }

  close(): Promise<{ code: number; reason: string }> {
    return this.socket.close();
  }
}

export async function tokenFor(backend: LocalBackend, userId: string, ttlSeconds = 3600): Promise<string> {
  return signToken(appKeysFrom(backend.env.APP_SECRET_JSON ?? '').jwtSecret, userId, { ttlSeconds });
}

export function connectUrl(backend: LocalBackend, params: Record<string, string>): string {
  return `${backend.url}?${new URLSearchParams(params).toString()}`;
}

/** Polls until `check` returns true (for effects that happen after the answer, e.g. a pruned row). */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

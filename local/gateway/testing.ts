import { WebSocket, type ClientOptions } from 'ws';

/**
 * A `ws` client wrapped for tests and the bench — the repository's one raw-frame transport: queued text frames
 * (or a callback per frame), the close code/reason, and promise-based waits.
 */
export interface TestClient {
  readonly ws: WebSocket;
  /** Every text frame received so far, in arrival order. */
  readonly received: string[];
  /** The next frame not yet taken by `next()`; rejects if none arrives within `timeoutMs` or the socket closes. */
  next(timeoutMs?: number): Promise<string>;
  /** Settles with the close code and reason once the socket is closed. */
  readonly closed: Promise<{ code: number; reason: string }>;
  send(text: string): Promise<void>;
  close(code?: number, reason?: string): Promise<{ code: number; reason: string }>;
}

export interface OpenOptions {
  protocols?: string | string[];
  headers?: Record<string, string>;
  /** Client-side limit, raised in tests that need the server to see an oversize frame. */
  maxPayload?: number;
  /** The upgrade fails (and the socket is terminated) if it has not succeeded within this many ms. */
  openTimeoutMs?: number;
  /** `close()` terminates the socket if the close handshake has not finished within this many ms. */
  closeTimeoutMs?: number;
  /**
   * Each text frame goes to this callback instead of `received` (long-running counters keep nothing); `next()`
   * then only settles when the socket closes or at its timeout.
   */
  onFrame?: (text: string) => void;
}

/** Opens a client and resolves once the upgrade succeeded; rejects with the HTTP status if it was refused. */
export function openClient(url: string, options: OpenOptions = {}): Promise<TestClient> {
  const clientOptions: ClientOptions = { perMessageDeflate: false };
  if (options.headers !== undefined) clientOptions.headers = options.headers;
  if (options.maxPayload !== undefined) clientOptions.maxPayload = options.maxPayload;
  const ws = new WebSocket(url, options.protocols ?? [], clientOptions);
  const received: string[] = [];
  let taken = 0;
  const waiters: (() => void)[] = [];
  let closeInfo: { code: number; reason: string } | undefined;

  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.once('close', (code, reason) => {
      closeInfo = { code, reason: reason.toString('utf8') };
      resolve(closeInfo);
      for (const wake of waiters.splice(0)) wake();
    });
  });
  const onFrame = options.onFrame;
  ws.on('message', (data, isBinary) => {
    const text = isBinary ? `<binary ${String(data)}>` : String(data);
    if (onFrame !== undefined) {
      onFrame(text);
      return;
    }
    received.push(text);
    for (const wake of waiters.splice(0)) wake();
  });

  const next = async (timeoutMs = 5_000): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const message = received[taken];
      if (message !== undefined) {
        taken += 1;
        return message;
      }
      if (closeInfo !== undefined) throw new Error(`socket closed (${closeInfo.code}) before a message arrived`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no message arrived in time');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  };

  const client: TestClient = {
    ws,
    received,
    next,
    closed,
    send: (text) =>
      new Promise((resolve, reject) => ws.send(text, (error) => (error === undefined || error === null ? resolve() : reject(error)))),
    close: (code, reason) => {
      if (closeInfo !== undefined) return closed;
      ws.close(code, reason);
      if (options.closeTimeoutMs !== undefined) {
        const timer = setTimeout(() => ws.terminate(), options.closeTimeoutMs);
        void closed.then(() => clearTimeout(timer));
      }
      return closed;
    },
  };

  return new Promise((resolve, reject) => {
    const timer =
      options.openTimeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            reject(new Error(`socket did not open in ${String(options.openTimeoutMs)} ms`));
            ws.terminate();
          }, options.openTimeoutMs);
    ws.once('open', () => {
      clearTimeout(timer);
      resolve(client);
    });
    ws.once('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      res.resume();
      reject(new RefusedError(res.statusCode ?? 0));
      ws.terminate();
    });
    // Kept for the socket's lifetime: an 'error' without a listener would throw.
    ws.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** Sends one text message as fragments of at most `fragmentBytes` each (each frame under the 32 KB frame limit). */
export async function sendFragmented(client: TestClient, text: string, fragmentBytes = 30 * 1024): Promise<void> {
  const data = Buffer.from(text, 'utf8');
  for (let start = 0; start < data.length; start += fragmentBytes) {
    const chunk = data.subarray(start, start + fragmentBytes);
    const fin = start + fragmentBytes >= data.length;
    await new Promise<void>((resolve, reject) =>
      client.ws.send(chunk, { binary: false, fin }, (error) => (error === undefined || error === null ? resolve() : reject(error))),
    );
  }
}

/** The upgrade was answered with a non-101 HTTP status. */
export class RefusedError extends Error {
  override readonly name = 'RefusedError';
  constructor(readonly status: number) {
    super(`upgrade refused with HTTP ${status}`);
  }
}

/** The HTTP status an upgrade was refused with; rejects if the upgrade succeeded. */
export async function refusedStatus(url: string, options: OpenOptions = {}): Promise<number> {
  try {
    const client = await openClient(url, options);
    await client.close();
  } catch (error) {
    if (error instanceof RefusedError) return error.status;
    throw error;
  }
  throw new Error('upgrade was accepted');
}

/** A `$connect` handler that accepts only once `release()` is called: for tests of a handshake still in progress. */
export function gatedConnect(): { handler: () => Promise<{ statusCode: number }>; release: () => void } {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  return {
    handler: async () => {
      await gate;
      return { statusCode: 200 };
    },
    release: () => release(),
  };
}

import { WebSocket, type ClientOptions } from 'ws';

/** A `ws` client wrapped for tests: queued text frames, the close code/reason, and promise-based waits. */
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
  ws.on('message', (data, isBinary) => {
    received.push(isBinary ? `<binary ${String(data)}>` : String(data));
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
      ws.close(code, reason);
      return closed;
    },
  };

  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(client));
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      reject(new RefusedError(res.statusCode ?? 0));
      ws.terminate();
    });
    // Kept for the socket's lifetime: an 'error' without a listener would throw.
    ws.on('error', (error) => reject(error));
  });
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

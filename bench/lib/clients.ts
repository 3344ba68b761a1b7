import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ClientPlacement } from '../config.js';
import { withTimeout } from './limit.js';
import { isPoolReply, type PoolRequest } from './pool-protocol.js';
import { SocketSet, type Delivered } from './sockets.js';

export type { Delivered } from './sockets.js';

/** Receiving clients, in this process or in a child process; the same interface either way. */
export interface ClientPool {
  readonly placement: ClientPlacement;
  open(urls: readonly string[], concurrency: number, onProgress: (opened: number) => void): Promise<void>;
  reset(): Promise<void>;
  waitFor(total: number, timeoutMs: number, onProgress: (received: number) => void): Promise<Delivered>;
  /** Closes every socket; the pool can open new ones. */
  drop(): Promise<void>;
  /** Closes every socket and ends the pool (and its process). */
  close(): Promise<void>;
}

export async function createPool(placement: ClientPlacement): Promise<ClientPool> {
  return placement === 'inproc' ? new InProcessPool() : await ChildPool.spawn();
}

class InProcessPool implements ClientPool {
  readonly placement = 'inproc' as const;
  private readonly sockets = new SocketSet();

  open(urls: readonly string[], concurrency: number, onProgress: (opened: number) => void): Promise<void> {
    return this.sockets.open(urls, concurrency, onProgress);
  }

  async reset(): Promise<void> {
    this.sockets.reset();
  }

  waitFor(total: number, timeoutMs: number, onProgress: (received: number) => void): Promise<Delivered> {
    return this.sockets.waitFor(total, timeoutMs, onProgress);
  }

  drop(): Promise<void> {
    return this.sockets.close();
  }

  close(): Promise<void> {
    return this.sockets.close();
  }
}

/** A request without its id (distributes over the union, unlike Omit). */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

type Pending = { resolve(delivered: Delivered): void; reject(error: Error): void };

const CHILD_ENTRY = fileURLToPath(new URL('./client-child.ts', import.meta.url));
/** Slack on top of a request's own time limit before the child is presumed stuck. */
const IPC_SLACK_MS = 30_000;

class ChildPool implements ClientPool {
  readonly placement = 'child' as const;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private onProgress: (count: number) => void = () => undefined;

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (message: unknown) => {
      if (!isPoolReply(message)) return;
      if (message.kind === 'progress') this.onProgress(message.count);
      if (message.kind !== 'done' && message.kind !== 'failed') return;
      const waiter = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (message.kind === 'done') waiter?.resolve(message.delivered);
      else waiter?.reject(new Error(`client process: ${message.message}`));
    });
    child.once('exit', (code) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`client process exited (${String(code)})`));
      this.pending.clear();
    });
  }

  static async spawn(): Promise<ChildPool> {
    const child = fork(CHILD_ENTRY, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        child.once('error', reject);
        child.once('exit', (code) => reject(new Error(`client process exited early (${String(code)})`)));
        child.on('message', (message: unknown) => {
          if (isPoolReply(message) && message.kind === 'ready') resolve();
        });
      }),
      30_000,
      'starting the client process',
    );
    return new ChildPool(child);
  }

  open(urls: readonly string[], concurrency: number, onProgress: (opened: number) => void): Promise<void> {
    return this.request({ op: 'open', urls: [...urls], concurrency }, 60_000, onProgress).then(() => undefined);
  }

  reset(): Promise<void> {
    return this.request({ op: 'reset' }, 0).then(() => undefined);
  }

  waitFor(total: number, timeoutMs: number, onProgress: (received: number) => void): Promise<Delivered> {
    return this.request({ op: 'wait', total, timeoutMs }, timeoutMs, onProgress);
  }

  drop(): Promise<void> {
    return this.request({ op: 'drop' }, 10_000).then(() => undefined);
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || !this.child.connected) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    await this.request({ op: 'close' }, 10_000).catch(() => undefined);
    await withTimeout(exited, 10_000, 'stopping the client process').catch(() => {
      this.child.kill('SIGKILL');
    });
  }

  private request(
    body: WithoutId<PoolRequest>,
    timeoutMs: number,
    onProgress: (count: number) => void = () => undefined,
  ): Promise<Delivered> {
    const id = this.nextId;
    this.nextId += 1;
    this.onProgress = onProgress;
    if (this.child.exitCode !== null || !this.child.connected) {
      return Promise.reject(new Error(`client process is not running (${body.op})`));
    }
    const reply = new Promise<Delivered>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.send({ ...body, id });
    });
    return withTimeout(reply, timeoutMs + IPC_SLACK_MS, `client process ${body.op}`);
  }
}

import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

/** A free TCP port on loopback, chosen by the OS. */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

export interface SpawnedRedis {
  url: string;
  stop(): Promise<void>;
}

/** Starts `redis-server` without persistence on `port`, on loopback only. */
export function startRedisProcess(port: number, binary = 'redis-server'): ChildProcess {
  return spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], {
    stdio: 'ignore',
  });
}

/** Resolves once a Redis at `url` answers PING (polling for about 5 s), else rejects. */
export async function waitForRedis(url: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      await probe.ping();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      probe.disconnect();
    }
  }
  throw new Error(`redis-server did not answer on ${url}`);
}

/** Starts a throwaway `redis-server` (no persistence) on a free port and waits until it answers PING. */
export async function spawnRedis(binary = 'redis-server'): Promise<SpawnedRedis> {
  const port = await freePort();
  const child = startRedisProcess(port, binary);
  const exited = new Promise<never>((_, reject) => {
    child.once('error', (error) => reject(new Error(`cannot start ${binary}: ${error.message}`)));
    child.once('exit', (code) => reject(new Error(`${binary} exited early with code ${String(code)}`)));
  });
  const url = `redis://127.0.0.1:${port}`;
  await Promise.race([waitForRedis(url), exited]);
  exited.catch(() => undefined);
  return {
    url,
    stop: async () => {
      if (child.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });
    },
  };
}

import type { AddressInfo } from 'node:net';
import dynalite from 'dynalite';
import { startFauxqs } from 'fauxqs';
import { spawnRedis } from './redis-server.js';

/** The local stand-ins for AWS services: each starts on a free loopback port and stops cleanly. */

export interface RunningService {
  endpoint: string;
  stop(): Promise<void>;
}

export async function startDynalite(port = 0, host = '127.0.0.1'): Promise<RunningService> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    endpoint: `http://${host}:${address.port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export async function startSqsServer(port = 0): Promise<RunningService> {
  // fauxqs binds every interface and names queues http://sqs.<region>.localhost:<port>/…; the SDK sends
  // requests to the endpoint below, so that host name is never resolved.
  const server = await startFauxqs({ port, logger: false });
  return { endpoint: `http://127.0.0.1:${server.port}`, stop: () => server.stop() };
}

export type RedisSource = { kind: 'external' | 'spawned' | 'none'; url: string; stop(): Promise<void> };

/**
 * Redis for the dev server: REDIS_URL if given (`none`: no Redis), else a redis-server spawned on a free port,
 * else none. Redis only speeds things up (shared rate limits, the seq cache): every message is in DynamoDB.
 */
export async function resolveRedis(given: string | undefined): Promise<RedisSource> {
  if (given === 'none') return { kind: 'none', url: '', stop: async () => undefined };
  if (given !== undefined && given !== '') return { kind: 'external', url: given, stop: async () => undefined };
  try {
    const spawned = await spawnRedis();
    return { kind: 'spawned', url: spawned.url, stop: spawned.stop };
  } catch {
    return { kind: 'none', url: '', stop: async () => undefined };
  }
}

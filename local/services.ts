import type { AddressInfo } from 'node:net';
import dynalite from 'dynalite';
import { buildApp } from 'fauxqs';
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

/**
 * fauxqs's own `startFauxqs` binds every interface and serves more than SQS: `/_fauxqs/queues` lists every queue
 * and shows its messages to anyone who asks, and it emulates S3 and SNS too. Its app is started here instead, on
 * loopback only, answering nothing but the SQS API (`POST /`, JSON protocol): every other path is a 404. Queues
 * are named http://<host>:<port>/…, the address requests come to.
 */
export async function startSqsServer(port = 0, host = '127.0.0.1'): Promise<RunningService> {
  const app = buildApp({ logger: false });
  app.addHook('onRequest', async (request, reply) => {
    const sqsApi = request.method === 'POST' && request.url === '/' && String(request.headers['content-type']).includes('application/x-amz-json-1.0');
    if (!sqsApi) await reply.code(404).send({ error: 'not found' });
  });
  await app.listen({ port, host });
  const address = app.server.address() as AddressInfo;
  return { endpoint: `http://${host}:${address.port}`, stop: () => app.close() };
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

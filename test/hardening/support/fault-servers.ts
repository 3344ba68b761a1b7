import type { ChildProcess } from 'node:child_process';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort, startRedisProcess, waitForRedis } from '../../../local/redis-server.js';

/** Test doubles that fail on purpose, all on loopback. */

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

// ---- a redis-server the test can pause, kill and restart ------------------------------------------------

export interface ControlledRedis {
  url: string;
  /** SIGSTOP: the socket stays open but nothing is answered (a Redis that times out). */
  pause(): void;
  resume(): void;
  /** Kills the server (a Redis that is down). */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty: no persistence). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function controlledRedis(): Promise<ControlledRedis> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const start = async () => {
    child = startRedisProcess(port);
    await waitForRedis(url);
  };
  const kill = async () => {
    const running = child;
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      running.once('exit', () => resolve());
      running.kill('SIGCONT');
      running.kill('SIGKILL');
    });
  };
  await start();
  return {
    url,
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
    kill,
    restart: async () => {
      await kill();
      await start();
    },
    stop: kill,
  };
}

// ---- the Management API, answering what each connection is told to ---------------------------------------

export interface ManagementStub {
  /** Base URL for CALLBACK_URL: `http://127.0.0.1:<port>/<stage>`. */
  endpoint: string;
  /** Statuses to answer, in order, for one connection id; the last one repeats. Default: 200. */
  answer(connectionId: string, statuses: number[]): void;
  /** Every POST received, in order. */
  readonly posts: { connectionId: string; status: number; data: string }[];
  attempts(connectionId: string): number;
  close(): Promise<void>;
}

const ERROR_TYPES: Record<number, string> = {
  403: 'ForbiddenException',
  410: 'GoneException',
  429: 'TooManyRequestsException',
  500: 'InternalServerErrorException',
  502: 'BadGatewayException',
  503: 'ServiceUnavailableException',
};

export async function managementStub(stage = 'stub'): Promise<ManagementStub> {
  const plans = new Map<string, number[]>();
  const posts: ManagementStub['posts'] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const body = await readBody(req);
      const prefix = `/${stage}/@connections/`;
      const path = req.url ?? '';
      if (req.method !== 'POST' || !path.startsWith(prefix)) {
        res.writeHead(404, { 'x-amzn-ErrorType': 'NotFoundException', 'Content-Type': 'application/json' });
        res.end('{"message":"Not Found"}');
        return;
      }
      const connectionId = decodeURIComponent(path.slice(prefix.length));
      const plan = plans.get(connectionId) ?? [200];
      const status = plan.length > 1 ? (plan.shift() ?? 200) : (plan[0] ?? 200);
      posts.push({ connectionId, status, data: body.toString('utf8') });
      if (status < 300) {
        res.writeHead(200, { 'x-amzn-RequestId': 'stub' });
        res.end();
        return;
      }
      const errorType = ERROR_TYPES[status] ?? 'UnknownException';
      res.writeHead(status, { 'x-amzn-ErrorType': errorType, 'x-amzn-RequestId': 'stub', 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ message: errorType }));
    })();
  });
  const port = await listen(server);
  return {
    endpoint: `http://127.0.0.1:${port}/${stage}`,
    answer: (connectionId, statuses) => plans.set(connectionId, [...statuses]),
    posts,
    attempts: (connectionId) => posts.filter((p) => p.connectionId === connectionId).length,
    close: () => close(server),
  };
}

// ---- DynamoDB that throttles on demand, in front of a real one --------------------------------------------

export interface ThrottlingDynamo {
  endpoint: string;
  /** Throttles the next `count` calls of an operation (e.g. `GetItem`); Infinity throttles until `reset`. */
  throttle(operation: string, count: number, errorName?: 'ThrottlingException' | 'ProvisionedThroughputExceededException'): void;
  /** Stops throttling and zeroes the counts. */
  reset(): void;
  /** Calls received per operation (throttled ones included). */
  calls(operation: string): number;
  /** Calls answered with a throttling error per operation. */
  throttled(operation: string): number;
  close(): Promise<void>;
}

/**
 * A proxy speaking DynamoDB's JSON protocol: it answers 400 ThrottlingException (or
 * ProvisionedThroughputExceededException) as DynamoDB does, and forwards everything else to `target`.
 */
export async function throttlingDynamo(target: string): Promise<ThrottlingDynamo> {
  const budgets = new Map<string, { left: number; errorName: string }>();
  const callCount = new Map<string, number>();
  const throttledCount = new Map<string, number>();
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const targetHeader = req.headers['x-amz-target'];
      const operation = (typeof targetHeader === 'string' ? targetHeader : '').split('.').pop() ?? '';
      callCount.set(operation, (callCount.get(operation) ?? 0) + 1);
      const budget = budgets.get(operation);
      if (budget !== undefined && budget.left > 0) {
        budget.left -= 1;
        throttledCount.set(operation, (throttledCount.get(operation) ?? 0) + 1);
        const text = JSON.stringify({
          __type: `com.amazonaws.dynamodb.v20120810#${budget.errorName}`,
          message: 'Rate of requests exceeds the allowed throughput.',
        });
        res.writeHead(400, { 'Content-Type': 'application/x-amz-json-1.0', 'x-amzn-RequestId': 'throttled', 'Content-Length': Buffer.byteLength(text) });
        res.end(text);
        return;
      }
      const forward = request(
        { hostname: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
        (reply) => {
          res.writeHead(reply.statusCode ?? 500, reply.headers);
          reply.pipe(res);
        },
      );
      forward.once('error', () => {
        res.writeHead(500);
        res.end();
      });
      forward.end(body);
    })();
  });
  const port = await listen(server);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    throttle: (operation, count, errorName = 'ThrottlingException') => budgets.set(operation, { left: count, errorName }),
    reset: () => {
      budgets.clear();
      callCount.clear();
      throttledCount.clear();
    },
    calls: (operation) => callCount.get(operation) ?? 0,
    throttled: (operation) => throttledCount.get(operation) ?? 0,
    close: () => close(server),
  };
}

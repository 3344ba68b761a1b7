import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { fromEnv } from '@aws-sdk/credential-provider-env';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ManagementApiPoster, type PostFailure } from '../../lambdas/adapters/management-poster.js';

/**
 * A stand-in for the API Gateway Management API: `POST /{stage}/@connections/{id}` answers from a script per
 * connection id (one status per attempt, the last one repeating); unknown ids get 200.
 */
interface SeenRequest {
  method: string;
  path: string;
  connectionId: string;
  body: string;
  contentType: string | undefined;
  authorization: string | undefined;
}

const STAGE = 'prod';
const seen: SeenRequest[] = [];
const scripts = new Map<string, number[]>();
const sockets = new Set<Socket>();
let server: Server;
let endpoint: string;
const posters: ManagementApiPoster[] = [];

function respond(res: ServerResponse, status: number): void {
  if (status === 200) {
    res.writeHead(200, { 'content-type': 'application/json' }).end();
    return;
  }
  const errorType =
    status === 410 ? 'GoneException' : status === 429 ? 'LimitExceededException' : status === 403 ? 'ForbiddenException' : 'InternalServerErrorException';
  res
    .writeHead(status, { 'content-type': 'application/json', 'x-amzn-ErrorType': errorType })
    .end(JSON.stringify({ message: `${errorType} from the fake Management API` }));
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  const path = req.url ?? '';
  const match = /^\/([^/]+)\/@connections\/([^/?]+)$/.exec(path);
  if (req.method !== 'POST' || match?.[1] !== STAGE || match[2] === undefined) {
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'no route' }));
    return;
  }
  const connectionId = decodeURIComponent(match[2]);
  seen.push({
    method: req.method,
    path,
    connectionId,
    body: Buffer.concat(chunks).toString('utf8'),
    contentType: req.headers['content-type'],
    authorization: req.headers.authorization,
  });
  const script = scripts.get(connectionId) ?? [200];
  const status = script.length > 1 ? (script.shift() ?? 200) : (script[0] ?? 200);
  respond(res, status);
}

beforeAll(async () => {
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIDTESTTESTTEST');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test-secret-key');
  vi.stubEnv('AWS_SESSION_TOKEN', '');
  server = createServer((req, res) => {
    handle(req, res).catch(() => res.writeHead(500).end());
  });
  server.on('connection', (socket) => sockets.add(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/${STAGE}`;
});

afterAll(async () => {
  for (const created of posters) created.destroy();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  vi.unstubAllEnvs();
});

beforeEach(() => {
  seen.length = 0;
  scripts.clear();
});

function poster(maxSockets = 8): { poster: ManagementApiPoster; failures: PostFailure[] } {
  const failures: PostFailure[] = [];
  const created = new ManagementApiPoster({
    endpoint,
    region: 'eu-west-1',
    credentials: fromEnv(),
    maxSockets,
    onFailure: (failure) => failures.push(failure),
  });
  posters.push(created);
  return { poster: created, failures };
}

function attemptsFor(connectionId: string): number {
  return seen.filter((request) => request.connectionId === connectionId).length;
}

describe('ManagementApiPoster against a local Management API', () => {
  it("posts the frame to /{stage}/@connections/{id} and answers 'delivered'", async () => {
    const { poster: p, failures } = poster();
    const data = JSON.stringify({ type: 'message', text: 'héllo ✓' });

    await expect(p.post('L0SM9cOFvHcCIhw=', data)).resolves.toBe('delivered');

    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ method: 'POST', connectionId: 'L0SM9cOFvHcCIhw=', body: data });
    expect(seen[0]?.path.startsWith(`/${STAGE}/@connections/`)).toBe(true);
    // Signed with the credentials from the environment (SigV4 for the execute-api service).
    expect(seen[0]?.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDTESTTESTTEST\/\d{8}\/eu-west-1\/execute-api\//);
    expect(failures).toEqual([]);
  });

  it('sends connection ids with = + / so that they arrive intact once URL-decoded', async () => {
    const { poster: p } = poster();
    const ids = ['a+b/c=', 'Zm9v/YmFy+==', '+/=', 'plain'];
    for (const id of ids) await expect(p.post(id, 'x')).resolves.toBe('delivered');
    expect(seen.map((request) => request.connectionId)).toEqual(ids);
    // The raw path carries the reserved characters escaped, never as a path separator.
    expect(seen[0]?.path).toBe(`/${STAGE}/@connections/a%2Bb%2Fc%3D`);
  });

  it("answers 'gone' on 410 GoneException, without retrying and without reporting a failure", async () => {
    const { poster: p, failures } = poster();
    scripts.set('gone-1', [410]);
    await expect(p.post('gone-1', 'x')).resolves.toBe('gone');
    expect(attemptsFor('gone-1')).toBe(1);
    expect(failures).toEqual([]);
  });

  it("answers 'failed' after a persistent 500, once it has tried 3 times", async () => {
    const { poster: p, failures } = poster();
    scripts.set('broken', [500]);
    await expect(p.post('broken', 'x')).resolves.toBe('failed');
    expect(attemptsFor('broken')).toBe(3);
    expect(failures).toEqual([{ connectionId: 'broken', errorName: 'InternalServerErrorException', status: 500 }]);
  });

  it("recovers to 'delivered' when a 429 is followed by 200", async () => {
    const { poster: p, failures } = poster();
    scripts.set('busy', [429, 200]);
    await expect(p.post('busy', 'x')).resolves.toBe('delivered');
    expect(attemptsFor('busy')).toBe(2);
    expect(failures).toEqual([]);
  });

  it("recovers to 'delivered' when 500 happens twice and the third attempt succeeds", async () => {
    const { poster: p } = poster();
    scripts.set('flaky', [500, 500, 200]);
    await expect(p.post('flaky', 'x')).resolves.toBe('delivered');
    expect(attemptsFor('flaky')).toBe(3);
  });

  it("answers 'failed' on a 403 at once (not retryable) and reports it", async () => {
    const { poster: p, failures } = poster();
    scripts.set('denied', [403]);
    await expect(p.post('denied', 'x')).resolves.toBe('failed');
    expect(attemptsFor('denied')).toBe(1);
    expect(failures).toEqual([{ connectionId: 'denied', errorName: 'ForbiddenException', status: 403 }]);
  });

  it('keeps at most maxSockets connections to the endpoint under concurrent posts', async () => {
    const { poster: p } = poster(2);
    sockets.clear();
    const ids = Array.from({ length: 20 }, (_, i) => `conc-${i}`);
    const outcomes = await Promise.all(ids.map((id) => p.post(id, `frame-${id}`)));
    expect(outcomes).toEqual(ids.map(() => 'delivered'));
    expect(sockets.size).toBeGreaterThanOrEqual(1);
    expect(sockets.size).toBeLessThanOrEqual(2);
    expect(seen.map((request) => request.body).sort()).toEqual(ids.map((id) => `frame-${id}`).sort());
  });
});

describe('ManagementApiPoster when the endpoint is unreachable', () => {
  it("retries network errors, then answers 'failed' and reports the error name", async () => {
    const { freePort } = await import('../../local/redis-server.js');
    const failures: PostFailure[] = [];
    const unreachable = new ManagementApiPoster({
      endpoint: `http://127.0.0.1:${await freePort()}/${STAGE}`,
      region: 'eu-west-1',
      credentials: fromEnv(),
      maxSockets: 2,
      onFailure: (failure) => failures.push(failure),
    });
    posters.push(unreachable);
    await expect(unreachable.post('nobody', 'x')).resolves.toBe('failed');
    expect(failures).toEqual([{ connectionId: 'nobody', errorName: 'ECONNREFUSED', status: undefined }]);
  });
});

describe('ManagementApiPoster without credentials', () => {
  it("answers 'failed' and reports why instead of throwing", async () => {
    const failures: PostFailure[] = [];
    const noCredentials = new ManagementApiPoster({
      endpoint,
      region: 'eu-west-1',
      credentials: async () => {
        throw Object.assign(new Error('no credentials in the environment'), { name: 'CredentialsProviderError' });
      },
      maxSockets: 2,
      maxAttempts: 1,
      onFailure: (failure) => failures.push(failure),
    });
    posters.push(noCredentials);
    await expect(noCredentials.post('someone', 'x')).resolves.toBe('failed');
    expect(failures).toEqual([{ connectionId: 'someone', errorName: 'CredentialsProviderError', status: undefined }]);
    expect(attemptsFor('someone')).toBe(0);
  });
});

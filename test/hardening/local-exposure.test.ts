import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateQueueCommand, ListQueuesCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { appKeysFrom } from '../../lambdas/secret.js';
import { devSecret, isLoopback, stateDirectory } from '../../local/dev-state.js';
import { startLocalGateway, type LocalGateway } from '../../local/gateway.js';
import { gatedConnect, openClient, refusedStatus } from '../../local/gateway/testing.js';
import { startSqsServer, type RunningService } from '../../local/services.js';
import { DUMMY_CREDENTIALS } from '../support/dynalite.js';

/**
 * What the local backend exposes on this machine: the SQS server, the dev secret and its files, the bind address
 * of `npm start`, and the emulator's HTTP timeouts. Every test here uses a HOME of its own (never the real one).
 */
const homes: string[] = [];
function freshHome(): string {
  const home = mkdtempSync(join(tmpdir(), 'relay-ws-home-'));
  homes.push(home);
  return home;
}
afterAll(() => {
  for (const home of homes.splice(0)) rmSync(home, { recursive: true, force: true });
});
const modeOf = (path: string) => statSync(path).mode & 0o777;

/** This machine's addresses other than loopback (IPv4 and IPv6, link-local left out: it needs a scope). */
function outsideAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flatMap((entries) => entries ?? [])
    .filter((entry) => !entry.internal && !entry.address.startsWith('fe80:'))
    .map((entry) => entry.address);
}

/** Whether a TCP connection to host:port is accepted (refused or timed out: false). */
function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host, port, timeout: 2000 });
    const done = (answer: boolean) => {
      socket.destroy();
      resolve(answer);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

describe('the local SQS server (fauxqs)', () => {
  let sqs: RunningService;
  let client: SQSClient;
  let port: number;

  beforeAll(async () => {
    sqs = await startSqsServer();
    port = Number(new URL(sqs.endpoint).port);
    client = new SQSClient({ endpoint: sqs.endpoint, region: 'us-east-1', credentials: DUMMY_CREDENTIALS, maxAttempts: 1 });
  });
  afterAll(async () => {
    client.destroy();
    await sqs.stop();
  });

  it('serves the SQS API on loopback', async () => {
    const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: 'exposure-probe' }));
    await client.send(new SendMessageCommand({ QueueUrl, MessageBody: 'a queued job' }));
    expect((await client.send(new ListQueuesCommand({}))).QueueUrls).toEqual([QueueUrl]);
    expect(await reachable('127.0.0.1', port)).toBe(true);
  });

  it('is not reachable on any other address of this machine', async () => {
    const addresses = outsideAddresses();
    const answers = await Promise.all(addresses.map(async (address) => [address, await reachable(address, port)] as const));
    // A machine with no address but loopback has nothing to check: the list is then empty.
    expect(answers).toEqual(addresses.map((address) => [address, false]));
  });

  it('answers 404 to the inspection pages, the health page and the S3 emulation', async () => {
    for (const path of ['/_fauxqs/queues', '/_fauxqs/queues/exposure-probe', '/health', '/some-bucket/some-key']) {
      const response = await fetch(`${sqs.endpoint}${path}`);
      expect([path, response.status]).toEqual([path, 404]);
      expect(await response.text()).not.toContain('a queued job');
    }
    const put = await fetch(`${sqs.endpoint}/some-bucket/some-key`, { method: 'PUT', body: 'x' });
    expect(put.status).toBe(404);
  });
});

describe('the per-machine dev secret', () => {
  it('is generated on the first start into a 0600 file in a 0700 directory, then read back unchanged', async () => {
    const env = { HOME: freshHome() };
    const first = await devSecret(env);
    expect(first.path).toBe(join(env.HOME, '.local', 'state', 'relay-ws', 'dev-secret.json'));
    expect(first.created).toBe(true);
    expect(modeOf(join(env.HOME, '.local', 'state', 'relay-ws'))).toBe(0o700);
    expect(modeOf(first.path)).toBe(0o600);
    const keys = appKeysFrom(first.json);
    // A JWT secret of its own, not derived from the master key.
    expect(JSON.parse(first.json)).toEqual({ masterKey: expect.stringMatching(/^[A-Za-z0-9_-]{64}$/), jwtSecret: expect.stringMatching(/^[A-Za-z0-9_-]{64}$/) });
    expect(Buffer.from(keys.jwtSecret).toString()).toBe(JSON.parse(first.json).jwtSecret);
    const again = await devSecret(env);
    expect(again).toEqual({ ...first, created: false });
    // Another machine (home) gets another secret.
    expect((await devSecret({ HOME: freshHome() })).json).not.toBe(first.json);
  });

  it('lives under XDG_STATE_HOME, or RELAY_WS_STATE_DIR, when set', async () => {
    const home = freshHome();
    expect(stateDirectory({ HOME: home, XDG_STATE_HOME: join(home, 'xdg') })).toBe(join(home, 'xdg', 'relay-ws'));
    expect(stateDirectory({ HOME: home, XDG_STATE_HOME: join(home, 'xdg'), RELAY_WS_STATE_DIR: join(home, 'mine') })).toBe(join(home, 'mine'));
    expect((await devSecret({ HOME: home, XDG_STATE_HOME: join(home, 'xdg') })).path).toBe(join(home, 'xdg', 'relay-ws', 'dev-secret.json'));
  });

  it('tightens a directory or file of ours that others could read, and refuses a symlink in place of the file', async () => {
    const home = freshHome();
    const directory = join(home, 'state');
    mkdirSync(directory, { mode: 0o755 });
    const file = join(directory, 'dev-secret.json');
    writeFileSync(file, JSON.stringify({ masterKey: 'k'.repeat(40), jwtSecret: 'j'.repeat(40) }), { mode: 0o644 });
    chmodSync(directory, 0o755);
    chmodSync(file, 0o644);
    await devSecret({ HOME: home, RELAY_WS_STATE_DIR: directory });
    expect([modeOf(directory), modeOf(file)]).toEqual([0o700, 0o600]);

    const other = join(home, 'other');
    mkdirSync(other, { mode: 0o700 });
    writeFileSync(join(home, 'planted.json'), JSON.stringify({ masterKey: 'p'.repeat(40) }));
    symlinkSync(join(home, 'planted.json'), join(other, 'dev-secret.json'));
    await expect(devSecret({ HOME: home, RELAY_WS_STATE_DIR: other })).rejects.toThrow(/not a plain file/);
  });

  it('names a damaged file by field, never by value', async () => {
    const home = freshHome();
    const directory = join(home, 'state');
    mkdirSync(directory, { mode: 0o700 });
    writeFileSync(join(directory, 'dev-secret.json'), '{"masterKey":"Zx9Qw8Er7Ty6"}', { mode: 0o600 });
    const error: unknown = await devSecret({ HOME: home, RELAY_WS_STATE_DIR: directory }).catch((e: unknown) => e);
    expect(String(error)).toMatch(/masterKey: must be at least 32 characters/);
    expect(String(error)).not.toContain('Zx9Q');
  });

  it('tells loopback addresses from the others', () => {
    expect(['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1'].filter((h) => !isLoopback(h))).toEqual([]);
    expect(['0.0.0.0', '::', '192.0.2.2', '10.0.0.1', 'example.com', '128.0.0.1'].filter(isLoopback)).toEqual([]);
  });
});

/** Runs `npm start`'s entry point with a HOME of its own; resolves with its exit code and output. */
function devServer(args: string[], env: Record<string, string | undefined>, until?: RegExp): Promise<{ code: number | null; out: string; err: string; stop?: () => Promise<number | null> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'local/dev-server.ts', ...args], {
    cwd: process.cwd(),
    env: { PATH: process.env.PATH, LOG_LEVEL: 'SILENT', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`dev server neither started nor exited: ${out}${err}`));
    }, 45_000);
    if (until !== undefined) {
      child.stdout.on('data', () => {
        if (!until.test(out)) return;
        clearTimeout(timer);
        resolve({ code: null, out, err, stop: () => (child.kill('SIGINT'), exited) });
      });
    }
    void exited.then((code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

describe('npm start', () => {
  it.each(['0.0.0.0', '::', '192.0.2.2'])('refuses --host %s without an explicit secret, before starting anything or writing a secret', async (host) => {
    const home = freshHome();
    const run = await devServer(['--host', host, '--port', '0', '--no-redis'], { HOME: home });
    expect(run.code).toBe(1);
    expect(run.err).toMatch(new RegExp(`refusing --host ${host.replace(/[.]/g, '\\.')}: it is not a loopback address`));
    expect(existsSync(join(home, '.local'))).toBe(false);
  });

  it('starts on a fresh machine: the secret generated into the private directory, the state file beside it; kept across restarts', async () => {
    const home = freshHome();
    const directory = join(home, '.local', 'state', 'relay-ws');
    const first = await devServer(['--port', '0', '--no-redis'], { HOME: home }, /Ctrl-C stops everything/);
    try {
      expect(first.out).toMatch(/Secret: +.*dev-secret\.json \(generated now; only you can read/);
      const port = /ws:\/\/127\.0\.0\.1:(\d+)\/local/.exec(first.out)?.[1];
      expect(port).toBeDefined();
      expect(modeOf(directory)).toBe(0o700);
      expect(modeOf(join(directory, 'dev-secret.json'))).toBe(0o600);
      const statePath = join(directory, `dev-${String(port)}.json`);
      expect(modeOf(statePath)).toBe(0o600);
      expect(JSON.parse(readFileSync(statePath, 'utf8')).secretJson).toBe(readFileSync(join(directory, 'dev-secret.json'), 'utf8'));
      // Only loopback: the gateway and the SQS server are not reachable on the machine's other addresses.
      const sqsPort = /SQS: +http:\/\/[^:/]+:(\d+)\//.exec(first.out)?.[1];
      expect(sqsPort).toBeDefined();
      for (const address of outsideAddresses()) {
        expect([address, await reachable(address, Number(port)), await reachable(address, Number(sqsPort))]).toEqual([address, false, false]);
      }
    } finally {
      expect(await first.stop?.()).toBe(0);
    }
    expect(readdirNames(directory)).toEqual(['dev-secret.json']);
    const secret = readFileSync(join(directory, 'dev-secret.json'), 'utf8');
    const second = await devServer(['--port', '0', '--no-redis'], { HOME: home }, /Ctrl-C stops everything/);
    try {
      expect(second.out).toMatch(/dev-secret\.json \(this machine's/);
    } finally {
      await second.stop?.();
    }
    expect(readFileSync(join(directory, 'dev-secret.json'), 'utf8')).toBe(secret);
  }, 90_000);
});

function readdirNames(directory: string): string[] {
  return readdirSync(directory).sort();
}

describe('the emulator\'s HTTP timeouts', () => {
  let gateway: LocalGateway | undefined;
  afterEach(async () => {
    await gateway?.close();
    gateway = undefined;
  });

  /** Opens a TCP connection, writes `text` and never more; resolves with how long the server kept it open. */
  function slowClient(port: number, text: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const started = Date.now();
      const socket = tcpConnect({ host: '127.0.0.1', port }, () => socket.write(text));
      socket.on('data', () => undefined);
      socket.once('close', () => resolve(Date.now() - started));
      socket.once('error', () => undefined);
      setTimeout(() => {
        socket.destroy();
        reject(new Error('the server kept a slow client open'));
      }, 10_000);
    });
  }

  it('cuts off clients that never finish their headers (an upgrade, a Management API request, nothing at all) within the timeout', async () => {
    gateway = await startLocalGateway({ headersTimeoutMs: 500 });
    const port = gateway.port;
    const held = await Promise.all([
      slowClient(port, 'GET /local HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'),
      slowClient(port, 'POST /local/@connections/abc HTTP/1.1\r\nHost: 127.0.0.1\r\n'),
      slowClient(port, ''),
      ...Array.from({ length: 50 }, () => slowClient(port, 'GET /local HTTP/1.1\r\n')),
    ]);
    // 500 ms, checked every 250 ms: generous bounds, far below Node's defaults (60 s, checked every 30 s).
    expect(Math.max(...held)).toBeLessThan(3000);
    expect(Math.min(...held)).toBeGreaterThanOrEqual(400);
    // A client that sends its request at once is served as before.
    const ok = await openClient(gateway.url);
    await ok.close();
  });

  it('cuts off a request whose body never finishes within the request timeout', async () => {
    gateway = await startLocalGateway({ headersTimeoutMs: 300, requestTimeoutMs: 600 });
    const held = await slowClient(gateway.port, 'POST /local/@connections/abc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{"half":');
    expect(held).toBeLessThan(3000);
    expect(held).toBeGreaterThanOrEqual(500);
  });

  it('answers 504 to a handshake whose $connect has not decided within the handshake timeout, and disconnects it if it says yes later', async () => {
    const gate = gatedConnect();
    const disconnect = vi.fn(async () => ({ statusCode: 200 }));
    gateway = await startLocalGateway({ handshakeTimeoutMs: 300, routes: { $connect: { handler: gate.handler }, $disconnect: { handler: disconnect } } });
    const started = Date.now();
    expect(await refusedStatus(gateway.url)).toBe(504);
    expect(Date.now() - started).toBeLessThan(3000);
    gate.release();
    await vi.waitFor(() => expect(disconnect).toHaveBeenCalledTimes(1));
    expect(gateway.connectionIds()).toEqual([]);
  });
});

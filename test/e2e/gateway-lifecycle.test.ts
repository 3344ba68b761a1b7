import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GetConnectionCommand,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  jsonLineLog,
  startLocalGateway,
  type GatewayLogEntry,
  type LocalGateway,
  type LocalGatewayOptions,
  type RouteHandler,
} from '../../local/gateway.js';
import { openClient, type TestClient, gatedConnect } from '../../local/gateway/testing.js';

const gateways: LocalGateway[] = [];
afterEach(async () => {
  await Promise.all(gateways.splice(0).map((gw) => gw.close()));
});

interface Harness {
  gateway: LocalGateway;
  client: TestClient;
  connectionId: string;
  disconnect: ReturnType<typeof vi.fn<RouteHandler>>;
  message: ReturnType<typeof vi.fn<RouteHandler>>;
}

async function harness(options: Partial<LocalGatewayOptions> = {}): Promise<Harness> {
  const connect = vi.fn<RouteHandler>(async () => ({ statusCode: 200 }));
  const disconnect = vi.fn<RouteHandler>(async () => ({ statusCode: 200 }));
  const message = vi.fn<RouteHandler>(async (event) => ({ statusCode: 200, body: `len:${event.body?.length ?? -1}` }));
  const gateway = await startLocalGateway({
    ...options,
    routes: {
      $connect: { handler: connect },
      $disconnect: { handler: disconnect },
      $default: { handler: message, twoWay: true },
    },
  });
  gateways.push(gateway);
  const client = await openClient(gateway.url, { maxPayload: 1024 * 1024 });
  const connectionId = connect.mock.calls[0]?.[0].requestContext.connectionId;
  if (connectionId === undefined) throw new Error('$connect did not run');
  return { gateway, client, connectionId, disconnect, message };
}

function managementClient(gateway: LocalGateway): ApiGatewayManagementApiClient {
  return new ApiGatewayManagementApiClient({
    endpoint: gateway.managementEndpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
  });
}

/** Waits for the one `$disconnect`, then lets the gateway drain completely and checks it stayed at one. */
async function expectSingleDisconnect(h: Harness, code: number, reason?: string): Promise<void> {
  await vi.waitFor(() => expect(h.disconnect).toHaveBeenCalledTimes(1));
  await h.gateway.close();
  expect(h.disconnect).toHaveBeenCalledTimes(1);
  const rc = h.disconnect.mock.calls[0]?.[0].requestContext;
  expect(rc?.connectionId).toBe(h.connectionId);
  expect(rc?.disconnectStatusCode).toBe(code);
  if (reason !== undefined) expect(rc?.disconnectReason).toBe(reason);
}

describe('size limits', () => {
  it('accepts a 32 KB frame and closes with 1009 on a larger one (defaults)', async () => {
    const h = await harness();
    await h.client.send('a'.repeat(32_768));
    expect(await h.client.next()).toBe('len:32768');
    await h.client.send('a'.repeat(32_769));
    expect((await h.client.closed).code).toBe(1009);
    expect(h.message).toHaveBeenCalledTimes(1);
    await expectSingleDisconnect(h, 1009);
  });

  it('checks every fragment against maxFrameBytes', async () => {
    const h = await harness({ maxFrameBytes: 100, maxMessageBytes: 1_000 });
    h.client.ws.send('b'.repeat(100), { fin: false });
    h.client.ws.send('b'.repeat(101), { fin: true });
    expect((await h.client.closed).code).toBe(1009);
    expect(h.message).not.toHaveBeenCalled();
    await expectSingleDisconnect(h, 1009);
  });

  it('reassembles fragments within the limits and closes with 1009 when the message total is too big', async () => {
    const h = await harness({ maxFrameBytes: 100, maxMessageBytes: 250 });
    h.client.ws.send('c'.repeat(100), { fin: false });
    h.client.ws.send('c'.repeat(100), { fin: false });
    h.client.ws.send('c'.repeat(50), { fin: true });
    expect(await h.client.next()).toBe('len:250');
    h.client.ws.send('d'.repeat(100), { fin: false });
    h.client.ws.send('d'.repeat(100), { fin: false });
    h.client.ws.send('d'.repeat(51), { fin: true });
    expect((await h.client.closed).code).toBe(1009);
    expect(h.message).toHaveBeenCalledTimes(1);
    await expectSingleDisconnect(h, 1009);
  });

  it('closes with 1009 on a single-frame message over maxMessageBytes', async () => {
    const h = await harness({ maxFrameBytes: 1_000, maxMessageBytes: 500 });
    await h.client.send('e'.repeat(501));
    expect((await h.client.closed).code).toBe(1009);
    await expectSingleDisconnect(h, 1009);
  });
});

describe('timeouts', () => {
  it('closes an idle connection with 1001 Going away', async () => {
    const h = await harness({ idleTimeoutMs: 150 });
    expect(await h.client.closed).toEqual({ code: 1001, reason: 'Going away' });
    await expectSingleDisconnect(h, 1001, 'Going away');
  });

  it('keeps a connection that keeps sending past the idle timeout', async () => {
    const h = await harness({ idleTimeoutMs: 600 });
    for (let i = 0; i < 10; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      await h.client.send('keepalive');
      expect(await h.client.next()).toBe('len:9');
    }
    expect(h.client.ws.readyState).toBe(h.client.ws.OPEN);
    expect(await h.client.closed).toEqual({ code: 1001, reason: 'Going away' });
    await expectSingleDisconnect(h, 1001, 'Going away');
  });

  it('closes at the maximum connection duration even when active', async () => {
    const h = await harness({ maxConnectionMs: 300 });
    const chatter = setInterval(() => {
      if (h.client.ws.readyState === h.client.ws.OPEN) h.client.ws.send('still here');
    }, 50);
    try {
      expect(await h.client.closed).toEqual({ code: 1001, reason: 'Going away' });
    } finally {
      clearInterval(chatter);
    }
    await expectSingleDisconnect(h, 1001, 'Going away');
  });
});

describe('$disconnect runs exactly once for every kind of close', () => {
  it('client close with a code and reason', async () => {
    const h = await harness();
    await h.client.close(1000, 'done');
    await expectSingleDisconnect(h, 1000, 'done');
  });

  it('server DELETE', async () => {
    const h = await harness();
    const sdk = managementClient(h.gateway);
    await sdk.send(new DeleteConnectionCommand({ ConnectionId: h.connectionId }));
    // A second DELETE while the first close is under way must not start another.
    await sdk.send(new DeleteConnectionCommand({ ConnectionId: h.connectionId })).catch(() => undefined);
    expect((await h.client.closed).code).toBe(1000);
    sdk.destroy();
    await expectSingleDisconnect(h, 1000);
  });

  it('socket dropped without a close frame (1006)', async () => {
    const h = await harness();
    h.client.ws.terminate();
    await expectSingleDisconnect(h, 1006, '');
  });

  it('protocol error: invalid UTF-8 in a text frame (1007)', async () => {
    const h = await harness();
    h.client.ws.send(Buffer.from([0xc3, 0x28]), { binary: false });
    expect((await h.client.closed).code).toBe(1007);
    expect(h.message).not.toHaveBeenCalled();
    await expectSingleDisconnect(h, 1007);
  });

  it('gateway close() with 1001 Going away', async () => {
    const h = await harness();
    const closing = h.gateway.close();
    expect(h.gateway.close()).toBe(closing);
    await closing;
    expect(await h.client.closed).toEqual({ code: 1001, reason: 'Going away' });
    await expectSingleDisconnect(h, 1001, 'Going away');
  });
});

describe('gateway close()', () => {
  it('closes every connection, runs each $disconnect, and stops listening', async () => {
    const h = await harness();
    const others = await Promise.all([openClient(h.gateway.url), openClient(h.gateway.url)]);
    expect(h.gateway.connectionIds()).toHaveLength(3);
    await h.gateway.close();
    expect(h.disconnect).toHaveBeenCalledTimes(3);
    for (const client of [h.client, ...others]) expect((await client.closed).code).toBe(1001);
    expect(h.gateway.connectionIds()).toEqual([]);
    await expect(openClient(h.gateway.url)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('lets a $connect that is still running finish, then closes that connection too', async () => {
    const gated = gatedConnect();
    const release = gated.release;
    const connect = vi.fn<RouteHandler>(gated.handler);
    const disconnect = vi.fn<RouteHandler>(async () => undefined);
    const gateway = await startLocalGateway({ routes: { $connect: { handler: connect }, $disconnect: { handler: disconnect } } });
    gateways.push(gateway);
    const opening = openClient(gateway.url);
    await vi.waitFor(() => expect(connect).toHaveBeenCalledTimes(1));
    const closing = gateway.close();
    release();
    const client = await opening;
    await closing;
    expect((await client.closed).code).toBe(1001);
    expect(disconnect).toHaveBeenCalledTimes(1);
  });
});

describe('two gateways in one process', () => {
  it('run side by side on different ports with separate routes and connections', async () => {
    const replyA = vi.fn<RouteHandler>(async () => ({ statusCode: 200, body: 'from A' }));
    const replyB = vi.fn<RouteHandler>(async () => ({ statusCode: 200, body: 'from B' }));
    const a = await startLocalGateway({ stage: 'alpha', routes: { $default: { handler: replyA, twoWay: true } } });
    const b = await startLocalGateway({ stage: 'beta', routes: { $default: { handler: replyB, twoWay: true } } });
    gateways.push(a, b);
    expect(a.port).not.toBe(b.port);
    expect(a.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/alpha$/);
    expect(b.managementEndpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/beta$/);
    const clientA = await openClient(a.url);
    const clientB = await openClient(b.url);
    await clientA.send('hi');
    await clientB.send('hi');
    expect(await clientA.next()).toBe('from A');
    expect(await clientB.next()).toBe('from B');

    const [idA] = a.connectionIds();
    const sdkB = managementClient(b);
    const sdkA = managementClient(a);
    await expect(sdkB.send(new GetConnectionCommand({ ConnectionId: idA }))).rejects.toMatchObject({
      name: 'GoneException',
    });
    await sdkA.send(new PostToConnectionCommand({ ConnectionId: idA, Data: 'pushed' }));
    expect(await clientA.next()).toBe('pushed');

    await a.close();
    expect((await clientA.closed).code).toBe(1001);
    await clientB.send('still up');
    expect(await clientB.next()).toBe('from B');
    sdkA.destroy();
    sdkB.destroy();
    await clientB.close();
  });
});

describe('logging', () => {
  it('emits structured entries that never contain tokens or bodies', async () => {
    const entries: GatewayLogEntry[] = [];
    const lines: string[] = [];
    const toLines = jsonLineLog((line) => lines.push(line));
    const gateway = await startLocalGateway({
      routes: {
        $connect: { handler: async () => ({ statusCode: 200 }) },
        $default: {
          handler: async () => {
            throw new Error('SECRET-IN-ERROR');
          },
        },
      },
      log: (entry) => {
        entries.push(entry);
        toLines(entry);
      },
    });
    gateways.push(gateway);
    const client = await openClient(`${gateway.url}?token=SECRET-TOKEN`, {
      headers: { Authorization: 'Bearer SECRET-HEADER' },
    });
    await client.send('SECRET-BODY');
    expect(await client.next()).toContain('Internal server error');
    const sdk = managementClient(gateway);
    const [id] = gateway.connectionIds();
    await sdk.send(new PostToConnectionCommand({ ConnectionId: id, Data: 'SECRET-POST' }));
    await client.next();
    sdk.destroy();
    await client.close();
    await gateway.close();

    const events = entries.map((entry) => entry.event);
    expect(events).toEqual(
      expect.arrayContaining(['listening', 'connect', 'message', 'handler_error', 'management_request', 'disconnect', 'closed']),
    );
    expect(lines.length).toBe(entries.length);
    for (const line of lines) {
      expect(line.endsWith('\n')).toBe(true);
      const parsed: unknown = JSON.parse(line);
      expect(parsed).toMatchObject({ source: 'local-gateway', apiId: gateway.apiId, stage: 'local' });
    }
    expect(lines.join('')).not.toMatch(/SECRET/);
  });
});

import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GetConnectionCommand,
  GoneException,
  PayloadTooLargeException,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  startLocalGateway,
  type LocalGateway,
  type LocalGatewayOptions,
  type RouteHandler,
} from '../../local/gateway.js';
import { openClient, type TestClient } from '../../local/gateway/testing.js';

let gateway: LocalGateway | undefined;
let sdk: ApiGatewayManagementApiClient | undefined;
afterEach(async () => {
  sdk?.destroy();
  sdk = undefined;
  await gateway?.close();
  gateway = undefined;
});

interface Setup {
  gateway: LocalGateway;
  sdk: ApiGatewayManagementApiClient;
  client: TestClient;
  connectionId: string;
  connectedAt: number;
  disconnect: ReturnType<typeof vi.fn<RouteHandler>>;
  message: ReturnType<typeof vi.fn<RouteHandler>>;
}

async function setup(options: Partial<LocalGatewayOptions> = {}): Promise<Setup> {
  const connect = vi.fn<RouteHandler>(async () => ({ statusCode: 200 }));
  const disconnect = vi.fn<RouteHandler>(async () => ({ statusCode: 200 }));
  const message = vi.fn<RouteHandler>(async () => ({ statusCode: 200 }));
  gateway = await startLocalGateway({
    ...options,
    routes: { $connect: { handler: connect }, $disconnect: { handler: disconnect }, $default: { handler: message } },
  });
  sdk = new ApiGatewayManagementApiClient({
    endpoint: gateway.managementEndpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
  });
  const client = await openClient(gateway.url, { headers: { 'User-Agent': 'mgmt-test/1.0' } });
  const rc = connect.mock.calls[0]?.[0].requestContext;
  if (rc === undefined) throw new Error('$connect did not run');
  return { gateway, sdk, client, connectionId: rc.connectionId, connectedAt: rc.connectedAt, disconnect, message };
}

async function sdkError(work: Promise<unknown>): Promise<Error & { $metadata?: { httpStatusCode?: number } }> {
  try {
    await work;
  } catch (error) {
    if (error instanceof Error) return error;
    throw new Error('rejected with a non-Error');
  }
  throw new Error('the call succeeded');
}

describe('Management API through the real SDK client', () => {
  it('POST delivers the payload bytes to the client as a text frame', async () => {
    const s = await setup();
    const out = await s.sdk.send(new PostToConnectionCommand({ ConnectionId: s.connectionId, Data: '{"hello":"world"}' }));
    expect(out.$metadata.httpStatusCode).toBe(200);
    expect(await s.client.next()).toBe('{"hello":"world"}');
    await s.sdk.send(new PostToConnectionCommand({ ConnectionId: s.connectionId, Data: Buffer.from('héllo ✓', 'utf8') }));
    expect(await s.client.next()).toBe('héllo ✓');
    await s.client.close();
  });

  it('GET returns connectedAt, lastActiveAt and identity under the names the SDK maps', async () => {
    const s = await setup();
    const first = await s.sdk.send(new GetConnectionCommand({ ConnectionId: s.connectionId }));
    expect(first.$metadata.httpStatusCode).toBe(200);
    expect(first.ConnectedAt).toBeInstanceOf(Date);
    expect(first.ConnectedAt?.getTime()).toBe(s.connectedAt);
    expect(first.LastActiveAt).toBeInstanceOf(Date);
    expect(first.LastActiveAt?.getTime()).toBe(s.connectedAt);
    expect(first.Identity).toEqual({ SourceIp: '127.0.0.1', UserAgent: 'mgmt-test/1.0' });

    // Wait for the clock to move past connectedAt so a changed lastActiveAt is distinguishable.
    await vi.waitFor(() => expect(Date.now()).toBeGreaterThan(s.connectedAt));
    const beforeSend = Date.now();
    await s.client.send('activity');
    await vi.waitFor(() => expect(s.message).toHaveBeenCalledTimes(1));
    const second = await s.sdk.send(new GetConnectionCommand({ ConnectionId: s.connectionId }));
    expect(second.LastActiveAt?.getTime()).toBeGreaterThanOrEqual(beforeSend);
    expect(second.ConnectedAt?.getTime()).toBe(s.connectedAt);
    await s.client.close();
  });

  it('GET leaves UserAgent out when the client sent none', async () => {
    gateway = await startLocalGateway();
    sdk = new ApiGatewayManagementApiClient({
      endpoint: gateway.managementEndpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    });
    const client = await openClient(gateway.url);
    const [id] = gateway.connectionIds();
    const out = await sdk.send(new GetConnectionCommand({ ConnectionId: id }));
    expect(out.Identity).toEqual({ SourceIp: '127.0.0.1' });
    await client.close();
  });

  it('DELETE answers 204, closes the socket with 1000 and runs $disconnect once', async () => {
    const s = await setup();
    const out = await s.sdk.send(new DeleteConnectionCommand({ ConnectionId: s.connectionId }));
    expect(out.$metadata.httpStatusCode).toBe(204);
    expect((await s.client.closed).code).toBe(1000);
    await vi.waitFor(() => expect(s.disconnect).toHaveBeenCalledTimes(1));
    const rc = s.disconnect.mock.calls[0]?.[0].requestContext;
    expect(rc?.connectionId).toBe(s.connectionId);
    expect(rc?.disconnectStatusCode).toBe(1000);
    const again = await sdkError(s.sdk.send(new DeleteConnectionCommand({ ConnectionId: s.connectionId })));
    expect(again.name).toBe('GoneException');
    expect(s.disconnect).toHaveBeenCalledTimes(1);
  });

  it.each([['Ab+/Cd+/Ef+/Gh+='], ['++++////====+/+=']])(
    'URL-encodes and decodes a connection id such as %s',
    async (id) => {
      const s = await setup({ newConnectionId: () => id });
      expect(s.connectionId).toBe(id);
      await s.sdk.send(new PostToConnectionCommand({ ConnectionId: id, Data: 'encoded ok' }));
      expect(await s.client.next()).toBe('encoded ok');
      const got = await s.sdk.send(new GetConnectionCommand({ ConnectionId: id }));
      expect(got.Identity?.SourceIp).toBe('127.0.0.1');
      await s.sdk.send(new DeleteConnectionCommand({ ConnectionId: id }));
      expect((await s.client.closed).code).toBe(1000);
      await vi.waitFor(() => expect(s.disconnect).toHaveBeenCalledTimes(1));
      expect(s.disconnect.mock.calls[0]?.[0].requestContext.connectionId).toBe(id);
    },
  );

  it('treats an unencoded "/" in the id as a different path, as a real HTTP server would', async () => {
    const s = await setup({ newConnectionId: () => 'Ab+/Cd+/Ef+/Gh+=' });
    const res = await fetch(`${s.gateway.managementEndpoint}/@connections/Ab+/Cd+/Ef+/Gh+=`, {
      method: 'POST',
      body: 'x',
    });
    expect(res.status).toBe(404);
    await res.arrayBuffer();
    await s.client.close();
  });

  it('answers 410 GoneException for unknown and closed connections', async () => {
    const s = await setup();
    const unknown = 'AAAAAAAAAAAAAAA=';
    for (const call of [
      () => s.sdk.send(new PostToConnectionCommand({ ConnectionId: unknown, Data: 'x' })),
      () => s.sdk.send(new GetConnectionCommand({ ConnectionId: unknown })),
      () => s.sdk.send(new DeleteConnectionCommand({ ConnectionId: unknown })),
    ]) {
      const error = await sdkError(call());
      expect(error).toBeInstanceOf(GoneException);
      expect(error.name).toBe('GoneException');
      expect(error.$metadata?.httpStatusCode).toBe(410);
    }
    await s.client.close();
    await vi.waitFor(() => expect(s.disconnect).toHaveBeenCalledTimes(1));
    const error = await sdkError(s.sdk.send(new PostToConnectionCommand({ ConnectionId: s.connectionId, Data: 'late' })));
    expect(error.name).toBe('GoneException');
    expect(error.$metadata?.httpStatusCode).toBe(410);
  });

  it('answers 413 PayloadTooLargeException above maxPostBytes (128 KB by default) and accepts exactly the limit', async () => {
    const s = await setup();
    const error = await sdkError(
      s.sdk.send(new PostToConnectionCommand({ ConnectionId: s.connectionId, Data: Buffer.alloc(131_073, 0x61) })),
    );
    expect(error).toBeInstanceOf(PayloadTooLargeException);
    expect(error.name).toBe('PayloadTooLargeException');
    expect(error.$metadata?.httpStatusCode).toBe(413);
    await s.sdk.send(new PostToConnectionCommand({ ConnectionId: s.connectionId, Data: Buffer.alloc(131_072, 0x62) }));
    const frame = await s.client.next();
    expect(frame).toHaveLength(131_072);
    expect(s.client.received).toHaveLength(1);
    await s.client.close();
  });

  it('honours a smaller maxPostBytes', async () => {
    const s = await setup({ maxPostBytes: 10 });
    const error = await sdkError(
      s.sdk.send(new PostToConnectionCommand({ ConnectionId: s.connectionId, Data: '0123456789A' })),
    );
    expect(error.name).toBe('PayloadTooLargeException');
    await s.sdk.send(new PostToConnectionCommand({ ConnectionId: s.connectionId, Data: '0123456789' }));
    expect(await s.client.next()).toBe('0123456789');
    await s.client.close();
  });
});

describe('Management API over plain HTTP', () => {
  it('answers 404 and 405 with JSON errors, and accepts any Authorization header', async () => {
    const s = await setup();
    const base = s.gateway.managementEndpoint;
    const origin = `http://127.0.0.1:${s.gateway.port}`;
    const cases: [string, RequestInit, number, string][] = [
      [`${base}/@connections/`, { method: 'GET' }, 404, 'NotFoundException'],
      [`${base}/elsewhere`, { method: 'GET' }, 404, 'NotFoundException'],
      [`${origin}/other/@connections/${encodeURIComponent(s.connectionId)}`, { method: 'GET' }, 404, 'NotFoundException'],
      [`${base}/@connections/${encodeURIComponent(s.connectionId)}`, { method: 'PUT', body: 'x' }, 405, 'MethodNotAllowedException'],
      [`${base}/@connections/${encodeURIComponent(s.connectionId)}`, { method: 'PATCH' }, 405, 'MethodNotAllowedException'],
    ];
    for (const [url, init, status, errorType] of cases) {
      const res = await fetch(url, init);
      expect(res.status).toBe(status);
      expect(res.headers.get('x-amzn-errortype')).toBe(errorType);
      const body: unknown = await res.json();
      expect(body).toEqual({ message: expect.any(String) });
    }
    const ok = await fetch(`${base}/@connections/${encodeURIComponent(s.connectionId)}`, {
      method: 'POST',
      headers: { Authorization: 'AWS4-HMAC-SHA256 Credential=nonsense' },
      body: 'raw bytes',
    });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe('');
    expect(await s.client.next()).toBe('raw bytes');
    await s.client.close();
  });
});

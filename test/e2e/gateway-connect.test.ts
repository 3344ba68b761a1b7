import { request } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startLocalGateway, type LocalGateway, type RouteHandler, type RouteTable } from '../../local/gateway.js';
import { openClient, refusedStatus, gatedConnect } from '../../local/gateway/testing.js';

let gateway: LocalGateway | undefined;
afterEach(async () => {
  await gateway?.close();
  gateway = undefined;
});

async function start(connect: RouteHandler | undefined): Promise<{
  gateway: LocalGateway;
  disconnect: ReturnType<typeof vi.fn<RouteHandler>>;
}> {
  const disconnect = vi.fn<RouteHandler>(async () => ({ statusCode: 200 }));
  const routes: RouteTable = { $disconnect: { handler: disconnect } };
  if (connect !== undefined) routes.$connect = { handler: connect };
  gateway = await startLocalGateway({ routes });
  return { gateway, disconnect };
}

/** Lets any stray `$disconnect` run: a full connect/close round trip on a fresh socket finishes after it would. */
async function settle(gw: LocalGateway): Promise<void> {
  const probe = await openClient(gw.url);
  await probe.close();
}

describe('$connect', () => {
  it.each([401, 403, 429])('refuses the upgrade with the %i the handler returned, and never runs $disconnect', async (status) => {
    const connect = vi.fn<RouteHandler>(async () => ({ statusCode: status, body: 'no' }));
    const { gateway: gw, disconnect } = await start(connect);
    expect(await refusedStatus(gw.url)).toBe(status);
    expect(connect).toHaveBeenCalledTimes(1);
    expect(gw.connectionIds()).toEqual([]);
    connect.mockResolvedValue({ statusCode: 200 });
    await settle(gw);
    await vi.waitFor(() => expect(disconnect).toHaveBeenCalledTimes(1));
    const refusedId = connect.mock.calls[0]?.[0].requestContext.connectionId;
    const disconnectedIds = disconnect.mock.calls.map(([event]) => event.requestContext.connectionId);
    expect(disconnectedIds).not.toContain(refusedId);
  });

  it('refuses with 500 when the handler throws', async () => {
    const connect = vi.fn<RouteHandler>(async () => {
      throw new Error('boom');
    });
    const { gateway: gw, disconnect } = await start(connect);
    expect(await refusedStatus(gw.url)).toBe(500);
    expect(gw.connectionIds()).toEqual([]);
    connect.mockResolvedValue(undefined);
    await settle(gw);
    await vi.waitFor(() => expect(disconnect).toHaveBeenCalledTimes(1));
    expect(disconnect.mock.calls[0]?.[0].requestContext.connectionId).not.toBe(
      connect.mock.calls[0]?.[0].requestContext.connectionId,
    );
  });

  it('refuses with 502 when the handler returns a status that is not an HTTP status', async () => {
    const { gateway: gw } = await start(async () => ({ statusCode: 42 }));
    expect(await refusedStatus(gw.url)).toBe(502);
  });

  it('accepts a 2xx, a result without statusCode, and no result at all', async () => {
    const results = [{ statusCode: 204 }, { body: 'fine' }, undefined];
    const connect = vi.fn<RouteHandler>(async () => results.shift());
    const { gateway: gw } = await start(connect);
    for (let i = 0; i < 3; i += 1) {
      const client = await openClient(gw.url);
      await client.close();
    }
    expect(connect).toHaveBeenCalledTimes(3);
  });

  it('accepts every upgrade when there is no $connect route', async () => {
    const { gateway: gw, disconnect } = await start(undefined);
    const client = await openClient(gw.url);
    expect(gw.connectionIds()).toHaveLength(1);
    await client.close();
    await vi.waitFor(() => expect(disconnect).toHaveBeenCalledTimes(1));
  });

  it('holds the upgrade until the handler finishes', async () => {
    const gated = gatedConnect();
    const release = gated.release;
    const connect = vi.fn<RouteHandler>(gated.handler);
    const { gateway: gw } = await start(connect);
    let opened = false;
    const opening = openClient(gw.url).then((client) => {
      opened = true;
      return client;
    });
    await vi.waitFor(() => expect(connect).toHaveBeenCalledTimes(1));
    expect(opened).toBe(false);
    expect(gw.connectionIds()).toEqual([]);
    release();
    const client = await opening;
    expect(gw.connectionIds()).toHaveLength(1);
    await client.close();
  });

  it('runs $disconnect once with 1006 when the client leaves while $connect is still running', async () => {
    const gated = gatedConnect();
    const release = gated.release;
    const connect = vi.fn<RouteHandler>(gated.handler);
    const { gateway: gw, disconnect } = await start(connect);
    const opening = openClient(gw.url);
    opening.catch(() => undefined);
    await vi.waitFor(() => expect(connect).toHaveBeenCalledTimes(1));
    const connectionId = connect.mock.calls[0]?.[0].requestContext.connectionId;
    // A raw upgrade request whose socket is destroyed while its $connect is still pending.
    const req = request(gw.managementEndpoint, {
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version': '13',
      },
    });
    req.on('error', () => undefined);
    req.end();
    await vi.waitFor(() => expect(connect).toHaveBeenCalledTimes(2));
    const leftId = connect.mock.calls[1]?.[0].requestContext.connectionId;
    req.destroy();
    await new Promise((resolve) => req.once('close', resolve));
    release();
    (await opening).ws.close();
    await vi.waitFor(() => expect(disconnect).toHaveBeenCalledTimes(2));
    const byId = new Map(disconnect.mock.calls.map(([event]) => [event.requestContext.connectionId, event]));
    expect(byId.get(leftId ?? '')?.requestContext.disconnectStatusCode).toBe(1006);
    expect(byId.has(connectionId ?? '')).toBe(true);
    expect(byId.size).toBe(2);
  });

  it('honours a Sec-WebSocket-Protocol header returned by the handler', async () => {
    const connect = vi.fn<RouteHandler>(async (event) => {
      const offered = (event.headers?.['Sec-WebSocket-Protocol'] ?? '').split(',').map((p) => p.trim());
      return offered.includes('myprotocol')
        ? { statusCode: 200, headers: { 'sec-websocket-protocol': 'myprotocol' } }
        : { statusCode: 400 };
    });
    const { gateway: gw } = await start(connect);
    const client = await openClient(gw.url, { protocols: ['chat1', 'myprotocol'] });
    expect(client.ws.protocol).toBe('myprotocol');
    await client.close();
    expect(await refusedStatus(gw.url, { protocols: ['chat1'] })).toBe(400);
  });

  it('selects no subprotocol unless the handler returns one, so a client that requires one fails', async () => {
    const { gateway: gw, disconnect } = await start(async () => ({ statusCode: 200 }));
    await expect(openClient(gw.url, { protocols: ['chat1'] })).rejects.toThrow(/subprotocol/);
    await vi.waitFor(() => expect(disconnect).toHaveBeenCalledTimes(1));
  });

  it('answers 404 for any path other than /{stage}, without running $connect', async () => {
    const connect = vi.fn<RouteHandler>(async () => ({ statusCode: 200 }));
    const { gateway: gw } = await start(connect);
    const origin = `ws://127.0.0.1:${gw.port}`;
    expect(await refusedStatus(`${origin}/other`)).toBe(404);
    expect(await refusedStatus(`${origin}/local/extra`)).toBe(404);
    expect(await refusedStatus(`${origin}/`)).toBe(404);
    expect(connect).not.toHaveBeenCalled();
    const client = await openClient(`${origin}/local?x=1`);
    expect(connect).toHaveBeenCalledTimes(1);
    await client.close();
  });
});

import { afterEach, describe, expect, it, vi } from 'vitest';
import { startLocalGateway, type LocalGateway, type RouteHandler, type RouteTable } from '../../local/gateway.js';
import { openClient, type TestClient } from '../../local/gateway/testing.js';

let gateway: LocalGateway | undefined;
afterEach(async () => {
  await gateway?.close();
  gateway = undefined;
});

function replying(body: string): ReturnType<typeof vi.fn<RouteHandler>> {
  return vi.fn<RouteHandler>(async () => ({ statusCode: 200, body }));
}

/** Connects and also returns the connection id the gateway assigned (seen by $connect). */
async function connect(routes: RouteTable, extra: Parameters<typeof startLocalGateway>[0] = {}): Promise<{
  client: TestClient;
  connectionId: string;
}> {
  const seen = vi.fn<RouteHandler>(async () => ({ statusCode: 200 }));
  gateway = await startLocalGateway({ ...extra, routes: { ...routes, $connect: { handler: seen } } });
  const client = await openClient(gateway.url);
  const connectionId = seen.mock.calls[0]?.[0].requestContext.connectionId;
  if (connectionId === undefined) throw new Error('$connect did not run');
  return { client, connectionId };
}

const ERROR_FRAME = /^\{"message": "(Forbidden|Internal server error)", "connectionId":"([^"]+)", "requestId":"([^"]+)"\}$/;

describe('route selection', () => {
  it('routes by the action field, and falls back to $default otherwise', async () => {
    const join = replying('join');
    const fallback = vi.fn<RouteHandler>(async (event) => ({ statusCode: 200, body: `default:${event.requestContext.routeKey}` }));
    const { client } = await connect({ join: { handler: join, twoWay: true }, $default: { handler: fallback, twoWay: true } });

    await client.send('{"action":"join","room":"a"}');
    expect(await client.next()).toBe('join');
    for (const body of [
      '{"action":"unknown"}',
      'not json at all',
      '{"action":42}',
      '{"action":{"nested":"join"}}',
      '{"other":"join"}',
      '["join"]',
      '"join"',
      '{"action":"$connect"}',
      '{"action":"$disconnect"}',
    ]) {
      await client.send(body);
      expect(await client.next()).toBe('default:$default');
    }
    expect(join).toHaveBeenCalledTimes(1);
    expect(fallback).toHaveBeenCalledTimes(9);
    expect(fallback.mock.calls.map(([event]) => event.body)).toContain('not json at all');
    await client.close();
  });

  it('sends the Forbidden error frame when nothing matches and there is no $default', async () => {
    const join = replying('join');
    const { client, connectionId } = await connect({ join: { handler: join, twoWay: true } });
    await client.send('{"action":"leave"}');
    const frame = await client.next();
    const match = ERROR_FRAME.exec(frame);
    expect(match?.[1]).toBe('Forbidden');
    expect(match?.[2]).toBe(connectionId);
    expect(match?.[3]).toMatch(/^[A-Za-z0-9+/]{15}=$/);
    expect(JSON.parse(frame)).toEqual({ message: 'Forbidden', connectionId, requestId: match?.[3] });
    await client.send('plain text');
    expect(JSON.parse(await client.next())).toMatchObject({ message: 'Forbidden', connectionId });
    expect(join).not.toHaveBeenCalled();
    expect(client.ws.readyState).toBe(client.ws.OPEN);
    await client.close();
  });

  it('follows a dotted $request.body path', async () => {
    const typed = replying('typed');
    const fallback = replying('fallback');
    const { client } = await connect(
      { 'chat.send': { handler: typed, twoWay: true }, $default: { handler: fallback, twoWay: true } },
      { routeSelectionExpression: '$request.body.meta.kind' },
    );
    await client.send('{"meta":{"kind":"chat.send"}}');
    expect(await client.next()).toBe('typed');
    await client.send('{"action":"chat.send"}');
    expect(await client.next()).toBe('fallback');
    expect(typed.mock.calls[0]?.[0].requestContext.routeKey).toBe('chat.send');
    await client.close();
  });

  it('rejects a route selection expression it cannot evaluate', async () => {
    await expect(startLocalGateway({ routeSelectionExpression: '$request.header.x' })).rejects.toThrow(
      /routeSelectionExpression/,
    );
    await expect(startLocalGateway({ routeSelectionExpression: '$request.body.' })).rejects.toThrow(
      /routeSelectionExpression/,
    );
  });
});

describe('route responses', () => {
  it('echoes the body of a two-way route and sends nothing for a one-way route', async () => {
    const oneWay = replying('must not be sent');
    const emptyTwoWay = vi.fn<RouteHandler>(async () => ({ statusCode: 200, body: '' }));
    const noResult = vi.fn<RouteHandler>(async () => undefined);
    const twoWay = replying('pong');
    const { client } = await connect({
      quiet: { handler: oneWay },
      empty: { handler: emptyTwoWay, twoWay: true },
      nothing: { handler: noResult, twoWay: true },
      ping: { handler: twoWay, twoWay: true },
    });
    await client.send('{"action":"quiet"}');
    await client.send('{"action":"empty"}');
    await client.send('{"action":"nothing"}');
    await vi.waitFor(() => {
      expect(oneWay).toHaveBeenCalledTimes(1);
      expect(emptyTwoWay).toHaveBeenCalledTimes(1);
      expect(noResult).toHaveBeenCalledTimes(1);
    });
    await client.send('{"action":"ping"}');
    expect(await client.next()).toBe('pong');
    expect(client.received).toEqual(['pong']);
    await client.close();
  });

  it('sends the Internal server error frame when a handler throws, and keeps the connection open', async () => {
    const failing = vi.fn<RouteHandler>(async () => {
      throw new Error('handler exploded');
    });
    // Lambda also fails an invocation whose promise rejects with something that is not an Error.
    const rejectingWithString = vi.fn<RouteHandler>(() => Promise.reject('not an Error'));
    const ping = replying('pong');
    const disconnect = vi.fn<RouteHandler>(async () => undefined);
    const { client, connectionId } = await connect({
      fail: { handler: failing },
      fail2: { handler: rejectingWithString, twoWay: true },
      ping: { handler: ping, twoWay: true },
      $disconnect: { handler: disconnect },
    });
    await client.send('{"action":"fail"}');
    const frame = await client.next();
    const match = ERROR_FRAME.exec(frame);
    expect(match?.[1]).toBe('Internal server error');
    expect(match?.[2]).toBe(connectionId);
    const requestId = match?.[3];
    expect(failing.mock.calls[0]?.[0].requestContext.requestId).toBe(requestId);

    await client.send('{"action":"fail2"}');
    expect(JSON.parse(await client.next())).toMatchObject({ message: 'Internal server error', connectionId });

    await client.send('{"action":"ping"}');
    expect(await client.next()).toBe('pong');
    expect(client.ws.readyState).toBe(client.ws.OPEN);
    expect(disconnect).not.toHaveBeenCalled();
    await client.close();
  });

  it('handles frames of one connection concurrently, so a slow handler does not hold back a fast one', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow = vi.fn<RouteHandler>(async () => {
      await gate;
      return { statusCode: 200, body: 'slow' };
    });
    const fast = replying('fast');
    const { client } = await connect({ slow: { handler: slow, twoWay: true }, fast: { handler: fast, twoWay: true } });
    await client.send('{"action":"slow"}');
    await client.send('{"action":"fast"}');
    expect(await client.next()).toBe('fast');
    release();
    expect(await client.next()).toBe('slow');
    await client.close();
  });

  it('closes with 1003 on a binary frame, as API Gateway does', async () => {
    const fallback = replying('x');
    const disconnect = vi.fn<RouteHandler>(async () => undefined);
    const { client } = await connect({ $default: { handler: fallback }, $disconnect: { handler: disconnect } });
    client.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    expect((await client.closed).code).toBe(1003);
    await vi.waitFor(() => expect(disconnect).toHaveBeenCalledTimes(1));
    expect(disconnect.mock.calls[0]?.[0].requestContext.disconnectStatusCode).toBe(1003);
    expect(fallback).not.toHaveBeenCalled();
  });
});

import { afterEach, describe, expect, it, vi } from 'vitest';
import { PONG_TEMPLATE } from '../../deploy/routes.js';
import { startLocalGateway, type GatewayLogEntry, type LocalGateway, type RouteHandler, type RouteTable } from '../../local/gateway.js';
import { escapeJavaScript } from '../../local/gateway/mock.js';
import { openClient, type TestClient } from '../../local/gateway/testing.js';
import type { LocalWebsocketEvent } from '../../local/gateway/types.js';

let gateway: LocalGateway | undefined;
afterEach(async () => {
  await gateway?.close();
  gateway = undefined;
});

const ping = { mock: { responseTemplate: PONG_TEMPLATE }, twoWay: true } as const;

function spy(body: string): ReturnType<typeof vi.fn<RouteHandler>> {
  return vi.fn<RouteHandler>(async () => ({ statusCode: 200, body }));
}

/** Starts a gateway with these routes and a recording `$connect`, and opens one client. */
async function connect(
  routes: RouteTable,
  extra: Parameters<typeof startLocalGateway>[0] = {},
): Promise<{ client: TestClient; connected: LocalWebsocketEvent }> {
  const seen = vi.fn<RouteHandler>(async () => ({ statusCode: 200 }));
  gateway = await startLocalGateway({ ...extra, routes: { ...routes, $connect: { handler: seen } } });
  const client = await openClient(gateway.url);
  const connected = seen.mock.calls[0]?.[0];
  if (connected === undefined) throw new Error('$connect did not run');
  return { client, connected };
}

const ERROR_FRAME = /^\{"message": "Internal server error", "connectionId":"([^"]+)", "requestId":"([^"]+)"\}$/;

describe('a mock route (ping → pong)', () => {
  it('answers pong with the server time, and runs no handler', async () => {
    const other = spy('other');
    const fallback = spy('fallback');
    const { client } = await connect({ ping, other: { handler: other, twoWay: true }, $default: { handler: fallback, twoWay: true } });

    const before = Date.now();
    await client.send('{"action":"ping"}');
    const frame = await client.next();
    const after = Date.now();

    const pong = JSON.parse(frame) as { type: string; at: number };
    expect(Object.keys(pong).sort()).toEqual(['at', 'type']);
    expect(pong.type).toBe('pong');
    expect(pong.at).toBeGreaterThanOrEqual(before);
    expect(pong.at).toBeLessThanOrEqual(after);
    expect(other).not.toHaveBeenCalled();
    expect(fallback).not.toHaveBeenCalled();

    // Handler routes beside it work as before.
    await client.send('{"action":"other"}');
    expect(await client.next()).toBe('other');
    await client.close();
  });

  it('echoes a well-formed requestId; a malformed one (or none) gives a pong without it, always valid JSON', async () => {
    const { client } = await connect({ ping });
    await client.send('{"action":"ping","requestId":"r-1"}');
    expect(JSON.parse(await client.next())).toEqual({ type: 'pong', at: expect.any(Number), requestId: 'r-1' });

    // Empty, null, not the protocol's charset, too long, not a string, nested: no key, as for a frame without one.
    for (const requestId of ['', null, 'say "hi" \\ é\n', "it's", 'x'.repeat(65), 5, { toString: 'x' }, [[['deep']]]]) {
      await client.send(JSON.stringify({ action: 'ping', requestId }));
      expect(Object.keys(JSON.parse(await client.next()) as object).sort()).toEqual(['at', 'type']);
    }
    await client.close();
  });

  it('gives the template the request context a handler event would carry', async () => {
    const fields = ['requestId', 'connectionId', 'routeKey', 'eventType', 'messageId', 'stage', 'apiId', 'domainName', 'connectedAt'];
    const template = `{${fields.map((f) => `"${f}":"$context.${f}"`).join(',')},"sourceIp":"$context.identity.sourceIp","at":$context.requestTimeEpoch}`;
    const echo = vi.fn<RouteHandler>(async () => ({ statusCode: 200, body: 'handled' }));
    const { client, connected } = await connect(
      { context: { mock: { responseTemplate: template }, twoWay: true }, echo: { handler: echo, twoWay: true } },
      { stage: 'dev', apiId: 'abcdefghij' },
    );
    await client.send('{"action":"echo"}');
    expect(await client.next()).toBe('handled');
    const handlerContext = echo.mock.calls[0]?.[0].requestContext;

    await client.send('{"action":"context"}');
    const rendered = JSON.parse(await client.next()) as Record<string, string | number>;
    expect(rendered).toMatchObject({
      connectionId: connected.requestContext.connectionId,
      routeKey: 'context',
      eventType: 'MESSAGE',
      stage: 'dev',
      apiId: 'abcdefghij',
      domainName: handlerContext?.domainName,
      connectedAt: String(handlerContext?.connectedAt),
      sourceIp: handlerContext?.identity?.sourceIp,
    });
    expect(rendered.requestId).toMatch(/^[A-Za-z0-9+/]{15}=$/);
    expect(rendered.requestId).not.toBe(handlerContext?.requestId);
    expect(rendered.messageId).toMatch(/^[A-Za-z0-9+/]{15}=$/);
    expect(typeof rendered.at).toBe('number');
    await client.close();
  });

  it('reads the frame through $input.body, $input.path and $input.json', async () => {
    const template =
      "[$input.json('$'),\"$input.path('$.a.b')\",$input.json('$.a'),\"$input.path('$.list[1]')\",\"$input.path('$[\\'x y\\']')\"," +
      "\"$input.path('$.missing')\",\"$input.json('$.a.missing')\",$input.path('$.n'),\"$util.escapeJavaScript($input.body)\"," +
      "$util.parseJson('{\"k\":7}').k]";
    const { client } = await connect({ probe: { mock: { responseTemplate: template }, twoWay: true } });
    const body = '{"action":"probe","a":{"b":"deep"},"list":[1,"two"],"x y":"spaced","n":5}';
    await client.send(body);
    expect(JSON.parse(await client.next())).toEqual([JSON.parse(body), 'deep', { b: 'deep' }, 'two', 'spaced', '', '', 5, body, 7]);
    await client.close();
  });

  it('sends nothing back on a one-way mock route', async () => {
    const after = spy('after');
    const { client } = await connect({ quiet: { mock: { responseTemplate: '{"type":"quiet"}' } }, after: { handler: after, twoWay: true } });
    await client.send('{"action":"quiet"}');
    await client.send('{"action":"after"}');
    expect(await client.next()).toBe('after');
    expect(client.received).toEqual(['after']);
    await client.close();
  });

  it('keeps a pinging connection open past the idle timeout; a silent one is closed with 1001', async () => {
    const { client: pinger } = await connect({ ping }, { idleTimeoutMs: 400 });
    const silent = await openClient(gateway?.url ?? '');
    const started = Date.now();
    let pongs = 0;
    while (Date.now() - started < 1_200) {
      await pinger.send('{"action":"ping"}');
      await pinger.next();
      pongs += 1;
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    expect(pongs).toBeGreaterThanOrEqual(6);
    expect(pinger.ws.readyState).toBe(pinger.ws.OPEN);
    expect(await silent.closed).toEqual({ code: 1001, reason: 'Going away' });
    await pinger.close();
  });

  it('answers the Internal server error frame when the template fails, and logs it', async () => {
    const log: GatewayLogEntry[] = [];
    const { client, connected } = await connect(
      {
        badJson: { mock: { responseTemplate: "#set($x = $util.parseJson($input.path('$.text')))$x" }, twoWay: true },
        badSyntax: { mock: { responseTemplate: '{"type":"pong"#if(}' }, twoWay: true },
        badPath: { mock: { responseTemplate: "$input.path('$..deep')" }, twoWay: true },
        ping,
      },
      { log: (entry) => log.push(entry) },
    );
    const connectionId = connected.requestContext.connectionId;
    for (const action of ['badJson', 'badSyntax', 'badPath']) {
      await client.send(JSON.stringify({ action, text: 'not json' }));
      const match = ERROR_FRAME.exec(await client.next());
      expect(match?.[1], action).toBe(connectionId);
      const requestId = match?.[2];
      expect(log).toContainEqual(
        expect.objectContaining({ level: 'error', event: 'template_error', routeKey: action, connectionId, requestId, errorName: 'TemplateError' }),
      );
    }
    // The connection is still usable.
    await client.send('{"action":"ping"}');
    expect(JSON.parse(await client.next())).toMatchObject({ type: 'pong' });
    expect(JSON.stringify(log)).not.toContain('not json');
    await client.close();
  });
});

describe('$util.escapeJavaScript', () => {
  it("escapes as Java's escapeJavaScript does, single quote and slash included", () => {
    expect(escapeJavaScript('a"b\\c/d\'e\n\t\u0001é€')).toBe('a\\"b\\\\c\\/d\\\'e\\n\\t\\u0001\\u00E9\\u20AC');
    expect(escapeJavaScript(42)).toBe('42');
  });
});

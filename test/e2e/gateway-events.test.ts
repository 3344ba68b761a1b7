import type { APIGatewayProxyWebsocketHandlerV2, Context } from 'aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  startLocalGateway,
  type LocalGateway,
  type LocalWebsocketEvent,
  type RouteHandler,
  type RouteTable,
} from '../../local/gateway.js';
import { openClient } from '../../local/gateway/testing.js';

const AWS_ID = /^[A-Za-z0-9+/]{15}=$/;
const REQUEST_TIME = /^\d{2}\/(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\/\d{4}:\d{2}:\d{2}:\d{2} \+0000$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Independent re-statement of API Gateway's requestTime format, to cross-check the emulator's. */
function expectedRequestTime(epochMs: number): string {
  const d = new Date(epochMs);
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(d.getUTCDate())}/${months[d.getUTCMonth()] ?? '?'}/${d.getUTCFullYear()}:${two(d.getUTCHours())}:${two(
    d.getUTCMinutes(),
  )}:${two(d.getUTCSeconds())} +0000`;
}

function call(spy: ReturnType<typeof vi.fn<RouteHandler>>, index = 0): { event: LocalWebsocketEvent; context: Context } {
  const args = spy.mock.calls[index];
  if (args === undefined) throw new Error(`handler call ${index} did not happen`);
  return { event: args[0], context: args[1] };
}

let gateway: LocalGateway | undefined;
afterEach(async () => {
  await gateway?.close();
  gateway = undefined;
});

function spies(): {
  connect: ReturnType<typeof vi.fn<RouteHandler>>;
  message: ReturnType<typeof vi.fn<RouteHandler>>;
  disconnect: ReturnType<typeof vi.fn<RouteHandler>>;
  routes: RouteTable;
} {
  const connect = vi.fn<RouteHandler>(async () => ({ statusCode: 200 }));
  const message = vi.fn<RouteHandler>(async () => ({ statusCode: 200, body: 'ok' }));
  const disconnect = vi.fn<RouteHandler>(async () => ({ statusCode: 200 }));
  return {
    connect,
    message,
    disconnect,
    routes: {
      $connect: { handler: connect },
      echo: { handler: message, twoWay: true },
      $disconnect: { handler: disconnect },
    },
  };
}

describe('CONNECT event', () => {
  it('carries headers, query strings and the full requestContext, without body or messageId', async () => {
    const { connect, routes } = spies();
    gateway = await startLocalGateway({ routes, stage: 'dev', apiId: 'abcdefghij' });
    const before = Date.now();
    const client = await openClient(`${gateway.url}?token=t0k&room=a&room=b&flag&enc=a%20b%2Bc`, {
      headers: { 'User-Agent': 'gateway-test/1.0', 'X-Custom-Header': 'custom' },
    });
    const after = Date.now();
    expect(connect).toHaveBeenCalledTimes(1);
    const { event, context } = call(connect);

    expect(Object.keys(event).sort()).toEqual([
      'headers',
      'isBase64Encoded',
      'multiValueHeaders',
      'multiValueQueryStringParameters',
      'queryStringParameters',
      'requestContext',
    ]);
    expect(event.isBase64Encoded).toBe(false);
    expect(event.body).toBeUndefined();
    expect(event.queryStringParameters).toEqual({ token: 't0k', room: 'b', flag: '', enc: 'a b+c' });
    expect(event.multiValueQueryStringParameters).toEqual({ token: ['t0k'], room: ['a', 'b'], flag: [''], enc: ['a b+c'] });

    const host = `127.0.0.1:${gateway.port}`;
    expect(event.headers).toMatchObject({
      Host: host,
      'User-Agent': 'gateway-test/1.0',
      'X-Custom-Header': 'custom',
      'Sec-WebSocket-Version': '13',
      'X-Forwarded-For': '127.0.0.1',
      'X-Forwarded-Port': String(gateway.port),
      'X-Forwarded-Proto': 'http',
    });
    expect(event.headers?.['Sec-WebSocket-Key']).toMatch(/^[A-Za-z0-9+/]{22}==$/);
    expect(event.headers?.['X-Amzn-Trace-Id']).toMatch(/^Root=1-[0-9a-f]{8}-[0-9a-f]{24}$/);
    expect(event.headers).not.toHaveProperty('Connection');
    expect(event.headers).not.toHaveProperty('Upgrade');
    expect(event.multiValueHeaders?.['Host']).toEqual([host]);
    expect(event.multiValueHeaders?.['X-Custom-Header']).toEqual(['custom']);
    expect(Object.keys(event.multiValueHeaders ?? {}).sort()).toEqual(Object.keys(event.headers ?? {}).sort());

    const rc = event.requestContext;
    expect(Object.keys(rc).sort()).toEqual([
      'apiId',
      'connectedAt',
      'connectionId',
      'domainName',
      'eventType',
      'extendedRequestId',
      'identity',
      'messageDirection',
      'requestId',
      'requestTime',
      'requestTimeEpoch',
      'routeKey',
      'stage',
    ]);
    expect(rc.routeKey).toBe('$connect');
    expect(rc.eventType).toBe('CONNECT');
    expect(rc.messageDirection).toBe('IN');
    expect(rc.stage).toBe('dev');
    expect(rc.apiId).toBe('abcdefghij');
    expect(rc.domainName).toBe(host);
    expect(rc.connectionId).toMatch(AWS_ID);
    expect(rc.connectionId).toHaveLength(16);
    expect(rc.extendedRequestId).toMatch(AWS_ID);
    expect(rc.requestId).toBe(rc.extendedRequestId);
    expect(rc.identity).toEqual({ sourceIp: '127.0.0.1', userAgent: 'gateway-test/1.0' });
    expect(rc.requestTimeEpoch).toBeGreaterThanOrEqual(before);
    expect(rc.requestTimeEpoch).toBeLessThanOrEqual(after);
    expect(rc.connectedAt).toBeGreaterThanOrEqual(before);
    expect(rc.connectedAt).toBeLessThanOrEqual(rc.requestTimeEpoch);
    expect(rc.requestTime).toMatch(REQUEST_TIME);
    expect(rc.requestTime).toBe(expectedRequestTime(rc.requestTimeEpoch));
    expect(gateway.connectionIds()).toEqual([rc.connectionId]);

    expect(context.functionName).toBe('local-connect');
    expect(context.functionVersion).toBe('$LATEST');
    expect(context.awsRequestId).toMatch(UUID);
    expect(context.invokedFunctionArn).toBe('arn:aws:lambda:us-east-1:000000000000:function:local-connect');
    expect(context.memoryLimitInMB).toBe('128');
    expect(context.logGroupName).toBe('/aws/lambda/local-connect');
    expect(context.logStreamName).toMatch(/^\d{4}\/\d{2}\/\d{2}\/\[\$LATEST\][0-9a-f]{32}$/);
    expect(typeof context.callbackWaitsForEmptyEventLoop).toBe('boolean');
    expect(context.getRemainingTimeInMillis()).toBeGreaterThan(0);
    expect(() => context.succeed('late')).not.toThrow();
    expect(() => context.done()).not.toThrow();
    expect(() => context.fail('late')).not.toThrow();

    await client.close();
  });

  it('leaves both query string maps out when the URL has no query string', async () => {
    const { connect, routes } = spies();
    gateway = await startLocalGateway({ routes });
    const client = await openClient(gateway.url);
    const { event } = call(connect);
    expect(event).not.toHaveProperty('queryStringParameters');
    expect(event).not.toHaveProperty('multiValueQueryStringParameters');
    expect(event.requestContext.stage).toBe('local');
    expect(event.requestContext.apiId).toMatch(/^[a-z0-9]{10}$/);
    expect(event.requestContext.identity).toEqual({ sourceIp: '127.0.0.1' });
    await client.close();
  });

  it('issues AWS-shaped connection ids: 16 base64 characters ending in "="', async () => {
    const { connect, routes } = spies();
    gateway = await startLocalGateway({ routes });
    const clients = await Promise.all(Array.from({ length: 8 }, async () => openClient(gateway?.url ?? '')));
    const ids = connect.mock.calls.map(([event]) => event.requestContext.connectionId);
    expect(ids).toHaveLength(8);
    expect(new Set(ids).size).toBe(8);
    for (const id of ids) {
      expect(id).toMatch(AWS_ID);
      expect(Buffer.from(id, 'base64')).toHaveLength(11);
    }
    await Promise.all(clients.map((client) => client.close()));
  });
});

describe('MESSAGE event', () => {
  it('carries the body and a requestContext with a fresh requestId and messageId, and no headers', async () => {
    const { connect, message, routes } = spies();
    gateway = await startLocalGateway({ routes });
    const client = await openClient(gateway.url, { headers: { 'User-Agent': 'ua/2' } });
    const connectRc = call(connect).event.requestContext;

    const before = Date.now();
    await client.send('{"action":"echo","n":1}');
    expect(await client.next()).toBe('ok');
    await client.send('{"action":"echo","n":2}');
    expect(await client.next()).toBe('ok');
    const after = Date.now();

    const first = call(message, 0);
    const second = call(message, 1);
    expect(Object.keys(first.event).sort()).toEqual(['body', 'isBase64Encoded', 'requestContext']);
    expect(first.event.body).toBe('{"action":"echo","n":1}');
    expect(first.event.isBase64Encoded).toBe(false);
    expect(first.event).not.toHaveProperty('headers');

    const rc = first.event.requestContext;
    expect(Object.keys(rc).sort()).toEqual([
      'apiId',
      'connectedAt',
      'connectionId',
      'domainName',
      'eventType',
      'extendedRequestId',
      'identity',
      'messageDirection',
      'messageId',
      'requestId',
      'requestTime',
      'requestTimeEpoch',
      'routeKey',
      'stage',
    ]);
    expect(rc.routeKey).toBe('echo');
    expect(rc.eventType).toBe('MESSAGE');
    expect(rc.messageDirection).toBe('IN');
    expect(rc.messageId).toMatch(AWS_ID);
    expect(rc.requestId).toMatch(AWS_ID);
    expect(rc.extendedRequestId).toBe(rc.requestId);
    expect(rc.messageId).not.toBe(rc.requestId);
    expect(rc.requestId).not.toBe(connectRc.requestId);
    expect(rc.connectionId).toBe(connectRc.connectionId);
    expect(rc.connectedAt).toBe(connectRc.connectedAt);
    expect(rc.domainName).toBe(connectRc.domainName);
    expect(rc.identity).toEqual({ sourceIp: '127.0.0.1', userAgent: 'ua/2' });
    expect(rc.requestTimeEpoch).toBeGreaterThanOrEqual(before);
    expect(rc.requestTimeEpoch).toBeLessThanOrEqual(after);
    expect(rc.requestTime).toBe(expectedRequestTime(rc.requestTimeEpoch));

    const rc2 = second.event.requestContext;
    expect(rc2.requestId).not.toBe(rc.requestId);
    expect(rc2.messageId).not.toBe(rc.messageId);
    expect(second.context.functionName).toBe('local-echo');
    expect(second.context.awsRequestId).not.toBe(first.context.awsRequestId);
    await client.close();
  });
});

describe('DISCONNECT event', () => {
  it('carries the stub headers, the close code and reason, and no messageId', async () => {
    const { connect, disconnect, routes } = spies();
    gateway = await startLocalGateway({ routes });
    const client = await openClient(gateway.url, { headers: { 'User-Agent': 'ua/3' } });
    const connectRc = call(connect).event.requestContext;
    await client.close(4000, 'bye now');
    await vi.waitFor(() => expect(disconnect).toHaveBeenCalledTimes(1));
    const { event, context } = call(disconnect);
    const host = `127.0.0.1:${gateway.port}`;

    expect(Object.keys(event).sort()).toEqual(['headers', 'isBase64Encoded', 'multiValueHeaders', 'requestContext']);
    expect(event.headers).toEqual({ Host: host, 'x-api-key': '', 'X-Forwarded-For': '', 'x-restapi': '' });
    expect(event.multiValueHeaders).toEqual({
      Host: [host],
      'x-api-key': [''],
      'X-Forwarded-For': [''],
      'x-restapi': [''],
    });
    expect(event.isBase64Encoded).toBe(false);
    const rc = event.requestContext;
    expect(Object.keys(rc).sort()).toEqual([
      'apiId',
      'connectedAt',
      'connectionId',
      'disconnectReason',
      'disconnectStatusCode',
      'domainName',
      'eventType',
      'extendedRequestId',
      'identity',
      'messageDirection',
      'requestId',
      'requestTime',
      'requestTimeEpoch',
      'routeKey',
      'stage',
    ]);
    expect(rc.routeKey).toBe('$disconnect');
    expect(rc.eventType).toBe('DISCONNECT');
    expect(rc.disconnectStatusCode).toBe(4000);
    expect(rc.disconnectReason).toBe('bye now');
    expect(rc.connectionId).toBe(connectRc.connectionId);
    expect(rc.connectedAt).toBe(connectRc.connectedAt);
    expect(rc.requestId).toMatch(AWS_ID);
    expect(rc.extendedRequestId).toBe(rc.requestId);
    expect(rc.requestTime).toBe(expectedRequestTime(rc.requestTimeEpoch));
    expect(rc.identity).toEqual({ sourceIp: '127.0.0.1', userAgent: 'ua/3' });
    expect(context.functionName).toBe('local-disconnect');
    expect(gateway.connectionIds()).toEqual([]);
  });

  it('reports 1005 and an empty reason when the client closes without a code', async () => {
    const { disconnect, routes } = spies();
    gateway = await startLocalGateway({ routes });
    const client = await openClient(gateway.url);
    await client.close();
    await vi.waitFor(() => expect(disconnect).toHaveBeenCalledTimes(1));
    const rc = call(disconnect).event.requestContext;
    expect(rc.disconnectStatusCode).toBe(1005);
    expect(rc.disconnectReason).toBe('');
  });
});

describe('handler typing', () => {
  it('accepts handlers typed with @types/aws-lambda without casts', async () => {
    const typed: APIGatewayProxyWebsocketHandlerV2 = async (event) => ({
      statusCode: 200,
      body: `${event.requestContext.eventType}:${event.requestContext.routeKey}`,
    });
    gateway = await startLocalGateway({ routes: { $default: { handler: typed, twoWay: true } } });
    const client = await openClient(gateway.url);
    await client.send('hello');
    expect(await client.next()).toBe('MESSAGE:$default');
    await client.close();
  });

  it('settles callback-style handlers when they call back', async () => {
    const handler: RouteHandler = (_event, _context, callback) => {
      setImmediate(() => callback(null, { statusCode: 200, body: 'called back' }));
    };
    gateway = await startLocalGateway({ routes: { $default: { handler, twoWay: true } } });
    const client = await openClient(gateway.url);
    await client.send('x');
    expect(await client.next()).toBe('called back');
    await client.close();
  });
});

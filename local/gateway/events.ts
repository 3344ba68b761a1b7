import type {
  ConnectEvent,
  DisconnectEvent,
  MessageEvent,
  WebsocketIdentity,
} from './types.js';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** API Gateway's `requestTime`: `dd/MMM/yyyy:HH:mm:ss +0000` in UTC with English month names. */
export function formatRequestTime(epochMs: number): string {
  const d = new Date(epochMs);
  const month = MONTHS[d.getUTCMonth()] ?? 'Jan';
  return (
    `${pad2(d.getUTCDate())}/${month}/${d.getUTCFullYear()}:` +
    `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} +0000`
  );
}

/** Hop-by-hop headers API Gateway consumes itself and does not hand to the integration. */
const DROPPED_HEADERS = new Set(['connection', 'upgrade']);

export interface HeaderMaps {
  headers: Record<string, string>;
  multiValueHeaders: Record<string, string[]>;
}

/**
 * Builds the single- and multi-value header maps from Node's raw header list, keeping the client's spelling of each
 * name as API Gateway does (Node lower-cases `req.headers`). The single-value map holds the last value seen.
 */
export function headerMaps(rawHeaders: readonly string[], extra: readonly [string, string][]): HeaderMaps {
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  const add = (name: string, value: string): void => {
    headers[name] = value;
    const list = multiValueHeaders[name];
    if (list === undefined) multiValueHeaders[name] = [value];
    else list.push(value);
  };
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i];
    const value = rawHeaders[i + 1];
    if (name === undefined || value === undefined) continue;
    if (DROPPED_HEADERS.has(name.toLowerCase())) continue;
    add(name, value);
  }
  for (const [name, value] of extra) add(name, value);
  return { headers, multiValueHeaders };
}

function decodeComponent(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

export interface QueryMaps {
  queryStringParameters: Record<string, string>;
  multiValueQueryStringParameters: Record<string, string[]>;
}

/**
 * Parses a raw query string (without `?`) into API Gateway's two maps, or undefined when there is nothing to parse, in
 * which case API Gateway leaves both fields out. Values are percent-decoded; `+` is left as is.
 */
export function queryMaps(rawQuery: string): QueryMaps | undefined {
  const single: Record<string, string> = {};
  const multi: Record<string, string[]> = {};
  let any = false;
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = decodeComponent(eq === -1 ? part : part.slice(0, eq));
    const value = eq === -1 ? '' : decodeComponent(part.slice(eq + 1));
    single[key] = value;
    const list = multi[key];
    if (list === undefined) multi[key] = [value];
    else list.push(value);
    any = true;
  }
  return any ? { queryStringParameters: single, multiValueQueryStringParameters: multi } : undefined;
}

/** What every event of one connection shares. */
export interface ConnectionFacts {
  connectionId: string;
  connectedAt: number;
  identity: WebsocketIdentity;
  domainName: string;
  stage: string;
  apiId: string;
}

function identityCopy(identity: WebsocketIdentity): WebsocketIdentity {
  return identity.userAgent === undefined
    ? { sourceIp: identity.sourceIp }
    : { sourceIp: identity.sourceIp, userAgent: identity.userAgent };
}

/** The requestContext fields every event type carries (routeKey, eventType and the type's own come on top). */
function sharedContext(facts: ConnectionFacts, requestId: string, requestTimeEpoch: number) {
  return {
    extendedRequestId: requestId,
    requestTime: formatRequestTime(requestTimeEpoch),
    messageDirection: 'IN' as const,
    stage: facts.stage,
    connectedAt: facts.connectedAt,
    requestTimeEpoch,
    identity: identityCopy(facts.identity),
    requestId,
    domainName: facts.domainName,
    connectionId: facts.connectionId,
    apiId: facts.apiId,
  };
}

export function connectEvent(
  facts: ConnectionFacts,
  requestId: string,
  requestTimeEpoch: number,
  headers: HeaderMaps,
  query: QueryMaps | undefined,
): ConnectEvent {
  const event: ConnectEvent = {
    headers: headers.headers,
    multiValueHeaders: headers.multiValueHeaders,
    requestContext: { routeKey: '$connect', eventType: 'CONNECT', ...sharedContext(facts, requestId, requestTimeEpoch) },
    isBase64Encoded: false,
  };
  if (query !== undefined) {
    event.queryStringParameters = query.queryStringParameters;
    event.multiValueQueryStringParameters = query.multiValueQueryStringParameters;
  }
  return event;
}

export function messageEvent(
  facts: ConnectionFacts,
  routeKey: string,
  requestId: string,
  messageId: string,
  requestTimeEpoch: number,
  body: string,
): MessageEvent {
  return {
    requestContext: { routeKey, messageId, eventType: 'MESSAGE', ...sharedContext(facts, requestId, requestTimeEpoch) },
    body,
    isBase64Encoded: false,
  };
}

export function disconnectEvent(
  facts: ConnectionFacts,
  requestId: string,
  requestTimeEpoch: number,
  statusCode: number,
  reason: string,
): DisconnectEvent {
  // API Gateway has no HTTP request at disconnect time, so it sends these fixed stand-in headers.
  return {
    headers: { Host: facts.domainName, 'x-api-key': '', 'X-Forwarded-For': '', 'x-restapi': '' },
    multiValueHeaders: { Host: [facts.domainName], 'x-api-key': [''], 'X-Forwarded-For': [''], 'x-restapi': [''] },
    requestContext: {
      routeKey: '$disconnect',
      disconnectStatusCode: statusCode,
      eventType: 'DISCONNECT',
      disconnectReason: reason,
      ...sharedContext(facts, requestId, requestTimeEpoch),
    },
    isBase64Encoded: false,
  };
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Callback, Context } from 'aws-lambda';

/** `identity` as API Gateway fills it for WebSocket proxy events (the fields that are not null on a plain API). */
export interface WebsocketIdentity {
  sourceIp: string;
  userAgent?: string;
}

interface RequestContextBase {
  routeKey: string;
  extendedRequestId: string;
  requestTime: string;
  messageDirection: 'IN';
  stage: string;
  connectedAt: number;
  requestTimeEpoch: number;
  identity: WebsocketIdentity;
  requestId: string;
  domainName: string;
  connectionId: string;
  apiId: string;
}

export interface ConnectRequestContext extends RequestContextBase {
  routeKey: '$connect';
  eventType: 'CONNECT';
}

export interface MessageRequestContext extends RequestContextBase {
  eventType: 'MESSAGE';
  messageId: string;
}

export interface DisconnectRequestContext extends RequestContextBase {
  routeKey: '$disconnect';
  eventType: 'DISCONNECT';
  disconnectStatusCode: number;
  disconnectReason: string;
}

export interface ConnectEvent {
  headers: Record<string, string>;
  multiValueHeaders: Record<string, string[]>;
  queryStringParameters?: Record<string, string>;
  multiValueQueryStringParameters?: Record<string, string[]>;
  requestContext: ConnectRequestContext;
  isBase64Encoded: false;
}

export interface MessageEvent {
  requestContext: MessageRequestContext;
  body: string;
  isBase64Encoded: false;
}

export interface DisconnectEvent {
  headers: Record<string, string>;
  multiValueHeaders: Record<string, string[]>;
  requestContext: DisconnectRequestContext;
  isBase64Encoded: false;
}

/** What the gateway actually emits; narrow on `requestContext.eventType`. */
export type GatewayEvent = ConnectEvent | MessageEvent | DisconnectEvent;

/**
 * The handler-facing event shape. Fields that exist on only some event types are optional, and `identity` is optional
 * too, so that handlers typed with @types/aws-lambda's `APIGatewayProxyWebsocketHandlerV2` (which omits it) still fit
 * `RouteHandler` without casts.
 */
export interface LocalWebsocketEvent {
  headers?: Record<string, string>;
  multiValueHeaders?: Record<string, string[]>;
  queryStringParameters?: Record<string, string | undefined>;
  multiValueQueryStringParameters?: Record<string, string[] | undefined>;
  body?: string;
  isBase64Encoded: boolean;
  requestContext: {
    routeKey: string;
    eventType: 'CONNECT' | 'MESSAGE' | 'DISCONNECT';
    messageId?: string;
    extendedRequestId: string;
    requestTime: string;
    messageDirection: 'IN';
    stage: string;
    connectedAt: number;
    requestTimeEpoch: number;
    identity?: WebsocketIdentity;
    requestId: string;
    domainName: string;
    connectionId: string;
    apiId: string;
    disconnectStatusCode?: number;
    disconnectReason?: string;
  };
}

/** The Lambda proxy result API Gateway reads back. */
export interface RouteResult {
  statusCode?: number;
  body?: string;
  headers?: Record<string, string | number | boolean>;
  multiValueHeaders?: Record<string, (string | number | boolean)[]>;
  isBase64Encoded?: boolean;
  cookies?: string[];
}

/** A Lambda result may also be a bare string (HTTP-API style); the gateway treats it as the body with status 200. */
export type RouteHandlerResult = RouteResult | string;

/**
 * A Lambda handler. Declared through a method so its parameters compare bivariantly: that lets a handler written
 * against @types/aws-lambda's WebSocket event type be registered directly. Async handlers are the norm and should
 * resolve to a `RouteHandlerResult` or nothing; a handler that declares a third parameter and returns no promise is
 * treated as callback-style and settles when it calls back.
 *
 * The return type is `unknown` because Lambda handler types return `void | Promise<...>`, and results are read
 * defensively at run time (`statusCode`, `body`, `headers`) exactly as API Gateway reads a proxy response.
 */
export type RouteHandler = {
  handle(event: LocalWebsocketEvent, context: Context, callback: Callback<RouteHandlerResult>): unknown;
}['handle'];

/** A route integrated with a Lambda function (proxy integration): the gateway invokes `handler`. */
export interface HandlerRouteDefinition {
  handler: RouteHandler;
  /** Two-way routes send a non-empty string `body` of the handler's result back to the caller as a text frame. */
  twoWay?: boolean;
}

export type RouteDefinition = HandlerRouteDefinition;

/** Route key (`$connect`, `$disconnect`, `$default` or a custom key) to its integration. */
export type RouteTable = Record<string, RouteDefinition>;

/** One structured gateway event for logging. Never carries tokens, query strings, headers or message bodies. */
export interface GatewayLogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  event: string;
  apiId: string;
  stage: string;
  connectionId?: string;
  routeKey?: string;
  requestId?: string;
  statusCode?: number;
  closeCode?: number;
  bytes?: number;
  method?: string;
  errorName?: string;
  address?: string;
}

export interface LocalGatewayOptions {
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** Bind address; defaults to 127.0.0.1. */
  host?: string;
  /** Stage name, the first path segment of both URLs; defaults to `local`. */
  stage?: string;
  routes?: RouteTable;
  /** Only `$request.body.<dotted.path>` is supported; defaults to `$request.body.action`. */
  routeSelectionExpression?: string;
  /** Defaults to a random 10-character lowercase id. */
  apiId?: string;
  /** Close with 1001 after this long without a client data frame; defaults to 10 minutes as on AWS. */
  idleTimeoutMs?: number;
  /** Close with 1001 after this long regardless of traffic; defaults to 2 hours as on AWS. */
  maxConnectionMs?: number;
  /** Largest single client frame payload; defaults to 32 KB as on AWS. */
  maxFrameBytes?: number;
  /** Largest client message (all fragments); defaults to 128 KB as on AWS. */
  maxMessageBytes?: number;
  /** Largest PostToConnection payload; defaults to 128 KB as on AWS. */
  maxPostBytes?: number;
  /** Structured events (JSON-serialisable); nothing is logged without it. */
  log?: (entry: GatewayLogEntry) => void;
  /**
   * A modelled Management API latency (benchmarks): each request to the Management API (POST, GET, DELETE
   * `@connections/…`) waits this long before it is acted on and answered, as a call to API Gateway takes a network
   * round trip; a posted frame reaches its connection at the end of the wait. Defaults to 0 (no wait).
   */
  managementDelayMs?: number;
  /**
   * A client that has not sent its request headers (a WebSocket upgrade's included) this long after connecting is
   * cut off (408, or the socket closed); defaults to 10 s.
   */
  headersTimeoutMs?: number;
  /** The longest a whole HTTP request (Management API, web page) may take to arrive; defaults to 30 s. */
  requestTimeoutMs?: number;
  /** A WebSocket handshake whose `$connect` has not decided after this long answers 504; defaults to 29 s as on AWS. */
  handshakeTimeoutMs?: number;
  /** Replaces the random connection id source, so tests can force ids that need URL encoding. Must be unique. */
  newConnectionId?: () => string;
  /**
   * Plain HTTP requests outside the Management API (the local web page and its dev endpoints): tried first;
   * resolves true when it answered the request. Not part of API Gateway.
   */
  http?: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;
}

export interface LocalGateway {
  /** `ws://host:port/stage` for clients. */
  url: string;
  /** `http://host:port/stage` for `ApiGatewayManagementApiClient({ endpoint })`. */
  managementEndpoint: string;
  apiId: string;
  stage: string;
  port: number;
  /** Ids of connections that are open now. */
  connectionIds(): string[];
  /**
   * Drops a connection without running `$disconnect`, as API Gateway may never deliver one (for tests of what
   * must not depend on it): the socket is gone, posts to it answer 410, the backend is not told. False if unknown.
   */
  loseConnection(connectionId: string): boolean;
  /** Closes every connection (running `$disconnect` for each), then the servers; resolves when all is down. */
  close(): Promise<void>;
}

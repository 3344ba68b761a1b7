/**
 * A local stand-in for an API Gateway WebSocket API with Lambda proxy integrations, plus its Management API
 * (`@connections`) on the same port, so backend code and the real AWS SDK client run unchanged against it.
 *
 * Messages on one connection are dispatched concurrently, as on AWS: each frame starts its handler as soon as it
 * arrives, and two-way replies go out in the order handlers finish, not the order frames came in.
 *
 * Known differences from AWS, kept deliberately small:
 * - plain `ws://`/`http://` on loopback; SigV4 on the Management API is not verified; no authorizers, API keys,
 *   throttling, stage variables, non-proxy integrations, or the 29 s integration timeout;
 * - only `$request.body.<path>` route selection; ping/pong frames do not count as activity for the idle timeout;
 * - close reasons other than `Going away` (idle, max duration, shutdown) are not documented by AWS, so none are sent.
 */
export { startLocalGateway } from './gateway/server.js';
export { jsonLineLog } from './gateway/log.js';
export type {
  ConnectEvent,
  ConnectRequestContext,
  DisconnectEvent,
  DisconnectRequestContext,
  GatewayEvent,
  GatewayLogEntry,
  HandlerRouteDefinition,
  LocalGateway,
  LocalGatewayOptions,
  LocalWebsocketEvent,
  MessageEvent,
  MessageRequestContext,
  RouteDefinition,
  RouteHandler,
  RouteHandlerResult,
  RouteResult,
  RouteTable,
  WebsocketIdentity,
} from './gateway/types.js';

import * as z from 'zod/mini';
import './zod.js';
import { bootLog } from './adapters/log.js';
import { bootMetrics, countAnswer } from './adapters/metrics.js';
import type { ServiceSource } from './context/lazy.js';
import { admitFrame, bindingFor, connectionFor } from './domain/connection.js';
import { refreshPresence } from './domain/presence.js';
import { BadRequestError, causeSummary, errorCodeOf, errorFrameFor, errorSummary, type ErrorCode } from './errors.js';
import { answer, bodyText, parseProxyEvent, type ProxyEvent, type RouteResponse } from './proxy-event.js';
import type { Binding, ConnectionRecord, ConnectionRegistry, Log, Presence, Services } from './ports.js';
import { describeIssues, requestIdIn, type ClientAction, type ServerFrame } from './protocol.js';

export type FrameHandler = (event: unknown) => Promise<RouteResponse>;

/** What every client-frame route uses: the connection's record, the rate limits, the clock, a log and the counters. */
export type ConnectionFrameServices = Pick<Services, 'limits' | 'limiter' | 'clock' | 'metrics'> & {
  registry: Pick<ConnectionRegistry, 'connection'>;
  log: Log;
};

/** What a frame for one conversation also uses: the subscription, the roster, and presence (activity keeps it). */
export type FrameServices = ConnectionFrameServices &
  Pick<Services, 'roster' | 'clock'> & {
    registry: Pick<ConnectionRegistry, 'connection' | 'subscription' | 'unsubscribe'>;
    presence: Pick<Presence, 'refresh'>;
  };

type Run<S, F, A> = (services: S, subject: A, frame: F, event: ProxyEvent) => Promise<ServerFrame | undefined>;

/**
 * A client-frame route for one conversation: parse the event and the frame → the route's services → the
 * connection → the rate limits (before any DynamoDB work of the frame) → the subscription and the membership →
 * one domain call → the answer or error frame, carrying the frame's `requestId`. It never throws.
 */
export function frameRoute<S extends FrameServices, F extends z.ZodMiniType<{ conversationId: string; requestId?: string | undefined }>>(
  action: ClientAction,
  schema: F,
  services: ServiceSource<S>,
  run: Run<S, z.output<F>, Binding>,
): FrameHandler {
  return clientFrameRoute(action, schema, services, async (built, connection, frame, event) => {
    const binding = await bindingFor(built, connection, frame.conversationId);
    // The frame is activity in its conversation: one Redis call, beside the frame's own work; it never fails it.
    const refreshed = refreshPresence(built, binding);
    try {
      return await run(built, binding, frame, event);
    } finally {
      await refreshed;
    }
  });
}

/** A client-frame route that is about the connection itself (`subscribe`, `unsubscribe`). */
export function connectionRoute<S extends ConnectionFrameServices, F extends z.ZodMiniType<{ requestId?: string | undefined }>>(
  action: ClientAction,
  schema: F,
  services: ServiceSource<S>,
  run: Run<S, z.output<F>, ConnectionRecord>,
): FrameHandler {
  return clientFrameRoute(action, schema, services, run);
}

function clientFrameRoute<S extends ConnectionFrameServices, F extends z.ZodMiniType<{ requestId?: string | undefined }>>(
  action: ClientAction,
  schema: F,
  services: ServiceSource<S>,
  run: Run<S, z.output<F>, ConnectionRecord>,
): FrameHandler {
  return async (event) => {
    const parsedEvent = parseProxyEvent(event);
    if (parsedEvent === undefined) {
      bootLog.warn('malformed gateway event', { action });
      return answer(errorFrameFor(new BadRequestError('malformed event'), action));
    }
    // The gateway's id goes to the logs; the client's own `requestId` goes back in the answer.
    const { connectionId, requestId } = parsedEvent.requestContext;
    let raw: unknown;
    try {
      raw = JSON.parse(bodyText(parsedEvent));
    } catch {
      return answer(errorFrameFor(new BadRequestError('frame is not valid JSON'), action));
    }
    const clientRequestId = requestIdIn(raw);
    const frame = z.safeParse(schema, raw);
    if (!frame.success) {
      return answer(errorFrameFor(new BadRequestError(`invalid ${action} frame: ${describeIssues(frame.error)}`), action, clientRequestId));
    }
    let built: S;
    try {
      built = await services();
    } catch (error) {
      // The build is retried by the next event; say clearly why this one could not be served.
      bootLog.error('services build failed', { action, requestId, error: errorSummary(error), cause: causeSummary(error) });
      countAnswer(bootMetrics, errorCodeOf(error));
      return answer(errorFrameFor(error, action, clientRequestId));
    }
    let code: ErrorCode | undefined;
    try {
      const connection = await connectionFor(built, connectionId);
      await admitFrame(built, connection);
      const result = await run(built, connection, frame.data, parsedEvent);
      return answer(withRequestId(result, clientRequestId));
    } catch (error) {
      code = errorCodeOf(error);
      const fields = { action, connectionId, requestId, code, error: errorSummary(error), cause: causeSummary(error) };
      if (code === 'internal' || code === 'unavailable') built.log.error('frame failed', fields);
      else built.log.info('frame refused', fields);
      return answer(errorFrameFor(error, action, clientRequestId));
    } finally {
      countAnswer(built.metrics, code);
    }
  };
}

/** Every answer to a frame carries the frame's `requestId`; frames pushed to others (message, typing…) do not. */
function withRequestId(frame: ServerFrame | undefined, requestId: string | undefined): ServerFrame | undefined {
  if (frame === undefined || requestId === undefined) return frame;
  switch (frame.type) {
    case 'message':
    case 'typing':
    case 'messageEdited':
    case 'messageDeleted':
      return frame;
    default:
      return { ...frame, requestId };
  }
}

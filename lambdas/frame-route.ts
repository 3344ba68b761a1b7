import * as z from 'zod/mini';
import './zod.js';
import { bootLog } from './adapters/log.js';
import type { ServiceSource } from './context/lazy.js';
import { bindingFor } from './domain/connection.js';
import { BadRequestError, causeSummary, errorCodeOf, errorFrameFor, errorSummary } from './errors.js';
import { answer, bodyText, parseProxyEvent, type ProxyEvent, type RouteResponse } from './proxy-event.js';
import type { Binding, ConnectionRegistry, Log } from './ports.js';
import { describeIssues, type ClientAction, type ServerFrame } from './protocol.js';

export type FrameHandler = (event: unknown) => Promise<RouteResponse>;

/** What every client-frame route uses: the registry (to check the binding) and a log. */
export interface FrameServices {
  registry: Pick<ConnectionRegistry, 'get'>;
  log: Log;
}

/**
 * The one shape of every client-frame route: parse the event and the frame → take the route's services →
 * check the binding → one domain call → map the result or error to the answer frame. It never throws.
 */
export function frameRoute<S extends FrameServices, F extends z.ZodMiniType<{ conversationId: string }>>(
  action: ClientAction,
  schema: F,
  services: ServiceSource<S>,
  run: (services: S, binding: Binding, frame: z.output<F>, event: ProxyEvent) => Promise<ServerFrame | undefined>,
): FrameHandler {
  return async (event) => {
    const parsedEvent = parseProxyEvent(event);
    if (parsedEvent === undefined) {
      bootLog.warn('malformed gateway event', { action });
      return answer(errorFrameFor(new BadRequestError('malformed event'), action));
    }
    const { connectionId, requestId } = parsedEvent.requestContext;
    let raw: unknown;
    try {
      raw = JSON.parse(bodyText(parsedEvent));
    } catch {
      return answer(errorFrameFor(new BadRequestError('frame is not valid JSON'), action, requestId));
    }
    const frame = z.safeParse(schema, raw);
    if (!frame.success) {
      return answer(errorFrameFor(new BadRequestError(`invalid ${action} frame: ${describeIssues(frame.error)}`), action, requestId));
    }
    let built: S;
    try {
      built = await services();
    } catch (error) {
      // The build is retried by the next event; say clearly why this one could not be served.
      bootLog.error('services build failed', { action, requestId, error: errorSummary(error), cause: causeSummary(error) });
      return answer(errorFrameFor(error, action, requestId));
    }
    try {
      const binding = await bindingFor(built, connectionId, frame.data.conversationId);
      return answer(await run(built, binding, frame.data, parsedEvent));
    } catch (error) {
      const code = errorCodeOf(error);
      const fields = { action, connectionId, requestId, code, error: errorSummary(error), cause: causeSummary(error) };
      if (code === 'internal' || code === 'unavailable') built.log.error('frame failed', fields);
      else built.log.info('frame refused', fields);
      return answer(errorFrameFor(error, action, requestId));
    }
  };
}

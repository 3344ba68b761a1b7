import * as z from 'zod/mini';
import './zod.js';
import { errorSummary } from './domain/delivery.js';
import { bootLog } from './adapters/log.js';
import { SecretError, getContext, type AppContext } from './context.js';
import { bindingFor } from './domain/connection.js';
import { UnavailableError, errorCodeOf } from './errors.js';
import {
  answer,
  bodyText,
  callbackEndpoint,
  errorFrame,
  errorFrameOf,
  parseGatewayEvent,
  type RouteResponse,
} from './gateway-event.js';
import type { Binding } from './ports.js';
import { describeIssues, type ClientAction, type ServerFrame } from './protocol.js';
import { ConfigError } from './config.js';

export type FrameHandler = (event: unknown) => Promise<RouteResponse>;

/**
 * The one shape of every client-frame route: parse the event and the frame → take the shared context →
 * check the binding → one domain call → map the result or error to the answer frame. It never throws.
 */
export function frameRoute<S extends z.ZodMiniType<{ conversationId: string }>>(
  action: ClientAction,
  schema: S,
  run: (context: AppContext, binding: Binding, frame: z.output<S>, endpoint: string) => Promise<ServerFrame | undefined>,
): FrameHandler {
  return async (event) => {
    const parsedEvent = parseGatewayEvent(event);
    if (parsedEvent === undefined) {
      bootLog.warn('malformed gateway event', { action });
      return answer(errorFrame('bad_request', 'malformed event', action));
    }
    const { connectionId, requestId } = parsedEvent.requestContext;
    let raw: unknown;
    try {
      raw = JSON.parse(bodyText(parsedEvent));
    } catch {
      return answer(errorFrame('bad_request', 'frame is not valid JSON', action, requestId));
    }
    const frame = z.safeParse(schema, raw);
    if (!frame.success) {
      return answer(errorFrame('bad_request', `invalid ${action} frame: ${describeIssues(frame.error)}`, action, requestId));
    }
    let context: AppContext;
    try {
      context = await getContext();
    } catch (error) {
      return answer(contextFailure(error, action, requestId));
    }
    try {
      const binding = await bindingFor(context, connectionId, frame.data.conversationId);
      const result = await run(context, binding, frame.data, callbackEndpoint(context.config, parsedEvent));
      return answer(result);
    } catch (error) {
      const code = errorCodeOf(error);
      const fields = { action, connectionId, requestId, code, error: errorSummary(error), cause: causeOf(error) };
      if (code === 'internal' || code === 'unavailable') context.log.error('frame failed', fields);
      else context.log.info('frame refused', fields);
      return answer(errorFrameOf(error, action, requestId));
    }
  };
}

/** The context could not be built: answer clearly, log why, and let the next invocation retry the build. */
function contextFailure(error: unknown, action: string | undefined, requestId: string | undefined) {
  const configProblem = error instanceof ConfigError || error instanceof SecretError;
  bootLog.error('context build failed', { action, requestId, error: errorSummary(error), cause: causeOf(error) });
  return configProblem
    ? errorFrame('internal', 'the service is misconfigured; the operator has been told', action, requestId)
    : errorFrameOf(new UnavailableError('the service is starting or a dependency is down; retry later'), action, requestId);
}

function causeOf(error: unknown): { name: string; message: string } | undefined {
  return error instanceof Error && error.cause !== undefined ? errorSummary(error.cause) : undefined;
}

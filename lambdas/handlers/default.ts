import type { Route } from '../context/lazy.js';
import { BadRequestError, errorFrameFor } from '../errors.js';
import { answer, bodyText, parseProxyEvent, safeAction, type RouteResponse } from '../proxy-event.js';
import { clientFrameSchemas, requestIdIn } from '../protocol.js';

/**
 * Route `$default`: a frame no other route took — not JSON, no `action`, or an unknown one. Answers a clear
 * `bad_request`; it uses no services, so it works even when every dependency is down.
 */
export async function handler(event: unknown): Promise<RouteResponse> {
  const parsed = parseProxyEvent(event);
  let frame: unknown;
  try {
    frame = JSON.parse(parsed === undefined ? '' : bodyText(parsed));
  } catch {
    return answer(errorFrameFor(new BadRequestError('frame is not valid JSON')));
  }
  const requestId = requestIdIn(frame);
  const refuse = (message: string, action?: string) => answer(errorFrameFor(new BadRequestError(message), action, requestId));
  if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
    return refuse('frame must be a JSON object with an "action"');
  }
  const action = 'action' in frame ? frame.action : undefined;
  const known = Object.keys(clientFrameSchemas).join(', ');
  if (action === undefined) return refuse(`missing "action"; expected one of: ${known}`);
  return refuse(`unknown action; expected one of: ${known}`, safeAction(action));
}

/** `$default` as a route like the others (it builds nothing). */
export const route: Route<Record<string, never>, typeof handler> = {
  build: async () => ({}),
  create: () => handler,
};

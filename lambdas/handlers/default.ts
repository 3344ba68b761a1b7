import { answer, bodyText, errorFrame, parseGatewayEvent, safeAction, type RouteResponse } from '../gateway-event.js';
import { clientFrameSchemas } from '../protocol.js';

/**
 * Route `$default`: a frame no other route took — not JSON, no `action`, or an unknown one. Answers a clear
 * `bad_request`; needs nothing from the context, so it works even when dependencies are down.
 */
export async function handler(event: unknown): Promise<RouteResponse> {
  const parsed = parseGatewayEvent(event);
  const requestId = parsed?.requestContext.requestId;
  let frame: unknown;
  try {
    frame = JSON.parse(parsed === undefined ? '' : bodyText(parsed));
  } catch {
    return answer(errorFrame('bad_request', 'frame is not valid JSON', undefined, requestId));
  }
  if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
    return answer(errorFrame('bad_request', 'frame must be a JSON object with an "action"', undefined, requestId));
  }
  const action = 'action' in frame ? frame.action : undefined;
  const known = Object.keys(clientFrameSchemas).join(', ');
  if (action === undefined) {
    return answer(errorFrame('bad_request', `missing "action"; expected one of: ${known}`, undefined, requestId));
  }
  return answer(errorFrame('bad_request', `unknown action; expected one of: ${known}`, safeAction(action), requestId));
}

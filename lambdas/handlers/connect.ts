import { bootLog } from '../adapters/log.js';
import { getContext } from '../context.js';
import { errorSummary } from '../domain/delivery.js';
import { openConnection } from '../domain/connection.js';
import { HandshakeError } from '../errors.js';
import { header, parseGatewayEvent, type RouteResponse } from '../gateway-event.js';

/**
 * Route `$connect`: parameters, token and membership decide; a refusal (400/401/403) writes nothing and the
 * status goes back on the handshake, so the socket never opens.
 */
export async function handler(event: unknown): Promise<RouteResponse> {
  const parsed = parseGatewayEvent(event);
  if (parsed === undefined) return refuse(new HandshakeError(400, 'malformed connect event'));
  const { connectionId, requestId } = parsed.requestContext;
  let context;
  try {
    context = await getContext();
  } catch (error) {
    bootLog.error('context build failed', { route: '$connect', requestId, error: errorSummary(error) });
    return refuse(new HandshakeError(503, 'service unavailable, retry later'));
  }
  try {
    const record = await openConnection(context, {
      connectionId,
      query: parsed.queryStringParameters ?? {},
      origin: header(parsed, 'origin'),
    });
    context.log.info('connected', {
      connectionId,
      requestId,
      userId: record.userId,
      deviceId: record.deviceId,
      conversationId: record.conversationId,
    });
    return { statusCode: 200 };
  } catch (error) {
    const refusal = error instanceof HandshakeError ? error : new HandshakeError(500, 'internal error', { cause: error });
    const fields = { connectionId, requestId, status: refusal.statusCode, reason: refusal.message, cause: refusal.cause === undefined ? undefined : errorSummary(refusal.cause) };
    if (refusal.statusCode >= 500) context.log.error('connect failed', fields);
    else context.log.info('connect refused', fields);
    return refuse(refusal);
  }
}

function refuse(error: HandshakeError): RouteResponse {
  return { statusCode: error.statusCode, body: error.message };
}

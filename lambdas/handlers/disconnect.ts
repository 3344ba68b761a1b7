import { bootLog } from '../adapters/log.js';
import { getContext } from '../context.js';
import { closeConnection } from '../domain/connection.js';
import { errorSummary } from '../domain/delivery.js';
import { parseGatewayEvent, type RouteResponse } from '../gateway-event.js';

/** Route `$disconnect`: remove the connection's row. Best effort: a missed delete expires with the row. */
export async function handler(event: unknown): Promise<RouteResponse> {
  const parsed = parseGatewayEvent(event);
  if (parsed === undefined) {
    bootLog.warn('malformed disconnect event');
    return { statusCode: 200 };
  }
  const { connectionId } = parsed.requestContext;
  try {
    const context = await getContext();
    await closeConnection(context, connectionId);
    context.log.info('disconnected', { connectionId });
  } catch (error) {
    bootLog.error('disconnect failed', { connectionId, error: errorSummary(error) });
  }
  return { statusCode: 200 };
}

import { ForbiddenError, HandshakeError, errorSummary, handshakeRefusalFor } from '../errors.js';
import type { Binding, ConnectionRecord, Services } from '../ports.js';
import { connectParamsSchema } from '../protocol.js';

export type OpenConnectionServices = Pick<Services, 'handshake' | 'auth' | 'members' | 'positions' | 'messages' | 'seqCache' | 'registry' | 'clock'>;

export interface ConnectRequest {
  connectionId: string;
  query: Record<string, string | undefined>;
  origin: string | undefined;
}

/**
 * $connect: origin, parameters, token, membership — in that order, writing nothing until all pass. Then the
 * device gets a durable position in the conversation (it collects every message after it; an existing position
 * is kept) and the connection is registered.
 */
export async function openConnection(services: OpenConnectionServices, request: ConnectRequest): Promise<ConnectionRecord> {
  const allowed = services.handshake.originAllowList;
  if (allowed.length > 0 && (request.origin === undefined || !allowed.includes(request.origin))) {
    throw new HandshakeError(403, 'origin not allowed');
  }
  // No token is an authentication failure (401), whatever else is wrong with the request.
  const token = request.query.token;
  if (token === undefined || token === '') throw new HandshakeError(401, 'missing token');
  const params = connectParamsSchema.safeParse(request.query);
  if (!params.success) {
    const fields = [...new Set(params.error.issues.map((issue) => issue.path.join('.')))].join(', ');
    throw new HandshakeError(400, `malformed connection parameters: ${fields}`);
  }
  const { conversationId, clientId } = params.data;
  const check = await services.auth.verify(token);
  if (!check.ok) {
    if (check.reason === 'unavailable') throw new HandshakeError(503, 'token keys unavailable');
    throw new HandshakeError(401, check.reason === 'expired' ? 'token expired' : 'invalid token');
  }
  const userId = check.userId;
  try {
    if (!(await services.members.isMember(conversationId, userId))) {
      throw new HandshakeError(403, 'not a member of this conversation');
    }
    const now = services.clock.now();
    const record: ConnectionRecord = {
      connectionId: request.connectionId,
      userId,
      deviceId: clientId,
      conversationId,
      connectedAt: now,
      expiresAt: Math.floor(now / 1000) + services.handshake.connectionTtlSeconds,
    };
    // Position first: if registering the connection then fails, a spare position is harmless; the reverse
    // would be a live connection whose device misses pending messages. The cache is never above the log.
    const lastSeq = (await services.seqCache.get(conversationId)) ?? (await services.messages.lastSeq(conversationId));
    await services.positions.register(conversationId, { userId, deviceId: clientId }, lastSeq, now);
    await services.registry.register(record);
    return record;
  } catch (error) {
    throw handshakeRefusalFor(error);
  }
}

/** $disconnect: forget the connection. Never throws: there is nobody to answer. */
export async function closeConnection(services: Pick<Services, 'registry' | 'log'>, connectionId: string): Promise<void> {
  try {
    await services.registry.remove(connectionId);
  } catch (error) {
    services.log.warn('could not remove connection on disconnect', { connectionId, error: errorSummary(error) });
  }
}

/**
 * The binding of the connection that sent a frame, checked against the frame's conversation. A connection
 * that is not registered (never connected through $connect, or expired) is refused.
 */
export async function bindingFor(services: { registry: Pick<Services['registry'], 'get'> }, connectionId: string, conversationId: string): Promise<Binding> {
  const record = await services.registry.get(connectionId);
  if (record === undefined) throw new ForbiddenError('this connection is not registered; reconnect');
  if (record.conversationId !== conversationId) {
    throw new ForbiddenError('conversationId does not match this connection');
  }
  return record;
}

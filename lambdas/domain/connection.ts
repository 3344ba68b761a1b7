import { BadRequestError, ForbiddenError, HandshakeError, RateLimitedError, TokenExpiredError, errorSummary, handshakeRefusalFor } from '../errors.js';
import type { Binding, ConnectionRecord, DevicePosition, Membership, Presence, Services } from '../ports.js';
import {
  connectParamsSchema,
  type ConversationStatus,
  type SubscribeFrame,
  type SubscribedFrame,
  type UnsubscribeFrame,
  type UnsubscribedFrame,
} from '../protocol.js';
import { prune } from './delivery.js';
import { pendingPage, lastSeqOf } from './messaging.js';
import { leavePresence, touchPresence, type PresenceAnnouncing } from './presence.js';
import { flagForPush, type PushFlagServices } from './push.js';
import { requestIdOf } from './request-id.js';

export type OpenConnectionServices = Pick<Services, 'handshake' | 'auth' | 'members' | 'positions' | 'messages' | 'seqCache' | 'registry' | 'clock'> &
  PushFlagServices;
export type AdmissionServices = Pick<Services, 'limits' | 'limiter'>;
export type SubscribeServices = Pick<
  Services,
  'subscriptions' | 'registry' | 'members' | 'positions' | 'messages' | 'seqCache' | 'sealer' | 'clock' | 'log' | 'posterFor'
> &
  PresenceAnnouncing &
  PushFlagServices;
/** What forgetting a connection needs: the registry, and presence (its conversations lapse after the grace). */
export type CloseConnectionServices = Pick<Services, 'registry' | 'log' | 'clock'> & { presence: Pick<Presence, 'leave'> };

export interface ConnectRequest {
  connectionId: string;
  query: Record<string, string | undefined>;
  origin: string | undefined;
}

/**
 * $connect: origin, parameters, token, membership (when a conversation is named), the user's connection limit —
 * in that order, writing nothing until all pass. Then, with `conversationId` (the v1 URL), the connection is
 * subscribed to it at once.
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
    if (conversationId !== undefined && !(await services.members.isMember(conversationId, userId))) {
      throw new HandshakeError(403, 'not a member of this conversation');
    }
    const now = services.clock.now();
    const record: ConnectionRecord = {
      connectionId: request.connectionId,
      userId,
      deviceId: clientId,
      connectedAt: now,
      expiresAt: Math.floor(now / 1000) + services.handshake.connectionTtlSeconds,
      tokenExpiresAt: check.expiresAt,
    };
    if (!(await services.registry.open(record, services.handshake.maxConnectionsPerUser))) {
      throw new HandshakeError(429, `too many open connections for this user (at most ${services.handshake.maxConnectionsPerUser})`);
    }
    if (conversationId !== undefined) {
      try {
        // Position first: a spare position is harmless; a live subscription whose device misses messages is not.
        const lastSeq = await lastSeqOf(services, conversationId);
        const device = { userId, deviceId: clientId };
        const position = await services.positions.register(conversationId, device, lastSeq, now);
        await services.registry.subscribe(record, [conversationId], now);
        await flagForPush(services, device, [position]);
      } catch (error) {
        // The socket will not open: give the user's slot back.
        await services.registry.remove(record.connectionId).catch(() => undefined);
        throw error;
      }
    }
    return record;
  } catch (error) {
    throw handshakeRefusalFor(error);
  }
}

/**
 * $disconnect: forget the connection and its subscriptions; in each, its user goes offline after the grace
 * unless another connection of theirs is live there. Never throws: there is nobody to answer.
 */
export async function closeConnection(services: CloseConnectionServices, connectionId: string): Promise<void> {
  try {
    const removed = await services.registry.remove(connectionId);
    if (removed !== undefined) await leavePresence(services, { connectionId, userId: removed.userId }, removed.conversationIds);
  } catch (error) {
    services.log.warn('could not remove connection on disconnect', { connectionId, error: errorSummary(error) });
  }
}

/** The record of the connection that sent a frame; a connection not registered (or expired) is refused. */
/**
 * The connection's record. A connection outlives its token (API Gateway keeps it up to 2 hours): once the token
 * has expired, its frames are refused with `token_expired`, and the client reconnects with a fresh token.
 */
export async function connectionFor(
  services: { registry: Pick<Services['registry'], 'connection'>; clock: Pick<Services['clock'], 'now'> },
  connectionId: string,
): Promise<ConnectionRecord> {
  const record = await services.registry.connection(connectionId);
  if (record === undefined) throw new ForbiddenError('this connection is not registered; reconnect');
  if (record.tokenExpiresAt !== undefined && services.clock.now() >= record.tokenExpiresAt) throw new TokenExpiredError();
  return record;
}

/**
 * Takes a token from the connection's bucket and from its user's (shared by every container; in-process while
 * Redis is down). Runs before any DynamoDB work of the frame.
 */
export async function admitFrame(services: AdmissionServices, connection: ConnectionRecord): Promise<void> {
  const admitted = await services.limiter.admit([
    { key: `conn:${connection.connectionId}`, perSecond: services.limits.ratePerSecond, burst: services.limits.rateBurst },
    { key: `user:${connection.userId}`, perSecond: services.limits.userRatePerSecond, burst: services.limits.userRateBurst },
  ]);
  if (!admitted) throw new RateLimitedError();
}

/**
 * The binding of a frame to one conversation: the connection must be subscribed to it, and its user still a
 * member (as the roster saw it at most MEMBERSHIP_CACHE_SECONDS ago). A subscription that outlived its
 * membership is dropped here.
 */
export async function bindingFor(
  services: Pick<Services, 'roster' | 'log'> & { registry: Pick<Services['registry'], 'subscription' | 'unsubscribe'> },
  connection: ConnectionRecord,
  conversationId: string,
): Promise<Binding> {
  const subscription = await services.registry.subscription(connection.connectionId, conversationId);
  if (subscription === undefined) throw new ForbiddenError('this connection is not subscribed to this conversation; send subscribe first');
  if (!(await services.roster.isMember(conversationId, connection.userId))) {
    await services.registry.unsubscribe(connection.connectionId, [conversationId]).catch((error: unknown) => {
      services.log.warn('could not drop a non-member subscription', { connectionId: connection.connectionId, error: errorSummary(error) });
    });
    throw new ForbiddenError('not a member of this conversation');
  }
  return { connectionId: connection.connectionId, userId: connection.userId, deviceId: connection.deviceId, conversationId };
}

/**
 * `subscribe`: each conversation is `ok` (the user is a member: the device gets a position, the connection
 * receives its messages) or `forbidden`. For each conversation with an `afterSeq`, the device's messages after
 * it follow as `unacked` pages (the first page; `hasMore` says to page on with `getUnacked`), so a reconnecting
 * device resumes with nothing lost. `subscribed` is posted first when pages follow, else it is the answer.
 */
export async function subscribe(
  services: SubscribeServices,
  connection: ConnectionRecord,
  frame: SubscribeFrame,
  endpoint: string,
): Promise<SubscribedFrame | undefined> {
  const cap = services.subscriptions.maxSubscriptionsPerConnection;
  const existing = new Set(await services.registry.subscriptionsOf(connection.connectionId));
  const added = frame.conversationIds.filter((c) => !existing.has(c));
  if (existing.size + added.length > cap) {
    throw new BadRequestError(`a connection may be subscribed to at most ${cap} conversations (this one has ${existing.size}); unsubscribe some first`);
  }
  const memberships = await services.members.getMany(connection.userId, frame.conversationIds);
  const ok = frame.conversationIds.filter((c) => memberships.has(c));
  const now = services.clock.now();
  const device = { userId: connection.userId, deviceId: connection.deviceId };
  const registered = new Map(
    await Promise.all(
      ok.map(async (conversationId) => {
        const lastSeq = await lastSeqOf(services, conversationId);
        // Position first, as at $connect: the subscription below starts live delivery.
        const position = await services.positions.register(conversationId, device, lastSeq, now);
        return [conversationId, { lastSeq, position }] as const;
      }),
    ),
  );
  await services.registry.subscribe(connection, ok, now);
  // The other members learn that this user came online (once per user, not per device), beside the answer; new
  // positions of a device with a push target go into the push index meanwhile.
  const announced = touchPresence(services, connection, ok, endpoint);
  const flagged = flagForPush(services, device, [...registered.values()].map((r) => r.position));
  try {
    return await answerSubscribe(services, connection, frame, { ok, memberships, registered, endpoint, device });
  } finally {
    await Promise.all([announced, flagged]);
  }
}

interface Subscribed {
  ok: string[];
  memberships: Map<string, Membership>;
  registered: Map<string, { lastSeq: number; position: DevicePosition }>;
  endpoint: string;
  device: { userId: string; deviceId: string };
}

/** The `subscribed` answer, then the resume pages of the conversations with an `afterSeq`. */
async function answerSubscribe(
  services: SubscribeServices,
  connection: ConnectionRecord,
  frame: SubscribeFrame,
  { ok, memberships, registered, endpoint, device }: Subscribed,
): Promise<SubscribedFrame | undefined> {
  const conversations: ConversationStatus[] = frame.conversationIds.map((conversationId) => {
    const lastSeq = registered.get(conversationId)?.lastSeq;
    return lastSeq === undefined ? { conversationId, status: 'forbidden' } : { conversationId, status: 'ok', lastSeq };
  });
  const answer: SubscribedFrame = { type: 'subscribed', conversations, ...requestIdOf(frame) };
  const resumes = ok.flatMap((conversationId) => {
    const afterSeq = frame.afterSeq?.get(conversationId);
    const membership = memberships.get(conversationId);
    return afterSeq === undefined || membership === undefined ? [] : [{ conversationId, afterSeq, membership }];
  });
  if (resumes.length === 0) return answer;
  const poster = services.posterFor(endpoint);
  const post = async (frameText: string): Promise<boolean> => {
    const outcome = await poster.post(connection.connectionId, frameText);
    if (outcome === 'gone') await prune(services, connection.connectionId);
    return outcome === 'delivered';
  };
  if (!(await post(JSON.stringify(answer)))) return answer;
  for (const { conversationId, afterSeq, membership } of resumes) {
    const binding: Binding = { ...device, connectionId: connection.connectionId, conversationId };
    const page = await pendingPage(services, binding, membership, { limit: 100, afterSeq }, registered.get(conversationId)?.position);
    if (!(await post(JSON.stringify({ ...page, ...requestIdOf(frame) })))) break;
  }
  return undefined;
}

/** `unsubscribe`: the connection stops receiving these conversations; frames for them are refused from now on. */
export async function unsubscribe(
  services: Pick<Services, 'clock' | 'log'> & { registry: Pick<Services['registry'], 'unsubscribe'>; presence: Pick<Presence, 'leave'> },
  connection: ConnectionRecord,
  frame: UnsubscribeFrame,
): Promise<UnsubscribedFrame> {
  await services.registry.unsubscribe(connection.connectionId, frame.conversationIds);
  await leavePresence(services, connection, frame.conversationIds);
  return {
    type: 'unsubscribed',
    conversations: frame.conversationIds.map((conversationId) => ({ conversationId, status: 'ok' })),
    ...requestIdOf(frame),
  };
}

import { errorSummary } from '../errors.js';
import type { Binding, ConnectionRecord, Presence, Services } from '../ports.js';
import type { GetPresenceFrame, PingFrame, PongFrame, PresenceFrame } from '../protocol.js';
import { requestIdOf } from './request-id.js';
import { deliver, liveRecipients, type DeliveryServices, type PushedFrame } from './delivery.js';

/**
 * Presence: a user is online in a conversation while one of their connections there is live (touched within the
 * TTL, or left less than the grace window ago). Changes are announced per user, never per device; above the size
 * limit only a debounced occupancy count goes out. Presence is best effort: no failure of it (Redis down) ever
 * fails or delays the frame, connect or subscribe that touched it — it is logged and the route goes on.
 */

/** What keeping presence needs. */
export type PresenceKeeping = Pick<Services, 'presence' | 'clock' | 'log'>;
/** What announcing a change to the other members needs. */
export type PresenceAnnouncing = PresenceKeeping &
  DeliveryServices &
  Pick<Services, 'roster' | 'conversationSize'> & { registry: Pick<Services['registry'], 'listByConversation' | 'unsubscribe' | 'remove'> };

export interface PresenceAnnouncement {
  conversationId: string;
  userId: string;
  state: 'online' | 'offline';
  at: number;
}

/** The connection is live in these conversations; each where its user just came online is announced. */
export async function touchPresence(
  services: PresenceAnnouncing,
  connection: { connectionId: string; userId: string },
  conversationIds: readonly string[],
  endpoint: string,
): Promise<void> {
  const now = services.clock.now();
  await Promise.all(
    conversationIds.map((conversationId) =>
      bestEffort(services, 'touch', conversationId, async () => {
        if (await services.presence.touch(conversationId, connection.userId, connection.connectionId, now)) {
          await announce(services, endpoint, { conversationId, userId: connection.userId, state: 'online', at: now });
        }
      }),
    ),
  );
}

/**
 * `ping`: answers `pong` with the server time, and keeps the connection live in every conversation it is
 * subscribed to (bringing its user back online where they had lapsed). A registry that cannot be read costs only
 * the presence: the pong still goes back.
 */
export async function ping(
  services: PresenceAnnouncing & { registry: Pick<Services['registry'], 'subscriptionsOf'> },
  connection: ConnectionRecord,
  frame: PingFrame,
  endpoint: string,
): Promise<PongFrame> {
  const at = services.clock.now();
  await bestEffort(services, 'ping', undefined, async () =>
    touchPresence(services, connection, await services.registry.subscriptionsOf(connection.connectionId), endpoint),
  );
  return { type: 'pong', at, ...requestIdOf(frame) };
}

/** A frame of the conversation counts as activity; it keeps an online user online, never brings one online. */
export async function refreshPresence(
  services: Pick<Services, 'clock' | 'log'> & { presence: Pick<Presence, 'refresh'> },
  binding: Binding,
): Promise<void> {
  await bestEffort(services, 'refresh', binding.conversationId, () =>
    services.presence.refresh(binding.conversationId, binding.userId, binding.connectionId, services.clock.now()),
  );
}

/** The connection stops being live in these conversations: its user goes offline after the grace (sweeper). */
export async function leavePresence(
  services: Pick<Services, 'clock' | 'log'> & { presence: Pick<Presence, 'leave'> },
  connection: { connectionId: string; userId: string },
  conversationIds: readonly string[],
): Promise<void> {
  const now = services.clock.now();
  await Promise.all(
    conversationIds.map((conversationId) =>
      bestEffort(services, 'leave', conversationId, () => services.presence.leave(conversationId, connection.userId, connection.connectionId, now)),
    ),
  );
}

/** One sweep: claims the users gone offline in up to `limit` conversations and announces each. Returns how many. */
export async function sweepPresence(services: PresenceAnnouncing, endpoint: string, limit: number): Promise<number> {
  const changes = await services.presence.sweep(services.clock.now(), limit);
  await Promise.all(
    changes.map((change) =>
      bestEffort(services, 'announce', change.conversationId, () => announce(services, endpoint, { ...change, state: 'offline' })),
    ),
  );
  return changes.length;
}

/**
 * Posts the change to the other members' live connections (not the user's own), or, in a conversation above the
 * size limit, the occupancy count at most once per occupancy interval.
 */
export async function announce(services: PresenceAnnouncing, endpoint: string, change: PresenceAnnouncement): Promise<void> {
  const { conversationId, userId } = change;
  let frame: Extract<PushedFrame, { type: 'presence' }>;
  if ((await services.roster.count(conversationId)) > services.conversationSize.largeConversationMembers) {
    if (!(await services.presence.claimOccupancy(conversationId, change.at))) return;
    frame = { type: 'presence', conversationId, occupancy: await services.presence.count(conversationId) };
  } else {
    frame = { type: 'presence', conversationId, userId, state: change.state, at: change.at };
  }
  const others = (await services.registry.listByConversation(conversationId)).filter((s) => s.userId !== userId);
  const recipients = await liveRecipients(services, conversationId, others, endpoint);
  // Not pruned on a 410 (deliver): presence goes out from $connect, when other connections may still be in theirs
  // (API Gateway answers 410 until a $connect completes); a connection really gone is pruned by a message or expires.
  await deliver(services, endpoint, { kind: 'event', frame }, recipients);
}

/**
 * `getPresence`: the members online in the conversation, or above the size limit its occupancy. Unlike the
 * rest of presence it fails when presence cannot be asked (`unavailable`): an empty list would be a lie.
 */
export async function getPresence(
  services: Pick<Services, 'presence' | 'roster' | 'conversationSize'>,
  binding: Binding,
  frame: GetPresenceFrame,
): Promise<PresenceFrame> {
  const { conversationId } = binding;
  if ((await services.roster.count(conversationId)) > services.conversationSize.largeConversationMembers) {
    return { type: 'presence', conversationId, occupancy: await services.presence.count(conversationId), ...requestIdOf(frame) };
  }
  const online = await services.presence.online(conversationId);
  // A removed member's entries lapse with their TTL; they are not listed meanwhile.
  const members = await services.roster.membersAmong(conversationId, online);
  return { type: 'presence', conversationId, online: online.filter((userId) => members.has(userId)).sort(), ...requestIdOf(frame) };
}

async function bestEffort(services: Pick<Services, 'log'>, what: string, conversationId: string | undefined, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    services.log.warn(`presence ${what} failed`, { ...(conversationId === undefined ? {} : { conversationId }), error: errorSummary(error) });
  }
}

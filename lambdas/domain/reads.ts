import { BadRequestError, ForbiddenError, errorSummary } from '../errors.js';
import type { Binding, ConnectionRecord, Membership, Services } from '../ports.js';
import {
  conversationIdSchema,
  type ConversationSummary,
  type ConversationsFrame,
  type GetConversationsFrame,
  type MarkReadFrame,
  type ReadFrame,
} from '../protocol.js';
import { deliver, liveRecipients, type DeliveryServices } from './delivery.js';
import { atMostLastSeq } from './messaging.js';
import { requestIdOf } from './request-id.js';

export type MarkReadServices = DeliveryServices &
  Pick<Services, 'members' | 'messages' | 'seqCache' | 'roster' | 'clock'> & {
    registry: Pick<Services['registry'], 'listByConversation' | 'unsubscribe' | 'remove'>;
  };
export type GetConversationsServices = Pick<Services, 'members' | 'messages'>;

/**
 * `markRead`: the user has read everything through `seq` (a seq past the end of the log counts as its last).
 * The position is stored on the membership and only moves forward; the answer is where it stands now. When it
 * moved, `read` also goes to the other members' connections and to the reader's other connections, so their
 * other devices clear the conversation's unread mark.
 */
export async function markRead(services: MarkReadServices, binding: Binding, frame: MarkReadFrame, endpoint: string): Promise<ReadFrame> {
  const conversationId = binding.conversationId;
  const seq = frame.seq > 0 ? await atMostLastSeq(services, conversationId, frame.seq) : 0;
  const mark = await services.members.raiseReadSeq(conversationId, binding.userId, seq);
  if (mark === undefined) throw new ForbiddenError('not a member of this conversation');
  const read: ReadFrame = { type: 'read', conversationId, userId: binding.userId, seq: mark.readSeq, at: services.clock.now() };
  if (mark.moved) await tellOthers(services, binding, read, endpoint);
  return { ...read, ...requestIdOf(frame) };
}

/** Live only, best effort: the position is stored, and `getConversations` shows it to whoever missed this. */
async function tellOthers(services: MarkReadServices, binding: Binding, read: ReadFrame, endpoint: string): Promise<void> {
  try {
    const subscriptions = await services.registry.listByConversation(binding.conversationId);
    const others = subscriptions.filter((s) => s.connectionId !== binding.connectionId);
    const recipients = await liveRecipients(services, binding.conversationId, others, endpoint);
    await deliver(services, endpoint, { kind: 'event', frame: read }, recipients);
  } catch (error) {
    services.log.warn('read receipt not delivered live', { conversationId: binding.conversationId, error: errorSummary(error) });
  }
}

/**
 * `getConversations`: a page of the user's conversations (conversationId order) with their last seq, the user's
 * read position and how many messages by others are unread. Per conversation it reads the log's top item and,
 * only when something is above the read position, counts the items above it: the cost follows what is unread,
 * never the length of the conversation.
 */
export async function getConversations(
  services: GetConversationsServices,
  connection: ConnectionRecord,
  frame: GetConversationsFrame,
): Promise<ConversationsFrame> {
  const after = frame.cursor === undefined ? undefined : conversationAfter(frame.cursor);
  const page = await services.members.listByUser(connection.userId, { limit: frame.limit, ...(after === undefined ? {} : { after }) });
  const conversations = await Promise.all(page.memberships.map((membership) => summaryOf(services, membership)));
  return {
    type: 'conversations',
    conversations,
    ...(page.nextAfter === undefined ? {} : { cursor: cursorAfter(page.nextAfter) }),
    ...requestIdOf(frame),
  };
}

async function summaryOf(services: GetConversationsServices, membership: Membership): Promise<ConversationSummary> {
  const { conversationId, userId } = membership;
  const { lastSeq, lastMessageAt } = await services.messages.latest(conversationId);
  const readSeq = Math.min(membership.readSeq ?? 0, lastSeq);
  const unreadCount = lastSeq > readSeq ? await services.messages.countByOthers(conversationId, readSeq, userId) : 0;
  return { conversationId, lastSeq, readSeq, unreadCount, lastMessageAt: lastMessageAt ?? null };
}

/** What a cursor holds: the last conversation of the page before, tagged so that a cursor is told from noise. */
const CURSOR_TAG = 'c:';

export function cursorAfter(conversationId: string): string {
  return Buffer.from(CURSOR_TAG + conversationId, 'utf8').toString('base64url');
}

/** The conversation a cursor continues after; a cursor this server did not make is `bad_request`. */
export function conversationAfter(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const conversationId = text.startsWith(CURSOR_TAG) ? text.slice(CURSOR_TAG.length) : '';
  // Re-encoding must give the cursor back: base64url decoding ignores stray characters and padding.
  if (!conversationIdSchema.safeParse(conversationId).success || cursorAfter(conversationId) !== cursor) {
    throw new BadRequestError('cursor is malformed; give back the cursor of a conversations answer');
  }
  return conversationId;
}

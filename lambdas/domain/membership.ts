import { ConversationFullError } from '../errors.js';
import type { Services } from '../ports.js';
import type { UnsubscribedFrame } from '../protocol.js';

/**
 * Adds (or re-adds) a member: their devices collect the messages sent from now on. Removing a member is only
 * deleting the membership: delivery reads it, so a removed member's devices stop collecting at once.
 *
 * A new member beyond `maxMembers` is refused (ConversationFullError) and nothing is written: the size bounds
 * what one message can cost in posts (see the fan-out budgets). Checked when adding, so two adds racing for the
 * last place may both get it; re-adding a current member always works.
 */
export async function addMember(
  services: Pick<Services, 'members' | 'messages'>,
  conversationId: string,
  userId: string,
  maxMembers: number,
): Promise<void> {
  if (!(await services.members.isMember(conversationId, userId))) {
    const count = (await services.members.list(conversationId)).length;
    if (count >= maxMembers) {
      throw new ConversationFullError(
        `conversation ${conversationId} already has ${count} members (MAX_CONVERSATION_MEMBERS is ${maxMembers}): remove one, or raise the limit`,
      );
    }
  }
  await services.members.add(conversationId, userId, await services.messages.lastSeq(conversationId));
}

/**
 * Removes a member and cuts their open connections off the conversation at once: each subscription row goes
 * and its connection is told (`unsubscribed`, `forbidden`); the connections stay open for their other
 * conversations. Answers how many connections were cut off. Containers that still hold the old roster refuse
 * the user's frames within MEMBERSHIP_CACHE_SECONDS; a membership row removed by any other means is found the
 * same way (frames and fan-out check the roster).
 */
export async function removeMember(
  services: Pick<Services, 'members' | 'posterFor'> & { registry: Pick<Services['registry'], 'listByConversation' | 'unsubscribe'> },
  endpoint: string,
  conversationId: string,
  userId: string,
): Promise<number> {
  await services.members.remove(conversationId, userId);
  const theirs = (await services.registry.listByConversation(conversationId)).filter((s) => s.userId === userId);
  const notice: UnsubscribedFrame = { type: 'unsubscribed', conversations: [{ conversationId, status: 'forbidden' }] };
  const poster = services.posterFor(endpoint);
  for (const subscription of theirs) {
    await services.registry.unsubscribe(subscription.connectionId, [conversationId]);
    // A gone connection has nothing to be told; its rows go with its $disconnect or its next failed post.
    await poster.post(subscription.connectionId, JSON.stringify(notice));
  }
  return theirs.length;
}

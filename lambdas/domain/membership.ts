import type { Services } from '../ports.js';

/**
 * Adds (or re-adds) a member: their devices collect the messages sent from now on. Removing a member is only
 * deleting the membership: delivery reads it, so a removed member's devices stop collecting at once.
 */
export async function addMember(services: Pick<Services, 'members' | 'messages'>, conversationId: string, userId: string): Promise<void> {
  await services.members.add(conversationId, userId, await services.messages.lastSeq(conversationId));
}

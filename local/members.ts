import type { Services } from '../lambdas/ports.js';
import { addMember } from '../lambdas/domain/membership.js';

/**
 * Makes `userId` a member of `conversationId` unless it is one already: a re-add would restart their devices
 * from now (an external DynamoDB keeps members across runs). Local tools only (dev server, web page).
 */
export async function ensureMember(
  services: Pick<Services, 'members' | 'messages'>,
  conversationId: string,
  userId: string,
  maxMembers: number,
): Promise<void> {
  if (!(await services.members.isMember(conversationId, userId))) await addMember(services, conversationId, userId, maxMembers);
}

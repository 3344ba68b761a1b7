import { RateLimitedError } from '../errors.js';
import type { Binding, Services } from '../ports.js';

export type BudgetServices = Pick<Services, 'fanoutBudget'>;

/**
 * Fan-out budgets in the send path. A send (message, edit, deletion) is checked before anything is written and
 * refused while its conversation's or its sender's budget is in debt: `rate_limited` with `retryAfterMs`, nothing
 * stored, so a resend of the same clientMessageId after the wait is the first and only copy. What it costs (its
 * live recipients, and the sender's own `sent`) is spent once it is stored: a message that was let in is always
 * delivered live, and a large fan-out is paid back by the sends after it.
 */
export async function assertFanoutBudget(services: BudgetServices, binding: Binding, what: string): Promise<void> {
  const waitMs = await services.fanoutBudget.waitMs(binding.conversationId, binding.userId);
  if (waitMs <= 0) return;
  throw new RateLimitedError(`live fan-out of this conversation or sender is over its budget: nothing was ${what}; retry in ${waitMs} ms`, waitMs);
}

/** True when a best-effort post (typing) may go out now; it is dropped, not refused, when a budget is in debt. */
export async function withinFanoutBudget(services: BudgetServices, binding: Binding): Promise<boolean> {
  return (await services.fanoutBudget.waitMs(binding.conversationId, binding.userId)) <= 0;
}

/** Spends `posts` from the conversation's and the sender's budgets. */
export async function spendFanoutBudget(services: BudgetServices, binding: Binding, posts: number): Promise<void> {
  await services.fanoutBudget.spend(binding.conversationId, binding.userId, posts);
}

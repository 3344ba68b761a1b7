import type { Clock, FanoutBudget, FanoutBudgetSettings } from '../ports.js';

export interface MemoryFanoutBudgetOptions {
  /** @default Date.now */
  readonly clock?: Clock;
  /**
   * Budgets kept at most; spending from one more forgets the least recently used (which then counts as full).
   * @default 10_000
   */
  readonly maxKeys?: number;
}

interface BudgetState {
  tokens: number;
  at: number;
}

/** One budget: what it is named, and how fast it refills (its capacity is one second of that). */
export interface PlacedBudget {
  key: string;
  perSecond: number;
}

/**
 * The two budgets of a post, named as in Redis: the conversation's beside its seq cache (`{c:<id>}`), the
 * sender's beside their rate limits (`{u:<encoded user>}`). On a cluster they sit in two slots: two calls.
 */
export function placeBudgets(settings: FanoutBudgetSettings, conversationId: string, senderId: string): [PlacedBudget, PlacedBudget] {
  return [
    { key: `{c:${conversationId}}:fb`, perSecond: settings.conversationPerSecond },
    { key: `{u:${encodeURIComponent(senderId)}}:fb`, perSecond: settings.senderPerSecond },
  ];
}

/** The tokens of a budget at `now`: it refills `perSecond` a second, up to one second's worth; debt is paid back the same way. */
export function refilledTokens(state: BudgetState | undefined, perSecond: number, now: number): number {
  if (state === undefined) return perSecond;
  return Math.min(perSecond, state.tokens + (Math.max(0, now - state.at) * perSecond) / 1000);
}

/** How long until a budget holding `tokens` has a whole post's worth (0: it has now). */
export function waitForPost(tokens: number, perSecond: number): number {
  return tokens >= 1 ? 0 : Math.ceil(((1 - tokens) * 1000) / perSecond);
}

/**
 * Fan-out budgets in this process: the fallback of RedisFanoutBudget while Redis is down, and the budgets of
 * `npm start` without Redis. Same rules as the Redis script (FanoutBudget in ports.ts).
 */
export class MemoryFanoutBudget implements FanoutBudget {
  private readonly clock: Clock;
  private readonly maxKeys: number;
  /** Map order is recency order: the first entry is the least recently used. */
  private readonly states = new Map<string, BudgetState>();

  constructor(
    private readonly settings: FanoutBudgetSettings,
    options: MemoryFanoutBudgetOptions = {},
  ) {
    this.clock = options.clock ?? { now: () => Date.now() };
    this.maxKeys = Math.max(1, options.maxKeys ?? 10_000);
  }

  async waitMs(conversationId: string, senderId: string): Promise<number> {
    const now = this.clock.now();
    return Math.max(
      ...placeBudgets(this.settings, conversationId, senderId).map(({ key, perSecond }) => waitForPost(refilledTokens(this.states.get(key), perSecond, now), perSecond)),
    );
  }

  async spend(conversationId: string, senderId: string, posts: number): Promise<void> {
    if (posts <= 0) return;
    const now = this.clock.now();
    for (const { key, perSecond } of placeBudgets(this.settings, conversationId, senderId)) {
      const tokens = refilledTokens(this.states.get(key), perSecond, now) - posts;
      this.states.delete(key);
      this.states.set(key, { tokens, at: now });
    }
    for (const key of this.states.keys()) {
      if (this.states.size <= this.maxKeys) break;
      this.states.delete(key);
    }
  }

  /** How many budgets are held (for tests of the bound). */
  get size(): number {
    return this.states.size;
  }
}

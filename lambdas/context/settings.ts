import type { ConversationSizeSettings, DeliverySettings, FanoutBudgetSettings, HandshakeSettings, RateSettings, SubscriptionSettings, TypingSettings } from '../ports.js';

/** The domain's settings from a function's config (each function reads only the variables it uses). */

export function rateSettings(config: {
  RATE_LIMIT_PER_SECOND: number;
  RATE_LIMIT_BURST: number;
  RATE_LIMIT_USER_PER_SECOND: number;
  RATE_LIMIT_USER_BURST: number;
}): RateSettings {
  return {
    ratePerSecond: config.RATE_LIMIT_PER_SECOND,
    rateBurst: config.RATE_LIMIT_BURST,
    userRatePerSecond: config.RATE_LIMIT_USER_PER_SECOND,
    userRateBurst: config.RATE_LIMIT_USER_BURST,
  };
}

export function deliverySettings(config: {
  FANOUT_THRESHOLD: number;
  FANOUT_BATCH_SIZE: number;
  POST_CONCURRENCY: number;
  PRUNE_GRACE_SECONDS: number;
}): DeliverySettings {
  return {
    fanoutThreshold: config.FANOUT_THRESHOLD,
    fanoutBatchSize: config.FANOUT_BATCH_SIZE,
    postConcurrency: config.POST_CONCURRENCY,
    pruneGraceMs: config.PRUNE_GRACE_SECONDS * 1000,
  };
}

export function handshakeSettings(config: {
  CONNECTION_TTL_SECONDS: number;
  ORIGIN_ALLOW_LIST: readonly string[];
  MAX_CONNECTIONS_PER_USER: number;
}): HandshakeSettings {
  return {
    connectionTtlSeconds: config.CONNECTION_TTL_SECONDS,
    originAllowList: config.ORIGIN_ALLOW_LIST,
    maxConnectionsPerUser: config.MAX_CONNECTIONS_PER_USER,
  };
}

export function subscriptionSettings(config: { MAX_SUBSCRIPTIONS_PER_CONNECTION: number }): SubscriptionSettings {
  return { maxSubscriptionsPerConnection: config.MAX_SUBSCRIPTIONS_PER_CONNECTION };
}

export function conversationSizeSettings(config: { LARGE_CONVERSATION_MEMBERS: number }): ConversationSizeSettings {
  return { largeConversationMembers: config.LARGE_CONVERSATION_MEMBERS };
}

export function typingSettings(config: { TYPING_COALESCE_MS: number; TYPING_EXPIRES_MS: number }): TypingSettings {
  return { coalesceMs: config.TYPING_COALESCE_MS, expiresMs: config.TYPING_EXPIRES_MS };
}

export const systemClock = { now: () => Date.now() };

export function fanoutBudgetSettings(config: { FANOUT_BUDGET_CONVERSATION_PER_SECOND: number; FANOUT_BUDGET_SENDER_PER_SECOND: number }): FanoutBudgetSettings {
  return { conversationPerSecond: config.FANOUT_BUDGET_CONVERSATION_PER_SECOND, senderPerSecond: config.FANOUT_BUDGET_SENDER_PER_SECOND };
}

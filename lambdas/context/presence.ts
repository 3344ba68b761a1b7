import { MemoryPresence, type PresenceTimings } from '../adapters/memory-presence.js';
import { RedisPresence } from '../adapters/redis-presence.js';
import type { Presence } from '../ports.js';
import type { RedisHelpers } from './redis.js';

interface PresenceConfig {
  PRESENCE_TTL_SECONDS: number;
  PRESENCE_GRACE_SECONDS: number;
  PRESENCE_OCCUPANCY_INTERVAL_MS: number;
}

export function presenceTimings(config: PresenceConfig): PresenceTimings {
  return {
    ttlMs: config.PRESENCE_TTL_SECONDS * 1000,
    graceMs: config.PRESENCE_GRACE_SECONDS * 1000,
    occupancyIntervalMs: config.PRESENCE_OCCUPANCY_INTERVAL_MS,
  };
}

/**
 * Presence on the container's Redis. Only without any Redis configured is it kept in this process (the local
 * backend shares one instance between its routes); a configured Redis that is down makes presence unavailable,
 * never silently local.
 */
export function presenceOf(redis: Pick<RedisHelpers, 'connection'>, config: PresenceConfig): Presence {
  const timings = presenceTimings(config);
  return redis.connection === undefined ? new MemoryPresence(timings) : new RedisPresence(redis.connection, timings);
}

import type { Presence, PresenceChange } from '../ports.js';

export interface PresenceTimings {
  /** How long a touch keeps a connection live. */
  readonly ttlMs: number;
  /** How long after its last connection lapsed a user still counts as online (a reconnect does not flap). */
  readonly graceMs: number;
  /** At most one `occupancy` frame per conversation per this long. */
  readonly occupancyIntervalMs: number;
}

interface Entry {
  userId: string;
  expiry: number;
}

interface Room {
  /** connection key → its entry. */
  live: Map<string, Entry>;
  /** userId → how many entries the user has (a user in here is online). */
  users: Map<string, number>;
}

/**
 * Presence in this process: what `npm start` uses without Redis (one instance shared by every route of the
 * backend), with RedisPresence's semantics (the same contract tests). A conversation is swept when its `due`
 * time (its earliest expiry + grace) has come.
 */
export class MemoryPresence implements Presence {
  private readonly rooms = new Map<string, Room>();
  private readonly due = new Map<string, number>();
  private readonly occupancy = new Map<string, number>();

  constructor(private readonly timings: PresenceTimings) {}

  async touch(conversationId: string, userId: string, connectionId: string, now: number): Promise<boolean> {
    return this.mark(conversationId, userId, connectionId, now, true);
  }

  async refresh(conversationId: string, userId: string, connectionId: string, now: number): Promise<void> {
    this.mark(conversationId, userId, connectionId, now, false);
  }

  async leave(conversationId: string, userId: string, connectionId: string, now: number): Promise<void> {
    const entry = this.rooms.get(conversationId)?.live.get(connectionKey(userId, connectionId));
    if (entry === undefined) return;
    entry.expiry = Math.min(entry.expiry, now);
    this.due.set(conversationId, Math.min(this.due.get(conversationId) ?? Number.POSITIVE_INFINITY, now + this.timings.graceMs));
  }

  async sweep(now: number, limit: number): Promise<PresenceChange[]> {
    const dueNow = [...this.due].filter(([, at]) => at <= now).sort((a, b) => a[1] - b[1]).slice(0, Math.max(0, limit));
    const changes: PresenceChange[] = [];
    for (const [conversationId] of dueNow) {
      const room = this.rooms.get(conversationId);
      if (room === undefined) {
        this.due.delete(conversationId);
        continue;
      }
      const cutoff = now - this.timings.graceMs;
      for (const [key, entry] of room.live) {
        if (entry.expiry > cutoff) continue;
        room.live.delete(key);
        const left = (room.users.get(entry.userId) ?? 1) - 1;
        if (left > 0) room.users.set(entry.userId, left);
        else {
          room.users.delete(entry.userId);
          changes.push({ conversationId, userId: entry.userId, at: entry.expiry });
        }
      }
      const earliest = Math.min(...[...room.live.values()].map((e) => e.expiry));
      if (Number.isFinite(earliest)) this.due.set(conversationId, earliest + this.timings.graceMs);
      else {
        this.due.delete(conversationId);
        this.rooms.delete(conversationId);
      }
    }
    return changes;
  }

  async online(conversationId: string): Promise<string[]> {
    return [...(this.rooms.get(conversationId)?.users.keys() ?? [])];
  }

  async count(conversationId: string): Promise<number> {
    return this.rooms.get(conversationId)?.users.size ?? 0;
  }

  async claimOccupancy(conversationId: string, now: number): Promise<boolean> {
    if ((this.occupancy.get(conversationId) ?? Number.NEGATIVE_INFINITY) > now) return false;
    this.occupancy.set(conversationId, now + this.timings.occupancyIntervalMs);
    return true;
  }

  private mark(conversationId: string, userId: string, connectionId: string, now: number, mayComeOnline: boolean): boolean {
    let room = this.rooms.get(conversationId);
    const known = room?.users.has(userId) ?? false;
    if (!known && !mayComeOnline) return false;
    if (room === undefined) {
      room = { live: new Map(), users: new Map() };
      this.rooms.set(conversationId, room);
    }
    const key = connectionKey(userId, connectionId);
    const expiry = now + this.timings.ttlMs;
    const entry = room.live.get(key);
    if (entry === undefined) {
      room.live.set(key, { userId, expiry });
      room.users.set(userId, (room.users.get(userId) ?? 0) + 1);
    } else entry.expiry = expiry;
    if (!this.due.has(conversationId)) this.due.set(conversationId, expiry + this.timings.graceMs);
    return !known;
  }
}

/** Where a connection's entry is kept: its user (encoded, so no user id can contain the separator) and its id. */
export function connectionKey(userId: string, connectionId: string): string {
  return `${encodeURIComponent(userId)}|${connectionId}`;
}

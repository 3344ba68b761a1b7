import type { Clock, MemberRoster, MembershipStore } from '../ports.js';

const ROSTER_CACHE_LIMIT = 1_000;
/** Users missing from a snapshot that are looked up one by one; more than this re-reads the whole list. */
const MAX_SINGLE_LOOKUPS = 3;

interface Snapshot {
  members: Set<string>;
  readAt: number;
}

/**
 * Who is a member of a conversation, as this container saw it at most `maxAgeMs` ago: the conversation's
 * member list (one Query) is kept that long, so checking every frame and filtering every fan-out costs no read
 * in the common case. A removed member is dropped at the next re-read, which bounds how long a removal takes to
 * show (`MEMBERSHIP_CACHE_SECONDS`). A user missing from the snapshot is looked up at once (one read each, or
 * one fresh read of the list for more than a few), so someone just added is never refused for the snapshot's age.
 */
export class CachedMemberRoster implements MemberRoster {
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly reading = new Map<string, Promise<Snapshot>>();

  constructor(
    private readonly members: Pick<MembershipStore, 'get' | 'list'>,
    private readonly maxAgeMs: number,
    private readonly clock: Clock,
  ) {}

  async isMember(conversationId: string, userId: string): Promise<boolean> {
    return (await this.membersAmong(conversationId, [userId])).has(userId);
  }

  async membersAmong(conversationId: string, userIds: readonly string[]): Promise<Set<string>> {
    let snapshot = await this.snapshotOf(conversationId);
    let unknown = [...new Set(userIds)].filter((userId) => !snapshot.members.has(userId));
    if (unknown.length > MAX_SINGLE_LOOKUPS) {
      // Many newcomers (a burst of joins): one fresh read of the list beats a read per user.
      snapshot = await this.snapshotOf(conversationId, true);
      unknown = [];
    }
    // Added since the snapshot? Ask for each (rare: a user not in the roster is usually a non-member).
    const added = await Promise.all(unknown.map(async (userId) => ((await this.members.get(conversationId, userId)) === undefined ? undefined : userId)));
    for (const userId of added) if (userId !== undefined) snapshot.members.add(userId);
    return new Set(userIds.filter((userId) => snapshot.members.has(userId)));
  }

  async count(conversationId: string): Promise<number> {
    return (await this.snapshotOf(conversationId)).members.size;
  }

  /** Forgets what this container knows of a conversation (after it changed the membership itself). */
  forget(conversationId: string): void {
    this.snapshots.delete(conversationId);
  }

  private async snapshotOf(conversationId: string, fresh = false): Promise<Snapshot> {
    const known = this.snapshots.get(conversationId);
    if (!fresh && known !== undefined && this.clock.now() - known.readAt < this.maxAgeMs) return known;
    const inFlight = this.reading.get(conversationId);
    if (inFlight !== undefined) return inFlight;
    const read = (async () => {
      const readAt = this.clock.now();
      const snapshot = { members: new Set(await this.members.list(conversationId)), readAt };
      this.snapshots.delete(conversationId);
      if (this.snapshots.size >= ROSTER_CACHE_LIMIT) {
        const oldest = this.snapshots.keys().next();
        if (oldest.done !== true) this.snapshots.delete(oldest.value);
      }
      this.snapshots.set(conversationId, snapshot);
      return snapshot;
    })();
    this.reading.set(conversationId, read);
    try {
      return await read;
    } finally {
      this.reading.delete(conversationId);
    }
  }
}

import type { ReceivedMessage } from './protocol.js';

/** How many released messageIds a conversation remembers for dedupe (a messageId has one seq; this is a guard). */
const RECENT_IDS = 1024;

/**
 * The ordering state of one conversation on this device: what was released to the app, what is held because an
 * earlier seq has not arrived, and what the server said is not for this device. Pure: no sockets, no timers.
 *
 * `seq` goes 1, 2, 3… per conversation with no holes, so the next message to release is always `released + 1`.
 * A seq can be missing here for three reasons, all told by the server: it is this device's own message (`own`),
 * it expired or was acked earlier (an `unacked` page covers it: `cover`), or it is on its way (held until filled).
 */
export class ConversationState {
  private released: number;
  /** Seq → message waiting for an earlier seq; `null` marks this device's own message (nothing to release). */
  private readonly held = new Map<number, ReceivedMessage | null>();
  /** Through this seq nothing will come that is not already held (the server said so). */
  private covered = 0;
  private readonly recentIds = new Set<string>();

  constructor(
    readonly conversationId: string,
    /** The last seq the app has already seen (0 for none). */
    afterSeq = 0,
  ) {
    this.released = afterSeq;
  }

  /** The highest seq released (or passed over): what a resubscribe resumes after. */
  get lastSeq(): number {
    return this.released;
  }

  /** The highest seq held back, or `lastSeq` when nothing is. */
  get heldMax(): number {
    return Math.max(this.released, ...this.held.keys());
  }

  /** True while a message waits for an earlier seq that has not arrived. */
  get hasGap(): boolean {
    return this.held.size > 0;
  }

  /** Takes a message in; false when it is a duplicate (delivery is at-least-once). */
  offer(message: ReceivedMessage): boolean {
    if (message.seq <= this.released || this.held.has(message.seq) || this.recentIds.has(message.messageId)) return false;
    this.held.set(message.seq, message);
    return true;
  }

  /** This device sent `seq` (its `sent` frame): the server never delivers it back, and there is no hole. */
  own(seq: number): void {
    if (seq > this.released && !this.held.has(seq)) this.held.set(seq, null);
  }

  /** Nothing through `through` will arrive beyond what is held: what is missing there is not for this device. */
  cover(through: number): void {
    this.covered = Math.max(this.covered, through);
  }

  /** Releases every message that is in order now, ascending; `through` is the new `lastSeq`. */
  take(): { messages: ReceivedMessage[]; through: number } {
    const messages: ReceivedMessage[] = [];
    for (;;) {
      const next = this.released + 1;
      if (this.held.has(next)) {
        const message = this.held.get(next);
        this.held.delete(next);
        this.released = next;
        if (message !== undefined && message !== null) {
          messages.push(message);
          this.remember(message.messageId);
        }
        continue;
      }
      if (this.released >= this.covered) break;
      // A covered hole: pass over it to the next held seq, or to the end of what is covered.
      const nextHeld = Math.min(...[...this.held.keys()].filter((seq) => seq <= this.covered));
      this.released = Number.isFinite(nextHeld) ? nextHeld - 1 : this.covered;
    }
    return { messages, through: this.released };
  }

  private remember(messageId: string): void {
    this.recentIds.add(messageId);
    if (this.recentIds.size > RECENT_IDS) {
      const oldest = this.recentIds.values().next();
      if (oldest.done !== true) this.recentIds.delete(oldest.value);
    }
  }
}

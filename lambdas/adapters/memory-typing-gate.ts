import type { TypingGate, TypingState } from '../ports.js';

export interface MemoryTypingGateOptions {
  /** A repeated state goes out at most once per this many ms; 0 lets every frame out. */
  readonly windowMs: number;
  /**
   * (conversation, user) pairs remembered at most; one more forgets the least recently sent, whose next frame
   * then goes out (a gate that forgets only sends more). @default 10_000
   */
  readonly maxKeys?: number;
}

/** The last frame that went out for one user in one conversation. */
export interface LastTyping {
  state: TypingState;
  at: number;
}

/**
 * The gate's rule, for a frame of `state` at `now` after `last` went out: a change of state goes out at once, a
 * repeat once the window has passed since `last`. (The Redis gate's script is the same rule in Lua.)
 */
export function typingGoesOut(last: LastTyping | undefined, state: TypingState, now: number, windowMs: number): boolean {
  return last === undefined || last.state !== state || now - last.at >= windowMs;
}

/**
 * The typing gate of one process: the fallback of RedisTypingGate while Redis is down, and the gate of
 * `npm start` without Redis. Same rule as the Redis script, bounded memory.
 */
export class MemoryTypingGate implements TypingGate {
  private readonly windowMs: number;
  private readonly maxKeys: number;
  /** Map order is recency order: the first entry is the least recently sent. */
  private readonly sent = new Map<string, LastTyping>();

  constructor(options: MemoryTypingGateOptions) {
    this.windowMs = options.windowMs;
    this.maxKeys = Math.max(1, options.maxKeys ?? 10_000);
  }

  async shouldSend(conversationId: string, userId: string, state: TypingState, now: number): Promise<boolean> {
    if (this.windowMs <= 0) return true;
    // A conversationId has no newline (protocol), so the first one ends it whatever the userId holds.
    const key = `${conversationId}\n${userId}`;
    if (!typingGoesOut(this.sent.get(key), state, now, this.windowMs)) return false;
    this.sent.delete(key);
    this.sent.set(key, { state, at: now });
    for (const oldest of this.sent.keys()) {
      if (this.sent.size <= this.maxKeys) break;
      this.sent.delete(oldest);
    }
    return true;
  }

  /** How many pairs are remembered (for tests of the bound). */
  get size(): number {
    return this.sent.size;
  }
}

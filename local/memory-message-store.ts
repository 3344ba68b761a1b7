import type {
  AppendResult,
  Clock,
  Device,
  MessageStore,
  PendingResult,
  RateLimit,
  StoredMessage,
} from '../lambdas/ports.js';
import { deviceKey, encodeStoredMessage, userPrefix } from '../lambdas/adapters/stored-message.js';
import type { RedisStoreSettings } from '../lambdas/adapters/redis-message-store.js';

interface Expiring<T> {
  value: T;
  expiresAt: number;
}

interface ConversationState {
  seq: number;
  messages: Map<string, Expiring<StoredMessage>>;
  idempotency: Map<string, Expiring<{ messageId: string; seq: number; sentAt: number }>>;
  devices: Set<string>;
  /** device key → (messageId → seq) */
  pending: Map<string, Map<string, number>>;
}

/**
 * In-memory twin of RedisMessageStore, only for the embedded default of `npm start` when no redis-server is
 * available. It passes the same contract suite; nothing survives a restart.
 */
export class MemoryMessageStore implements MessageStore {
  private readonly conversations = new Map<string, ConversationState>();
  private readonly buckets = new Map<string, { tokens: number; ts: number; idleAfter: number }>();

  constructor(
    private readonly settings: RedisStoreSettings,
    private readonly clock: Clock,
  ) {}

  async admit(conversationId: string, limit: RateLimit): Promise<boolean> {
    return this.take(conversationId, limit);
  }

  async registerDevice(conversationId: string, device: Device): Promise<void> {
    this.state(conversationId).devices.add(deviceKey(device));
  }

  async forgetUser(conversationId: string, userId: string): Promise<void> {
    const state = this.state(conversationId);
    const prefix = userPrefix(userId);
    for (const device of [...state.devices]) {
      if (!device.startsWith(prefix)) continue;
      state.devices.delete(device);
      state.pending.delete(device);
    }
  }

  async append(message: StoredMessage, limit: RateLimit): Promise<AppendResult> {
    if (!this.take(message.conversationId, limit)) return { status: 'rate_limited' };
    const state = this.state(message.conversationId);
    const idemKey = `${message.senderId}\n${message.clientMessageId}`;
    const existing = this.live(state.idempotency, idemKey);
    if (existing !== undefined) return { status: 'duplicate', ...existing };
    state.seq += 1;
    const seq = state.seq;
    const expiresAt = this.clock.now() + this.settings.retentionSeconds * 1000;
    state.messages.set(message.messageId, { value: { ...message, seq }, expiresAt });
    state.idempotency.set(idemKey, { value: { messageId: message.messageId, seq, sentAt: message.sentAt }, expiresAt });
    const sender = deviceKey({ userId: message.senderId, deviceId: message.senderDevice });
    for (const device of state.devices) {
      if (device === sender) continue;
      const pending = state.pending.get(device) ?? new Map<string, number>();
      pending.set(message.messageId, seq);
      while (pending.size > this.settings.maxPendingPerDevice) {
        const oldest = pending.keys().next();
        if (oldest.done === true) break;
        pending.delete(oldest.value);
      }
      state.pending.set(device, pending);
    }
    return { status: 'stored', seq };
  }

  async ack(conversationId: string, device: Device, messageIds: readonly string[], limit: RateLimit) {
    if (!this.take(conversationId, limit)) return 'rate_limited' as const;
    const pending = this.state(conversationId).pending.get(deviceKey(device));
    for (const id of messageIds) pending?.delete(id);
    return 'ok' as const;
  }

  async pending(
    conversationId: string,
    device: Device,
    page: { afterSeq: number; limit: number; maxBytes: number },
    limit: RateLimit,
  ): Promise<PendingResult> {
    if (!this.take(conversationId, limit)) return { status: 'rate_limited' };
    const state = this.state(conversationId);
    const pending = state.pending.get(deviceKey(device));
    const messages: StoredMessage[] = [];
    let bytes = 0;
    if (pending === undefined) return { status: 'ok', messages, hasMore: false };
    const ordered = [...pending.entries()].filter(([, seq]) => seq > page.afterSeq).sort((a, b) => a[1] - b[1]);
    for (const [messageId] of ordered) {
      const message = this.live(state.messages, messageId);
      if (message === undefined) {
        pending.delete(messageId);
        continue;
      }
      // Same measure as the Redis script: the stored value "<seq>\n<json>" in bytes.
      const size = Buffer.byteLength(`${message.seq}\n${encodeStoredMessage(message)}`, 'utf8');
      if (messages.length >= page.limit || (messages.length > 0 && bytes + size > page.maxBytes)) {
        return { status: 'ok', messages, hasMore: true };
      }
      messages.push({ ...message });
      bytes += size;
    }
    return { status: 'ok', messages, hasMore: false };
  }

  async load(conversationId: string, messageId: string): Promise<StoredMessage | undefined> {
    const message = this.live(this.state(conversationId).messages, messageId);
    return message === undefined ? undefined : { ...message };
  }

  private state(conversationId: string): ConversationState {
    let state = this.conversations.get(conversationId);
    if (state === undefined) {
      state = { seq: 0, messages: new Map(), idempotency: new Map(), devices: new Set(), pending: new Map() };
      this.conversations.set(conversationId, state);
    }
    return state;
  }

  private live<T>(map: Map<string, Expiring<T>>, key: string): T | undefined {
    const entry = map.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.clock.now()) {
      map.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /** The same token bucket as the Redis script, per (conversation, connection); idle full buckets are dropped. */
  private take(conversationId: string, limit: RateLimit): boolean {
    if (limit.perSecond <= 0) return true;
    const now = this.clock.now();
    const key = `${conversationId}\n${limit.connectionId}`;
    const bucket = this.buckets.get(key) ?? { tokens: limit.burst, ts: now, idleAfter: 0 };
    bucket.tokens = Math.min(limit.burst, bucket.tokens + (Math.max(0, now - bucket.ts) * limit.perSecond) / 1000);
    bucket.ts = now;
    bucket.idleAfter = now + Math.ceil((limit.burst * 1000) / limit.perSecond) + 1000;
    const allowed = bucket.tokens >= 1;
    if (allowed) bucket.tokens -= 1;
    this.buckets.set(key, bucket);
    if (this.buckets.size > 10_000) {
      for (const [other, state] of this.buckets) if (state.idleAfter < now) this.buckets.delete(other);
    }
    return allowed;
  }
}

import { Connection, systemTimers, type BackoffOptions, type ConnectionEvents, type ConnectionState, type Timers, type WebSocketConstructor } from './connection.js';
import { ConversationState } from './conversation.js';
import { RelayClientError } from './errors.js';
import { Emitter, type Listener } from './events.js';
import { Outbox } from './outbox.js';
import type {
  ConversationStatus,
  ConversationsFrame,
  DeletedFrame,
  EditedFrame,
  HistoryFrame,
  MessageDeletedFrame,
  MessageEditedFrame,
  PresenceFrame,
  PushRegisteredFrame,
  PushTarget,
  PushUnregisteredFrame,
  ReadFrame,
  ReceivedMessage,
  SentFrame,
  SubscribedFrame,
  TypingEventFrame,
  UnackedFrame,
  UnsubscribedFrame,
} from './protocol.js';
import { parseFrame } from './protocol.js';
import { Requests } from './requests.js';

export { backoffDelay, type BackoffOptions, type ConnectionState, type Timers, type WebSocketConstructor, type WebSocketLike } from './connection.js';
export { ConversationState } from './conversation.js';
export { RelayClientError, type RelayClientErrorCode } from './errors.js';
export type * from './protocol.js';

export interface RelayClientOptions {
  /** The gateway URL without query, e.g. `ws://127.0.0.1:3001/local` (`npm start`). */
  url: string;
  /** This device: 1–64 of `[A-Za-z0-9_-]`. Delivery state is kept per device. */
  clientId: string;
  /** Returns a connection token (JWT); called again before every reconnect. */
  token: () => string | Promise<string>;
  /** The WebSocket class; default `globalThis.WebSocket` (browsers). In Node 20 pass `ws`'s. */
  WebSocket?: WebSocketConstructor;
  /** Conversations to subscribe to as soon as the connection opens. */
  conversations?: readonly string[];
  /** Reconnect backoff (full jitter). @default { baseMs: 500, capMs: 30000 } */
  reconnect?: Partial<BackoffOptions>;
  /** @default 25000 (below API Gateway's 10-minute idle timeout) */
  pingIntervalMs?: number;
  /** How long a request waits for its answer. @default 10000 */
  requestTimeoutMs?: number;
  /**
   * Acks are batched: one `ack` (upToSeq) per conversation at most this often, and never two in flight (each ack
   * is a write on the server; a burst of N messages costs a few acks, not N). A crash loses at most this window of
   * acks: those messages come again on the next resume and are dropped by seq if the app kept `lastSeq`.
   * @default 500
   */
  ackDelayMs?: number;
  /** How long a message waits for an earlier one to arrive live before the gap is fetched. @default 200 */
  gapWaitMs?: number;
  /**
   * After a resume, what is pending is fetched again this much later, and again while that finds anything: a
   * message whose sender looked up the recipients before this connection subscribed, and was stored after the
   * resume page was read, is pending but never posted live. @default 2000
   */
  catchUpMs?: number;
  /** At most one typing `start` per conversation this often (`stop` always goes out). @default 2000 */
  typingThrottleMs?: number;
  /** Attempts of one `send` (after `unavailable` / a timeout) before it rejects. @default 10 */
  maxSendAttempts?: number;
  /** For tests: the jitter source and the clock. */
  random?: () => number;
  timers?: Timers;
  /** clientMessageId generator. @default crypto.randomUUID */
  newClientMessageId?: () => string;
}

export interface RelayClientEvents extends ConnectionEvents {
  /** Messages of each conversation, in seq order, each once; the next waits until every listener of this one settled. */
  message: ReceivedMessage;
  typing: TypingEventFrame;
  read: ReadFrame;
  presence: PresenceFrame;
  messageEdited: MessageEditedFrame;
  messageDeleted: MessageDeletedFrame;
  /** The server ended a subscription (the user was removed from the conversation). */
  unsubscribed: UnsubscribedFrame;
  /** An `error` frame no request was waiting for, a listener that threw, an ack that failed. */
  error: RelayClientError;
}

/** One conversation this client follows. */
interface Followed {
  readonly state: ConversationState;
  /** The subscribe whose resume pages are still to come (fills wait for them). */
  resumingBy: string | undefined;
  filling: boolean;
  gapTimer: unknown;
  resumeTimer: unknown;
  /** Listeners run one message at a time per conversation: the chain of what is released. */
  chain: Promise<void>;
  /** Every seq through this one was handled by the app (or is not for this device): what an ack may cover. */
  handled: number;
  ackedThrough: number;
  ackTimer: unknown;
  /** An ack is out and not answered yet: the next one waits for it. */
  acking: boolean;
}

/** What a page that answers a fill or a resume may cover once it is the last one (`hasMore: false`). */
interface FillContext {
  conversationId: string;
  through: number;
  kind: 'unacked' | 'history';
  /** A resume, a catch-up after one, or a gap. */
  origin: 'resume' | 'catchUp' | 'gap';
}

const DEFAULTS = {
  backoff: { baseMs: 500, capMs: 30_000 },
  pingIntervalMs: 25_000,
  requestTimeoutMs: 10_000,
  ackDelayMs: 500,
  gapWaitMs: 200,
  catchUpMs: 2000,
  typingThrottleMs: 2000,
  maxSendAttempts: 10,
};
const PAGE_LIMIT = 100;
/** Conversations one `subscribe` frame may name. */
const MAX_SUBSCRIBE = 100;

function platformWebSocket(): WebSocketConstructor {
  const candidate: unknown = (globalThis as { WebSocket?: unknown }).WebSocket;
  if (typeof candidate !== 'function') {
    throw new TypeError('no WebSocket in this runtime: pass one as the WebSocket option (e.g. `ws` in Node)');
  }
  return candidate as WebSocketConstructor;
}

/**
 * A chat client for the relay (shared PROTOCOL.md v2): one connection per device that reconnects by itself,
 * resumes every conversation from its last seen seq, releases messages in seq order exactly once, acks them
 * after the app's listeners ran, and sends each message once however often it has to be resent.
 */
export class RelayClient {
  private readonly events = new Emitter<RelayClientEvents>();
  private readonly timers: Timers;
  private readonly settings: typeof DEFAULTS;
  private readonly connection: Connection;
  private readonly requests: Requests;
  private readonly outbox: Outbox;
  private readonly followed = new Map<string, Followed>();
  private readonly fills = new Map<string, FillContext>();
  /** Conversations subscribed on the current socket, with their last status. */
  private readonly live = new Map<string, ConversationStatus>();
  private readonly typingAt = new Map<string, number>();
  private ownMessageIds = new Set<string>();
  private ready = false;
  private waiters: { resolve(): void; reject(error: RelayClientError): void }[] = [];

  constructor(options: RelayClientOptions) {
    this.timers = options.timers ?? systemTimers;
    const random = options.random ?? Math.random;
    this.settings = {
      backoff: { ...DEFAULTS.backoff, ...options.reconnect },
      pingIntervalMs: options.pingIntervalMs ?? DEFAULTS.pingIntervalMs,
      requestTimeoutMs: options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
      ackDelayMs: options.ackDelayMs ?? DEFAULTS.ackDelayMs,
      gapWaitMs: options.gapWaitMs ?? DEFAULTS.gapWaitMs,
      catchUpMs: options.catchUpMs ?? DEFAULTS.catchUpMs,
      typingThrottleMs: options.typingThrottleMs ?? DEFAULTS.typingThrottleMs,
      maxSendAttempts: options.maxSendAttempts ?? DEFAULTS.maxSendAttempts,
    };
    for (const conversationId of options.conversations ?? []) this.follow(conversationId, 0);
    this.connection = new Connection(
      {
        url: options.url,
        clientId: options.clientId,
        token: options.token,
        WebSocket: options.WebSocket ?? platformWebSocket(),
        backoff: this.settings.backoff,
        random,
        timers: this.timers,
        pingIntervalMs: this.settings.pingIntervalMs,
      },
      {
        state: (name, event) => void this.events.emit<keyof ConnectionEvents>(name, event),
        opened: () => this.opened(),
        frame: (data) => this.received(data),
        dropped: () => this.dropped(),
      },
    );
    this.requests = new Requests({
      transmit: (frame) => this.connection.send(JSON.stringify(frame)),
      isOpen: () => this.connection.isOpen,
      isReady: () => this.ready,
      timers: this.timers,
      timeoutMs: this.settings.requestTimeoutMs,
    });
    this.outbox = new Outbox({
      requests: this.requests,
      timers: this.timers,
      backoff: this.settings.backoff,
      random,
      newClientMessageId: options.newClientMessageId ?? (() => globalThis.crypto.randomUUID()),
      maxAttempts: this.settings.maxSendAttempts,
    });
  }

  get state(): ConnectionState {
    return this.connection.state;
  }

  on<K extends keyof RelayClientEvents>(name: K, listener: Listener<RelayClientEvents[K]>): () => void {
    return this.events.on(name, listener);
  }

  off<K extends keyof RelayClientEvents>(name: K, listener: Listener<RelayClientEvents[K]>): void {
    this.events.off(name, listener);
  }

  /** Opens the connection; resolves once it is open and subscribed (later drops reconnect by themselves). */
  connect(): Promise<void> {
    this.connection.start();
    return this.whenReady();
  }

  close(): void {
    this.connection.close();
    this.requests.closeAll();
    this.outbox.closeAll();
    for (const followed of this.followed.values()) this.stopTimers(followed);
    for (const waiter of this.waiters.splice(0)) waiter.reject(new RelayClientError('closed', 'the client was closed'));
  }

  /**
   * Follows these conversations: resumes each after `afterSeq[id]` (the last seq the app has already seen; for a
   * conversation followed already, its own position). Resolves with each one's status; `forbidden` ones are dropped.
   */
  async subscribe(conversationIds: readonly string[], options: { afterSeq?: Readonly<Record<string, number>> } = {}): Promise<ConversationStatus[]> {
    for (const conversationId of conversationIds) this.follow(conversationId, options.afterSeq?.[conversationId] ?? 0);
    for (;;) {
      await this.whenReady();
      const missing = conversationIds.filter((c) => !this.live.has(c));
      if (missing.length === 0) break;
      try {
        await this.subscribeNow(missing);
      } catch (error) {
        if (!(error instanceof RelayClientError) || error.code !== 'disconnected') throw error;
      }
    }
    return conversationIds.map((conversationId) => this.live.get(conversationId) ?? { conversationId, status: 'forbidden' });
  }

  async unsubscribe(conversationIds: readonly string[]): Promise<UnsubscribedFrame> {
    for (const conversationId of conversationIds) this.unfollow(conversationId);
    return this.requests.request({ action: 'unsubscribe', conversationIds }, ['unsubscribed'], 'ready');
  }

  /** Sends a message; resolves with `sent` once it is stored (resent with the same clientMessageId as needed). */
  send(conversationId: string, body: string): Promise<SentFrame> {
    return this.outbox.send(conversationId, body);
  }

  edit(conversationId: string, messageId: string, body: string): Promise<EditedFrame> {
    return this.requests.request({ action: 'editMessage', conversationId, messageId, body }, ['edited'], 'ready');
  }

  delete(conversationId: string, messageId: string): Promise<DeletedFrame> {
    return this.requests.request({ action: 'deleteMessage', conversationId, messageId }, ['deleted'], 'ready');
  }

  /**
   * Tells the others this user is typing (`start`) or stopped. A `start` goes out at most once per
   * `typingThrottleMs` per conversation; a `stop` always (and lets the next `start` out at once). Typing is
   * ephemeral: while offline nothing is sent. Returns whether a frame went out.
   */
  typing(conversationId: string, state: 'start' | 'stop' = 'start'): boolean {
    if (!this.ready) return false;
    const now = this.timers.now();
    if (state === 'start') {
      const last = this.typingAt.get(conversationId);
      if (last !== undefined && now - last < this.settings.typingThrottleMs) return false;
      this.typingAt.set(conversationId, now);
    } else {
      this.typingAt.delete(conversationId);
    }
    return this.connection.send(JSON.stringify({ action: 'typing', conversationId, state }));
  }

  markRead(conversationId: string, seq: number): Promise<ReadFrame> {
    return this.requests.request({ action: 'markRead', conversationId, seq }, ['read'], 'ready');
  }

  history(conversationId: string, page: { beforeSeq?: number; afterSeq?: number; limit?: number } = {}): Promise<HistoryFrame> {
    return this.requests.request({ action: 'getHistory', conversationId, ...page }, ['history'], 'ready');
  }

  conversations(page: { limit?: number; cursor?: string } = {}): Promise<ConversationsFrame> {
    return this.requests.request({ action: 'getConversations', ...page }, ['conversations'], 'ready');
  }

  getPresence(conversationId: string): Promise<PresenceFrame> {
    return this.requests.request({ action: 'getPresence', conversationId }, ['presence'], 'ready');
  }

  /**
   * Wakes this device through `target` while it has no live connection (at most one push per offline period per
   * conversation); replaces the device's earlier target. Waits for a connection like the other requests.
   */
  registerPush(target: PushTarget): Promise<PushRegisteredFrame> {
    return this.requests.request({ action: 'registerPush', ...target }, ['pushRegistered'], 'ready');
  }

  /** This device is no longer woken by pushes (`removed: false` when it had no target). */
  unregisterPush(): Promise<PushUnregisteredFrame> {
    return this.requests.request({ action: 'unregisterPush' }, ['pushUnregistered'], 'ready');
  }

  /** The last seq released to the app in a conversation (what to persist to resume after a restart). */
  lastSeq(conversationId: string): number | undefined {
    return this.followed.get(conversationId)?.state.lastSeq;
  }

  // The connection's life.

  private whenReady(): Promise<void> {
    if (this.ready) return Promise.resolve();
    if (this.connection.state === 'closed') return Promise.reject(new RelayClientError('closed', 'the client was closed'));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private opened(): void {
    const all = [...this.followed.keys()];
    if (all.length === 0) {
      this.becomeReady();
      return;
    }
    const chunks: string[][] = [];
    for (let i = 0; i < all.length; i += MAX_SUBSCRIBE) chunks.push(all.slice(i, i + MAX_SUBSCRIBE));
    Promise.all(chunks.map((chunk) => this.subscribeNow(chunk))).then(
      () => this.becomeReady(),
      (error: unknown) => {
        // A resubscribe that failed on an open socket: start over with a fresh connection.
        if (this.connection.isOpen) this.connection.restart(`resubscribe failed: ${error instanceof Error ? error.message : String(error)}`);
      },
    );
  }

  private becomeReady(): void {
    if (this.ready || !this.connection.isOpen) return;
    this.ready = true;
    this.requests.flush();
    for (const followed of this.followed.values()) this.scheduleAck(followed);
    for (const waiter of this.waiters.splice(0)) waiter.resolve();
  }

  private dropped(): void {
    this.ready = false;
    this.live.clear();
    for (const followed of this.followed.values()) {
      this.stopTimers(followed);
      followed.resumingBy = undefined;
      followed.filling = false;
    }
    this.fills.clear();
    this.requests.dropped();
  }

  private follow(conversationId: string, afterSeq: number): void {
    if (this.followed.has(conversationId)) return;
    this.followed.set(conversationId, {
      state: new ConversationState(conversationId, afterSeq),
      resumingBy: undefined,
      filling: false,
      gapTimer: undefined,
      resumeTimer: undefined,
      chain: Promise.resolve(),
      handled: afterSeq,
      ackedThrough: afterSeq,
      ackTimer: undefined,
      acking: false,
    });
  }

  private unfollow(conversationId: string): void {
    const followed = this.followed.get(conversationId);
    if (followed !== undefined) this.stopTimers(followed);
    this.followed.delete(conversationId);
    this.live.delete(conversationId);
  }

  private stopTimers(followed: Followed): void {
    for (const timer of [followed.gapTimer, followed.resumeTimer, followed.ackTimer]) this.timers.clearTimeout(timer);
    followed.gapTimer = undefined;
    followed.resumeTimer = undefined;
    followed.ackTimer = undefined;
  }

  /** Subscribes on the current socket, each conversation after its last seq: what was missed follows as pages. */
  private async subscribeNow(conversationIds: readonly string[]): Promise<SubscribedFrame> {
    const requestId = this.requests.newRequestId();
    const afterSeq: Record<string, number> = {};
    for (const conversationId of conversationIds) {
      const followed = this.followed.get(conversationId);
      if (followed === undefined) continue;
      afterSeq[conversationId] = followed.state.lastSeq;
      followed.resumingBy = requestId;
    }
    return this.requests.request({ action: 'subscribe', conversationIds, afterSeq }, ['subscribed'], 'open', requestId);
  }

  // Frames from the server. Handled here synchronously, in arrival order, before any request settles.

  private received(data: unknown): void {
    const frame = parseFrame(data);
    if (frame === undefined) return;
    switch (frame.type) {
      case 'message': {
        const { type: _type, ...message } = frame;
        this.offer(message.conversationId, [message]);
        break;
      }
      case 'unacked':
      case 'history':
        this.page(frame);
        break;
      case 'subscribed':
        this.subscribed(frame);
        break;
      case 'unsubscribed':
        for (const { conversationId } of frame.conversations) this.unfollow(conversationId);
        if (frame.requestId === undefined) void this.events.emit('unsubscribed', frame);
        break;
      case 'sent':
        this.ownSent(frame);
        this.outbox.settle(frame);
        break;
      case 'typing':
      case 'read':
      case 'presence':
      case 'messageEdited':
      case 'messageDeleted':
        void this.emitSafely(frame.type, frame);
        break;
      case 'error':
        if (!this.requests.settle(frame)) {
          void this.events.emit('error', new RelayClientError(frame.code, frame.message, { ...(frame.action === undefined ? {} : { action: frame.action }) }));
        }
        // The connection outlived its token: every frame on it would be refused. A new socket asks the token
        // provider for a fresh one (messages refused meanwhile are resent by the outbox).
        if (frame.code === 'token_expired') this.connection.restart('the connection token expired');
        return;
      default:
        break;
    }
    this.requests.settle(frame);
  }

  private emitSafely<K extends keyof RelayClientEvents>(name: K, event: RelayClientEvents[K]): Promise<void> {
    return this.events.emit(name, event).then((failures) => {
      for (const cause of failures) void this.events.emit('error', new RelayClientError('listener_failed', `a ${String(name)} listener failed`, {}, { cause }));
    });
  }

  private subscribed(frame: SubscribedFrame): void {
    const requestId = frame.requestId;
    for (const status of frame.conversations) {
      const followed = this.followed.get(status.conversationId);
      if (followed === undefined) continue;
      if (status.status !== 'ok') {
        this.unfollow(status.conversationId);
        this.live.set(status.conversationId, status);
        continue;
      }
      this.live.set(status.conversationId, status);
      if (requestId === undefined || followed.resumingBy !== requestId) continue;
      // Its pages follow; the last one covers everything through the lastSeq the server had at subscribe.
      const through = Math.max(status.lastSeq ?? 0, followed.state.lastSeq);
      this.fills.set(`${requestId} ${status.conversationId}`, { conversationId: status.conversationId, through, kind: 'unacked', origin: 'resume' });
      this.timers.clearTimeout(followed.resumeTimer);
      followed.resumeTimer = this.timers.setTimeout(() => {
        // The pages did not come (a post that failed): fetch the same range ourselves.
        followed.resumeTimer = undefined;
        if (followed.resumingBy !== requestId) return;
        this.fills.delete(`${requestId} ${status.conversationId}`);
        followed.resumingBy = undefined;
        this.fill(followed, Math.max(through, followed.state.heldMax), 'unacked', 'resume');
      }, this.settings.requestTimeoutMs);
    }
  }

  private ownSent(frame: SentFrame): void {
    const followed = this.followed.get(frame.conversationId);
    if (followed === undefined) return;
    this.ownMessageIds.add(frame.messageId);
    if (this.ownMessageIds.size > 1024) this.ownMessageIds = new Set([...this.ownMessageIds].slice(-512));
    followed.state.own(frame.seq);
    this.release(followed);
  }

  // Ordering, gaps and acks.

  private offer(conversationId: string, messages: readonly ReceivedMessage[]): void {
    const followed = this.followed.get(conversationId);
    if (followed === undefined) return;
    for (const message of messages) followed.state.offer(message);
    this.release(followed);
  }

  /**
   * A page of a fill or a resume. Entries between the request's `afterSeq` and the page's last seq that the
   * page leaves out are not for this device (its own, acked, or expired: the `gap`); the last page also covers
   * everything the fill was waiting for when it was asked.
   */
  private page(frame: UnackedFrame | HistoryFrame): void {
    const key = `${frame.requestId ?? ''} ${frame.conversationId}`;
    const context = this.fills.get(key);
    const followed = this.followed.get(frame.conversationId);
    if (context === undefined || followed === undefined) return;
    this.fills.delete(key);
    const entries = frame.messages;
    for (const entry of entries) {
      // A history page also holds this device's own messages: they are not delivered back.
      if (!this.ownMessageIds.has(entry.messageId)) followed.state.offer(entry);
      else followed.state.own(entry.seq);
    }
    const pageMax = Math.max(0, ...entries.map((entry) => entry.seq));
    const gapTo = frame.type === 'unacked' ? (frame.gap?.toSeq ?? 0) : 0;
    followed.state.cover(frame.hasMore ? Math.max(pageMax, gapTo) : Math.max(pageMax, gapTo, context.through));
    if (followed.resumingBy === frame.requestId) {
      this.timers.clearTimeout(followed.resumeTimer);
      followed.resumingBy = undefined;
    }
    followed.filling = false;
    this.release(followed);
    if (frame.hasMore) {
      // Page on from where this one ended; a page that moved nothing is read from the history instead.
      const moved = entries.length > 0 || gapTo > 0;
      this.fill(followed, context.through, moved && frame.type === 'unacked' ? 'unacked' : 'history', context.origin);
    } else if (context.origin === 'resume' || (context.origin === 'catchUp' && entries.length > 0)) {
      this.scheduleCatchUp(followed);
    }
  }

  private scheduleCatchUp(followed: Followed): void {
    this.timers.clearTimeout(followed.resumeTimer);
    followed.resumeTimer = this.timers.setTimeout(() => {
      followed.resumeTimer = undefined;
      if (followed.filling || followed.resumingBy !== undefined || this.followed.get(followed.state.conversationId) !== followed) return;
      this.fill(followed, followed.state.heldMax, 'unacked', 'catchUp');
    }, this.settings.catchUpMs);
  }

  /** Fetches what follows the conversation's last seq, up to `through` (what it waits for). */
  private fill(followed: Followed, through: number, kind: 'unacked' | 'history' = 'unacked', origin: FillContext['origin'] = 'gap'): void {
    if (!this.connection.isOpen) return;
    followed.filling = true;
    const conversationId = followed.state.conversationId;
    const requestId = this.requests.newRequestId();
    this.fills.set(`${requestId} ${conversationId}`, { conversationId, through, kind, origin });
    const frame =
      kind === 'unacked'
        ? { action: 'getUnacked', conversationId, afterSeq: followed.state.lastSeq, limit: PAGE_LIMIT }
        : { action: 'getHistory', conversationId, afterSeq: followed.state.lastSeq, limit: PAGE_LIMIT };
    this.requests.request(frame, [kind], 'open', requestId).catch((error: unknown) => {
      this.fills.delete(`${requestId} ${conversationId}`);
      if (this.followed.get(conversationId) !== followed) return;
      followed.filling = false;
      if (error instanceof RelayClientError && (error.code === 'disconnected' || error.code === 'closed')) return;
      this.watchGap(followed);
    });
  }

  private watchGap(followed: Followed): void {
    if (!followed.state.hasGap || followed.resumingBy !== undefined || followed.filling || followed.gapTimer !== undefined) return;
    followed.gapTimer = this.timers.setTimeout(() => {
      followed.gapTimer = undefined;
      if (!followed.state.hasGap || followed.resumingBy !== undefined || followed.filling || this.followed.get(followed.state.conversationId) !== followed) return;
      this.fill(followed, followed.state.heldMax);
    }, this.settings.gapWaitMs);
  }

  /** Hands what is in order to the app, one message after the other; acks follow each handled one. */
  private release(followed: Followed): void {
    const { messages, through } = followed.state.take();
    if (messages.length > 0 || through > followed.handled) {
      followed.chain = followed.chain.then(async () => {
        for (const message of messages) {
          await this.emitSafely('message', message);
          followed.handled = Math.max(followed.handled, message.seq);
          this.scheduleAck(followed);
        }
        followed.handled = Math.max(followed.handled, through);
        this.scheduleAck(followed);
      });
    }
    this.watchGap(followed);
  }

  private scheduleAck(followed: Followed): void {
    if (followed.handled <= followed.ackedThrough || followed.ackTimer !== undefined || followed.acking) return;
    followed.ackTimer = this.timers.setTimeout(() => {
      followed.ackTimer = undefined;
      this.flushAck(followed);
    }, this.settings.ackDelayMs);
  }

  private flushAck(followed: Followed): void {
    const conversationId = followed.state.conversationId;
    const upToSeq = followed.handled;
    if (!this.ready || !this.live.has(conversationId) || upToSeq <= followed.ackedThrough || followed.acking) return;
    const before = followed.ackedThrough;
    followed.ackedThrough = upToSeq;
    followed.acking = true;
    this.requests.request({ action: 'ack', conversationId, upToSeq }, ['acked'], 'open').then(
      () => {
        followed.acking = false;
        if (this.followed.get(conversationId) === followed) this.scheduleAck(followed);
      },
      (error: unknown) => {
        followed.acking = false;
        if (this.followed.get(conversationId) !== followed) return;
        followed.ackedThrough = Math.min(followed.ackedThrough, before);
        if (error instanceof RelayClientError && (error.code === 'disconnected' || error.code === 'closed')) return;
        // Acks are cumulative and idempotent: a slow or busy server is retried by the next ack, not reported.
        const transient = error instanceof RelayClientError && ['timeout', 'unavailable', 'rate_limited'].includes(error.code);
        if (!transient) void this.events.emit('error', error instanceof RelayClientError ? error : new RelayClientError('internal', String(error)));
        this.scheduleAck(followed);
      },
    );
  }
}

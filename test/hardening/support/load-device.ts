import { openClient, type TestClient } from '../../../local/gateway/testing.js';

export type Frame = Record<string, unknown>;

export interface StoredView {
  messageId: string;
  seq: number;
  senderId: string;
  clientMessageId: string;
  conversationId: string;
}

const REQUEST_TIMEOUT_MS = 30_000;

/**
 * One device of the load test: a raw socket (the repository's one raw transport, local/gateway/testing.ts) that sends one request at a time (its answer is the next
 * non-pushed frame) while `message` frames pushed by the backend are counted as they come, across reconnects.
 */
export class LoadDevice {
  /** Live `message` frames received: messageId → how many times. */
  readonly live = new Map<string, StoredView>();
  /** Messages fetched with getUnacked (across reconnects): messageId → message. */
  readonly fetched = new Map<string, StoredView>();
  liveFrames = 0;
  liveDuplicates = 0;
  /** Live messages not acked yet. */
  private readonly toAck = new Set<string>();
  private socket: TestClient | undefined;
  private waiter: { resolve(frame: Frame): void; reject(error: Error): void } | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  readonly errors: Frame[] = [];

  constructor(
    readonly userId: string,
    readonly deviceId: string,
    readonly conversationId: string,
    private readonly url: (token: string) => string,
    private readonly token: () => Promise<string>,
  ) {}

  get key(): string {
    return `${this.userId}/${this.deviceId}`;
  }

  async connect(): Promise<void> {
    const socket = await openClient(this.url(await this.token()), { onFrame: (text) => this.onFrame(text) }).catch((error: unknown) => {
      throw new Error(`${this.key}: ${error instanceof Error ? error.message : String(error)}`);
    });
    void socket.closed.then(() => this.waiter?.reject(new Error(`${this.key}: socket closed while waiting for an answer`)));
    this.socket = socket;
  }

  async disconnect(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined;
    await socket?.close();
  }

  /** Sends a frame and resolves with its answer; requests of one device are serialised. */
  request(frame: Frame): Promise<Frame> {
    const run = this.chain.then(() => this.exchange(frame));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Acks what arrived live and has not been acked yet (at most 100 ids a frame). */
  async ackLive(): Promise<number> {
    let acked = 0;
    while (this.toAck.size > 0) {
      const messageIds = [...this.toAck].slice(0, 100);
      const answer = await this.request({ action: 'ack', conversationId: this.conversationId, messageIds });
      if (answer.type !== 'acked') throw new Error(`${this.key}: ack answered ${JSON.stringify(answer)}`);
      for (const id of messageIds) this.toAck.delete(id);
      acked += messageIds.length;
    }
    return acked;
  }

  /** Every pending message, paging with afterSeq while hasMore (bounded). */
  async pending(): Promise<StoredView[]> {
    const out: StoredView[] = [];
    let afterSeq = 0;
    for (let page = 0; page < 1000; page += 1) {
      const answer = await this.request({ action: 'getUnacked', conversationId: this.conversationId, afterSeq, limit: 100 });
      if (answer.type !== 'unacked' || !Array.isArray(answer.messages)) throw new Error(`${this.key}: getUnacked answered ${JSON.stringify(answer)}`);
      const messages = answer.messages as StoredView[];
      out.push(...messages);
      for (const message of messages) this.fetched.set(message.messageId, message);
      const last = messages[messages.length - 1];
      if (answer.hasMore !== true) return out;
      if (last === undefined) throw new Error(`${this.key}: hasMore with an empty page`);
      afterSeq = last.seq;
    }
    throw new Error(`${this.key}: getUnacked kept answering hasMore`);
  }

  /** Acks these ids (pending messages fetched with getUnacked). */
  async ackIds(ids: readonly string[]): Promise<void> {
    for (let start = 0; start < ids.length; start += 100) {
      const messageIds = ids.slice(start, start + 100);
      const answer = await this.request({ action: 'ack', conversationId: this.conversationId, messageIds });
      if (answer.type !== 'acked') throw new Error(`${this.key}: ack answered ${JSON.stringify(answer)}`);
      for (const id of messageIds) this.toAck.delete(id);
    }
  }

  private exchange(frame: Frame): Promise<Frame> {
    const socket = this.socket;
    if (socket === undefined || socket.ws.readyState !== socket.ws.OPEN) return Promise.reject(new Error(`${this.key}: not connected`));
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`${this.key}: no answer to ${String(frame.action)} in ${REQUEST_TIMEOUT_MS} ms`));
      }, REQUEST_TIMEOUT_MS);
      this.waiter = {
        resolve: (answer) => {
          clearTimeout(timer);
          this.waiter = undefined;
          resolve(answer);
        },
        reject: (error) => {
          clearTimeout(timer);
          this.waiter = undefined;
          reject(error);
        },
      };
      socket.send(JSON.stringify(frame)).catch((error: unknown) => this.waiter?.reject(error instanceof Error ? error : new Error(String(error))));
    });
  }

  private onFrame(text: string): void {
    const frame = JSON.parse(text) as Frame;
    if (frame.type === 'message') {
      this.liveFrames += 1;
      const messageId = String(frame.messageId);
      if (this.live.has(messageId)) this.liveDuplicates += 1;
      else {
        this.live.set(messageId, {
          messageId,
          seq: Number(frame.seq),
          senderId: String(frame.senderId),
          clientMessageId: String(frame.clientMessageId),
          conversationId: String(frame.conversationId),
        });
        this.toAck.add(messageId);
      }
      return;
    }
    // Pushed, never an answer: other members coming and going, typing.
    if (frame.type === 'typing' || frame.type === 'presence') return;
    if (frame.type === 'error') this.errors.push(frame);
    this.waiter?.resolve(frame);
  }
}

import type { CloseEventLike, MessageEventLike, WebSocketConstructor, WebSocketLike } from '../../client/connection.js';

export type ClientFrame = Record<string, unknown> & { action: string; requestId?: string };
export type ServerFrameOut = Record<string, unknown> & { type: string };
/** A scripted answer: the frames the server sends back (after the client's send returned, as on a network). */
export type Script = (frame: ClientFrame, socket: FakeSocket) => ServerFrameOut[] | undefined;

/** A WebSocket with no network: the fake server reads what the client sends and answers by script. */
export class FakeSocket implements WebSocketLike {
  readyState = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: MessageEventLike) => void) | null = null;
  onclose: ((event: CloseEventLike) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  /** What the client sent on this socket, parsed. */
  readonly sent: ClientFrame[] = [];

  constructor(
    readonly url: string,
    private readonly server: FakeRelayServer,
  ) {}

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    const frame = JSON.parse(data) as ClientFrame;
    this.sent.push(frame);
    this.server.receive(frame, this);
  }

  close(): void {
    this.readyState = 3;
  }

  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  /** A frame from the server, delivered after the current task (like a real socket). */
  deliver(...frames: ServerFrameOut[]): void {
    void Promise.resolve().then(() => {
      for (const frame of frames) if (this.readyState === 1) this.onmessage?.({ data: JSON.stringify(frame) });
    });
  }

  /** The server (or the network) ends the connection. */
  drop(code = 1006, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

/**
 * A scripted relay server for the client's unit tests. Every socket the client opens lands here; `subscribe`
 * and `ack` are answered as the real server does (subscribed, then one `unacked` page per conversation); other
 * actions are answered only by the test's scripts.
 */
export class FakeRelayServer {
  readonly sockets: FakeSocket[] = [];
  /** Sockets open at once unless the test refuses them. */
  accept = true;
  /** The conversation's last seq, reported by `subscribed`. */
  readonly lastSeq = new Map<string, number>();
  /** Resume pages the next subscribe sends, per conversation. */
  readonly resumePages = new Map<string, ServerFrameOut[]>();
  private readonly scripts = new Map<string, Script>();
  readonly WebSocket: WebSocketConstructor;

  constructor() {
    this.WebSocket = socketClassFor(this);
    this.script('subscribe', (frame) => {
      const ids = frame.conversationIds as string[];
      const answer: ServerFrameOut = {
        type: 'subscribed',
        requestId: frame.requestId,
        conversations: ids.map((conversationId) => ({ conversationId, status: 'ok', lastSeq: this.lastSeq.get(conversationId) ?? 0 })),
      };
      const pages = ids.flatMap((conversationId) => {
        const scripted = this.resumePages.get(conversationId);
        this.resumePages.delete(conversationId);
        return scripted ?? [{ type: 'unacked', conversationId, messages: [], hasMore: false }];
      });
      return [answer, ...pages.map((page) => ({ ...page, requestId: frame.requestId }))];
    });
    this.script('ack', (frame) => [{ type: 'acked', conversationId: frame.conversationId, messageIds: [], upToSeq: frame.upToSeq, requestId: frame.requestId }]);
  }

  /** Answers `action` with what `script` returns (undefined: no answer). */
  script(action: string, script: Script): void {
    this.scripts.set(action, script);
  }

  receive(frame: ClientFrame, socket: FakeSocket): void {
    const answer = this.scripts.get(frame.action)?.(frame, socket);
    if (answer !== undefined && answer.length > 0) socket.deliver(...answer);
  }

  /** The socket the client opened last. */
  get socket(): FakeSocket {
    const socket = this.sockets[this.sockets.length - 1];
    if (socket === undefined) throw new Error('the client opened no socket');
    return socket;
  }

  /** Every frame of `action` the client sent, on every socket, in order. */
  sent(action: string): ClientFrame[] {
    return this.sockets.flatMap((socket) => socket.sent.filter((frame) => frame.action === action));
  }

  push(...frames: ServerFrameOut[]): void {
    this.socket.deliver(...frames);
  }
}

/** The WebSocket class the client is given: each socket it opens lands on `server`, and opens (or is refused) right after. */
function socketClassFor(server: FakeRelayServer): WebSocketConstructor {
  return class extends FakeSocket {
    constructor(url: string) {
      super(url, server);
      server.sockets.push(this);
      void Promise.resolve().then(() => (server.accept ? this.open() : this.drop(1006)));
    }
  };
}

/** A message frame as the server sends it. */
export function messageFrame(conversationId: string, seq: number, extra: Record<string, unknown> = {}): ServerFrameOut {
  return { type: 'message', ...messageData(conversationId, seq), ...extra };
}

export function messageData(conversationId: string, seq: number): Record<string, unknown> & { seq: number; messageId: string } {
  return { conversationId, messageId: `${conversationId}-m${seq}`, seq, senderId: 'bob', clientMessageId: `c${seq}`, body: `body ${seq}`, sentAt: 1000 + seq };
}

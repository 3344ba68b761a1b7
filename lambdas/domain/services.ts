import type {
  Clock,
  ConnectionPoster,
  ConnectionRegistry,
  FanoutQueue,
  MembershipStore,
  MessageStore,
  Sealer,
} from '../ports.js';

/** Structured log sink; fields must never carry tokens, message bodies or keys. */
export interface Log {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export type TokenCheck = { ok: true; userId: string } | { ok: false; reason: 'expired' | 'invalid' | 'unavailable' };

export interface Settings {
  ratePerSecond: number;
  rateBurst: number;
  fanoutThreshold: number;
  fanoutBatchSize: number;
  postConcurrency: number;
  connectionTtlSeconds: number;
  originAllowList: readonly string[];
}

/** Everything the domain needs, all of it present: the shared context is built to satisfy this. */
export interface Services {
  settings: Settings;
  registry: ConnectionRegistry;
  members: MembershipStore;
  store: MessageStore;
  fanout: FanoutQueue;
  sealer: Sealer;
  clock: Clock;
  log: Log;
  auth: { verify(token: string): Promise<TokenCheck> };
  posterFor(endpoint: string): ConnectionPoster;
  newMessageId(): string;
}

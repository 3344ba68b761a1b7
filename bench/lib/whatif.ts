import { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent } from 'node:http';
import type {
  ConnectionPoster,
  ConnectionRegistry,
  DevicePositions,
  MessageLog,
  RateLimiter,
  SeqCache,
  Subscription,
} from '../../lambdas/ports.js';

import { LOCAL_CREDENTIALS } from './backend.js';

/** The services the bench injects into every route of its local backend (see BenchSeams). */
export interface Seamed {
  registry: ConnectionRegistry;
  messages: MessageLog;
  positions: DevicePositions;
  limiter: RateLimiter;
  seqCache: SeqCache;
  posterFor(endpoint: string): ConnectionPoster;
}

/**
 * What-ifs on the real path, through the backend's public seam: the bench gives every route these services
 * (`startLocalBackend({ services })`), each a thin delegate to the implementation installed now — the real
 * adapters, or a prototype while one measurement runs. Nothing inside the handlers is patched.
 */
export class BenchSeams {
  private current: Seamed | undefined;
  private readonly base: { value: Seamed | undefined } = { value: undefined };

  /** The delegates to hand to the backend: they call whatever is installed when the handler calls them. */
  readonly services: Seamed = {
    registry: registryVia(() => this.now().registry),
    messages: messagesVia(() => this.now().messages),
    positions: {
      register: (c, device, after, at) => this.now().positions.register(c, device, after, at),
      get: (c, device) => this.now().positions.get(c, device),
      save: (next) => this.now().positions.save(next),
      forgetUser: (c, u) => this.now().positions.forgetUser(c, u),
    },
    limiter: { admit: (buckets) => this.now().limiter.admit(buckets) },
    seqCache: {
      get: (c) => this.now().seqCache.get(c),
      raise: (c, seq) => this.now().seqCache.raise(c, seq),
    },
    posterFor: (endpoint) => this.now().posterFor(endpoint),
  };

  /** The real adapters (built by the bench with the backend's endpoints, exactly as the routes would). */
  install(real: Seamed): void {
    this.base.value = real;
    this.current = real;
  }

  /** Runs `work` with `patch` in place of the real services; reports whether the handlers really used it. */
  async with<T>(patch: Patch, work: () => Promise<T>): Promise<{ result: T; applied: boolean }> {
    const real = this.now();
    const counter = { hits: 0 };
    this.current = { ...real, ...patch.apply(real, counter) };
    try {
      return { result: await work(), applied: counter.hits > 0 };
    } finally {
      this.current = real;
    }
  }

  private now(): Seamed {
    if (this.current === undefined) throw new TypeError('the bench installed no services before the first event');
    return this.current;
  }
}

/** A registry that calls whichever registry `target` gives at the moment of each call. */
export function registryVia(target: () => ConnectionRegistry): ConnectionRegistry {
  return {
    open: (record, max) => target().open(record, max),
    connection: (id) => target().connection(id),
    subscription: (id, c) => target().subscription(id, c),
    subscriptionsOf: (id) => target().subscriptionsOf(id),
    subscribe: (record, ids, at) => target().subscribe(record, ids, at),
    unsubscribe: (id, ids) => target().unsubscribe(id, ids),
    listByConversation: (c) => target().listByConversation(c),
    devicesSubscribed: (u, c) => target().devicesSubscribed(u, c),
    remove: (id) => target().remove(id),
  };
}

/** The message log, forwarding every call (and every argument) to whichever log is installed now. */
export function messagesVia(target: () => MessageLog): MessageLog {
  return {
    append: (...args) => target().append(...args),
    lastSeq: (...args) => target().lastSeq(...args),
    get: (...args) => target().get(...args),
    seqsOf: (...args) => target().seqsOf(...args),
    page: (...args) => target().page(...args),
    change: (...args) => target().change(...args),
    latest: (...args) => target().latest(...args),
    countByOthers: (...args) => target().countByOthers(...args),
  };
}

/** The bench backend's seams (one bench backend runs per process). */
export const benchSeams = new BenchSeams();

export interface Patch {
  name: string;
  apply(services: Seamed, counter: { hits: number }): Partial<Seamed>;
}

export const SDK_POSTER = 'SDK client poster (before)';
export const RECIPIENTS_CACHE = 'recipients cache (2 s)';
/** How long the typing what-if keeps a conversation's connections. */
const RECIPIENTS_TTL_MS = 2_000;

/**
 * For typing only: a container keeps a conversation's connection list for a moment (typing frames come in bursts;
 * a device that connected within the TTL misses an indicator, a gone one is pruned on its 410 as today).
 */
export function recipientsCache(): Patch {
  const lists = new Map<string, { at: number; list: Promise<Subscription[]> }>();
  return {
    name: RECIPIENTS_CACHE,
    apply: (services, counter) => {
      const registry = services.registry;
      return {
        registry: {
          ...registryVia(() => registry),
          listByConversation: (conversationId) => {
            const hit = lists.get(conversationId);
            if (hit !== undefined && Date.now() - hit.at < RECIPIENTS_TTL_MS) {
              counter.hits += 1;
              return hit.list;
            }
            const list = registry.listByConversation(conversationId);
            lists.set(conversationId, { at: Date.now(), list });
            list.catch(() => lists.delete(conversationId));
            return list;
          },
          remove: async (id) => {
            lists.clear();
            return await registry.remove(id);
          },
        },
      };
    },
  };
}

/**
 * The handlers' previous Management API poster: the SDK client (keep-alive handler) calling PostToConnection,
 * replaced by the SigV4-signed poster in lambdas/adapters/management-poster.ts. Kept as a what-if so every run
 * shows what that change is worth.
 */
export function sdkClientPoster(endpoint: string, maxSockets: number): { poster: ConnectionPoster; destroy(): void } {
  const client = new ApiGatewayManagementApiClient({
    endpoint,
    region: 'us-east-1',
    credentials: LOCAL_CREDENTIALS,
    maxAttempts: 3,
    requestHandler: new NodeHttpHandler({ httpAgent: new Agent({ keepAlive: true, maxSockets }) }),
  });
  const poster: ConnectionPoster = {
    post: async (connectionId, data) => {
      try {
        await client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: Buffer.from(data, 'utf8') }));
        return 'delivered';
      } catch (error) {
        return error instanceof Error && error.name === 'GoneException' ? 'gone' : 'failed';
      }
    },
  };
  return { poster, destroy: () => client.destroy() };
}

/** The variants measured on the real path next to the handlers as they are. */
export function patches(maxSockets: number): { list: Patch[]; destroy(): void } {
  const posters = new Map<string, ReturnType<typeof sdkClientPoster>>();
  const posterFor = (endpoint: string): ConnectionPoster => {
    let entry = posters.get(endpoint);
    if (entry === undefined) {
      entry = sdkClientPoster(endpoint, maxSockets);
      posters.set(endpoint, entry);
    }
    return entry.poster;
  };
  const sdk: Patch = {
    name: SDK_POSTER,
    apply: (_services, counter) => ({
      posterFor: (endpoint) => {
        counter.hits += 1;
        return posterFor(endpoint);
      },
    }),
  };
  return {
    list: [sdk],
    destroy: () => {
      for (const entry of posters.values()) entry.destroy();
      posters.clear();
    },
  };
}

/** Runs `work` with `patch` in place of the bench backend's real services. */
export function withPatch<T>(patch: Patch, work: () => Promise<T>): Promise<{ result: T; applied: boolean }> {
  return benchSeams.with(patch, work);
}

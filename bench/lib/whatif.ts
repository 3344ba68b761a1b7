import { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent } from 'node:http';
import { getContext, type AppContext } from '../../lambdas/context.js';
import type { ConnectionPoster, ConnectionRecord } from '../../lambdas/ports.js';
import { LOCAL_CREDENTIALS } from './backend.js';

/**
 * What-ifs on the real path: this process runs the handlers, so their context (one per container, as in
 * Lambda) can have one service swapped for a prototype while a measurement runs, then put back.
 */
export interface Patch {
  name: string;
  apply(context: AppContext, counter: { hits: number }): Partial<AppContext>;
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
  const lists = new Map<string, { at: number; list: Promise<ConnectionRecord[]> }>();
  return {
    name: RECIPIENTS_CACHE,
    apply: (context, counter) => {
      const registry = context.registry;
      return {
        registry: {
          register: (record) => registry.register(record),
          get: (id) => registry.get(id),
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
            await registry.remove(id);
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
    apply: (_context, counter) => ({
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

/** Runs `work` with `patch` applied to the handlers' context; reports whether the handlers really used it. */
export async function withPatch<T>(patch: Patch, work: () => Promise<T>): Promise<{ result: T; applied: boolean }> {
  const context = await getContext();
  const original: Partial<AppContext> = { posterFor: context.posterFor, registry: context.registry, store: context.store };
  const counter = { hits: 0 };
  Object.assign(context, patch.apply(context, counter));
  try {
    const result = await work();
    return { result, applied: counter.hits > 0 };
  } finally {
    Object.assign(context, original);
  }
}

import { SignedManagementPoster } from '../../lambdas/adapters/signed-poster.js';
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

export const SIGNED_POSTER = 'SigV4 keep-alive poster';
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

/** The prototypes worth measuring on the real path (today: the Management API poster of lambdas/adapters/signed-poster.ts). */
export function patches(maxSockets: number): { list: Patch[]; destroy(): void } {
  const posters = new Map<string, SignedManagementPoster>();
  const posterFor = (endpoint: string): ConnectionPoster => {
    let poster = posters.get(endpoint);
    if (poster === undefined) {
      poster = new SignedManagementPoster({ endpoint, region: 'us-east-1', credentials: LOCAL_CREDENTIALS, maxSockets, onFailure: () => undefined });
      posters.set(endpoint, poster);
    }
    return poster;
  };
  const signed: Patch = {
    name: SIGNED_POSTER,
    apply: (_context, counter) => ({
      posterFor: (endpoint) => {
        counter.hits += 1;
        return posterFor(endpoint);
      },
    }),
  };
  return {
    list: [signed],
    destroy: () => {
      for (const poster of posters.values()) poster.destroy();
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

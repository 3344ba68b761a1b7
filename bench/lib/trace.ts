import type { ConnectionPoster, ConnectionRegistry, MessageStore } from '../../lambdas/ports.js';
import { now } from './limit.js';
import type { Patch, Seamed } from './whatif.js';

export interface Span {
  name: 'registry.get' | 'registry.query' | 'store.admit' | 'store.append' | 'post';
  start: number;
  end: number;
}

/** Times the handlers' calls to their services (wrapping whatever services the context has now). */
export function tracingPatch(spans: Span[]): Patch {
  const timed = async <T>(name: Span['name'], call: () => Promise<T>): Promise<T> => {
    const start = now();
    try {
      return await call();
    } finally {
      spans.push({ name, start, end: now() });
    }
  };
  return {
    name: 'trace',
    apply: (context: Seamed, counter) => {
      const registry: ConnectionRegistry = context.registry;
      const store: MessageStore = context.store;
      const posterFor = context.posterFor;
      counter.hits += 1;
      return {
        registry: {
          register: (record) => registry.register(record),
          get: (id) => timed('registry.get', () => registry.get(id)),
          listByConversation: (id) => timed('registry.query', () => registry.listByConversation(id)),
          remove: (id) => registry.remove(id),
        },
        store: {
          admit: (conversationId, limit) => timed('store.admit', () => store.admit(conversationId, limit)),
          registerDevice: (conversationId, device) => store.registerDevice(conversationId, device),
          forgetUser: (conversationId, userId) => store.forgetUser(conversationId, userId),
          append: (message, limit) => timed('store.append', () => store.append(message, limit)),
          ack: (conversationId, device, ids, limit) => store.ack(conversationId, device, ids, limit),
          pending: (conversationId, device, page, limit) => store.pending(conversationId, device, page, limit),
          load: (conversationId, messageId) => store.load(conversationId, messageId),
        },
        posterFor: (endpoint: string): ConnectionPoster => {
          const poster = posterFor(endpoint);
          return { post: (id, data) => timed('post', () => poster.post(id, data)) };
        },
      };
    },
  };
}

/** Composes patches: the second wraps what the first put in place. */
export function compose(first: Patch, second: Patch): Patch {
  return {
    name: `${first.name} + ${second.name}`,
    apply: (context, counter) => {
      const firstPart = first.apply(context, counter);
      return { ...firstPart, ...second.apply({ ...context, ...firstPart }, counter) };
    },
  };
}

import type { ConnectionPoster } from '../../lambdas/ports.js';
import { now } from './limit.js';
import { registryVia, type Patch, type Seamed } from './whatif.js';

export interface Span {
  name: 'registry.get' | 'registry.query' | 'limiter.admit' | 'seqCache.get' | 'messages.append' | 'post';
  start: number;
  end: number;
}

/** Times the handlers' calls to their services (wrapping whatever services are installed now). */
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
    apply: (services: Seamed, counter) => {
      const { registry, messages, limiter, seqCache, posterFor } = services;
      counter.hits += 1;
      return {
        registry: {
          ...registryVia(() => registry),
          connection: (id) => timed('registry.get', () => registry.connection(id)),
          subscription: (id, c) => timed('registry.get', () => registry.subscription(id, c)),
          listByConversation: (id) => timed('registry.query', () => registry.listByConversation(id)),
        },
        messages: {
          append: (draft, seal, hint) => timed('messages.append', () => messages.append(draft, seal, hint)),
          lastSeq: (c) => messages.lastSeq(c),
          get: (c, seq) => messages.get(c, seq),
          seqsOf: (c, ids) => messages.seqsOf(c, ids),
          page: (c, range) => messages.page(c, range),
          latest: (c) => messages.latest(c),
          countByOthers: (c, after, userId) => messages.countByOthers(c, after, userId),
        },
        limiter: { admit: (buckets) => timed('limiter.admit', () => limiter.admit(buckets)) },
        seqCache: {
          get: (c) => timed('seqCache.get', () => seqCache.get(c)),
          raise: (c, seq) => seqCache.raise(c, seq),
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
    apply: (services, counter) => {
      const firstPart = first.apply(services, counter);
      return { ...firstPart, ...second.apply({ ...services, ...firstPart }, counter) };
    },
  };
}

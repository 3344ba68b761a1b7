import { randomUUID } from 'node:crypto';
import { DynamoMembershipStore } from '../../lambdas/adapters/dynamo-members.js';
import { DynamoMessageLog } from '../../lambdas/adapters/dynamo-message-log.js';
import { messageEvent, type ConnectionFacts } from '../../local/gateway/events.js';
import { startCountedBench, type CountedBench } from '../lib/counted-bench.js';
import type { DynamoCounts } from '../lib/dynamo-proxy.js';
import { pollUntil } from '../lib/limit.js';
import type { Progress } from '../lib/progress.js';
import type { ServiceProcess } from '../lib/services.js';
import { SocketSet } from '../lib/sockets.js';
import { median, percentile, round } from '../lib/stats.js';
import { benchSeams } from '../lib/whatif.js';
import { invoker } from './ops.js';

/** What the `reads` scenario measures (BENCH_ONLY=reads): the conversations list and read receipts. */
export interface ReadsSettings {
  /** Conversations the reader is a member of (one getConversations page holds them all). */
  conversations: number;
  /** Messages in each: every fourth the reader's own, the rest by the other member. */
  messages: number;
  /** Counted events of each kind (after one warm-up). */
  repeats: number;
  /**
   * Then this many more messages in each conversation, all read (every read position moves up by as much, so what
   * is unread stays the same), and getConversations again: its cost must not grow with the conversations' length.
   * A multiple of 4 keeps the mix of senders in the unread range. 0 = not measured.
   */
  longerBy: number;
}

export function readsSettings(quick: boolean): ReadsSettings {
  return { conversations: 50, messages: 20, repeats: quick ? 5 : 15, longerBy: quick ? 0 : 180 };
}

export interface ReadsRow {
  label: string;
  samples: number;
  p50Ms: number;
  p99Ms: number;
  dynamo: DynamoCounts;
  redisRoundTrips: number;
  posts: number;
  /** True when every sample made the same calls. */
  steady: boolean;
  note: string;
}

export interface ReadsResult {
  settings: ReadsSettings;
  /** Conversations with something unread for the reader (the others are read to the end). */
  unreadConversations: number;
  rows: ReadsRow[];
}

/** A chat-sized sealed body (as `v2.<key>.…` of a 120-character message), for realistic item sizes. */
const SEALED = `v2.bench.${'x'.repeat(200)}`;

/**
 * A reader in `conversations` conversations of `messages` messages each, half of them read to the end and half
 * read to the middle: one `getConversations` of them all (DynamoDB calls, RRU, Redis round trips, latency), and
 * `markRead` that moves the position (posted to the reader's other device and the other member) and one that
 * does not. Handlers invoked directly on warm containers, DynamoDB counted by a proxy, Redis by MONITOR.
 */
export async function runReads(settings: ReadsSettings, services: ServiceProcess, progress: Progress): Promise<ReadsResult> {
  let counting: CountedBench | undefined;
  const sockets = new SocketSet();
  try {
    counting = await startCountedBench('reads', services);
    const { bench: started, counted } = counting;
    const reader = randomUUID();
    const other = randomUUID();
    const members = new DynamoMembershipStore(started.db, started.backend.tables.members);
    const log = new DynamoMessageLog(started.db, { messages: started.backend.tables.messages, idempotency: started.backend.tables.idempotency }, { now: () => Date.now() });
    progress.start(`reads: ${settings.conversations} conversations of ${settings.messages} messages`, settings.conversations, 'conversations');
    const conversations: string[] = [];
    let unreadConversations = 0;
    for (let c = 0; c < settings.conversations; c += 1) {
      const conversationId = randomUUID();
      conversations.push(conversationId);
      await started.addMembers(conversationId, [reader, other]);
      for (let seq = 1; seq <= settings.messages; seq += 1) {
        const senderId = seq % 4 === 0 ? reader : other;
        const draft = { conversationId, senderId, senderDevice: 'phone', clientMessageId: randomUUID(), messageId: randomUUID(), sentAt: Date.now() };
        await log.append(draft, () => SEALED, seq - 1);
      }
      // The first conversation is where markRead is measured: read nothing of it yet.
      const readTo = c === 0 ? 0 : c % 2 === 0 ? settings.messages : settings.messages / 2;
      if (readTo > 0) await members.raiseReadSeq(conversationId, reader, readTo);
      if (readTo < settings.messages) unreadConversations += 1;
      progress.update(c + 1);
    }
    progress.finish();
    // As sendMessage leaves it: the seq cache knows the first conversation's last seq (markRead clamps against it).
    await benchSeams.services.seqCache.raise(conversations[0] ?? '', settings.messages);

    // The reader's phone and tablet and the other member's laptop, live in the first conversation.
    const first = conversations[0] ?? '';
    await sockets.open(
      await Promise.all([
        started.connectUrl(first, reader, 'phone'),
        started.connectUrl(first, reader, 'tablet'),
        started.connectUrl(first, other, 'laptop'),
      ]),
      3,
    );
    await pollUntil(async () => (await started.listConnections(first)).length === 3, 10_000, 20);
    const phone = (await started.listConnections(first)).find((row) => row.userId === reader && row.deviceId === 'phone');
    if (phone === undefined) throw new Error('the reader\'s phone is not connected');
    const facts: ConnectionFacts = {
      connectionId: phone.connectionId,
      connectedAt: Date.now(),
      identity: { sourceIp: '127.0.0.1' },
      domainName: `127.0.0.1:${started.backend.port}`,
      stage: started.backend.stage,
      apiId: 'readsbench',
    };
    const frame = (route: string, tag: string, fields: Record<string, unknown>) =>
      messageEvent(facts, route, `reads-${route}-${tag}`, `reads-${tag}`, Date.now(), JSON.stringify({ action: route, ...fields }));

    const rows: ReadsRow[] = [];
    const measure = async (label: string, route: string, fields: (i: number) => Record<string, unknown>, note: string) => {
      progress.start(`reads ${label}`, settings.repeats, 'events');
      const samples: { ms: number; dynamo: DynamoCounts; redis: number; posts: number; body: string }[] = [];
      for (let i = 0; i < settings.repeats; i += 1) {
        const sample = await counted(() => invoker(started, route)(frame(route, `${label}-${i}`, fields(i))));
        const body = typeof sample.result === 'object' && sample.result !== null && 'body' in sample.result && typeof sample.result.body === 'string' ? sample.result.body : '';
        samples.push({ ms: sample.durationMs, dynamo: sample.dynamo, redis: sample.redis.roundTrips, posts: sample.posts, body });
        progress.update(i + 1);
      }
      const head = samples[0];
      if (head === undefined) return;
      const signature = (s: (typeof samples)[number]) => JSON.stringify([s.dynamo.calls, s.redis, s.posts]);
      const row: ReadsRow = {
        label,
        samples: samples.length,
        p50Ms: round(median(samples.map((s) => s.ms)), 2),
        p99Ms: round(percentile(samples.map((s) => s.ms), 99), 2),
        dynamo: head.dynamo,
        redisRoundTrips: head.redis,
        posts: head.posts,
        steady: samples.every((s) => signature(s) === signature(head)),
        note: `${note}; answer ${head.body.length} B`,
      };
      rows.push(row);
      progress.finish(`${Object.entries(row.dynamo.calls).map(([op, n]) => `${n} ${op}`).join(', ')}; ${row.dynamo.readUnits} RRU; ${row.redisRoundTrips} Redis; p50 ${row.p50Ms} ms`);
    };

    // Warm: each function's services are built and the phone's record and binding are known to the container.
    await invoker(started, 'getConversations')(frame('getConversations', 'warm', { limit: settings.conversations }));
    await invoker(started, 'markRead')(frame('markRead', 'warm', { conversationId: first, seq: 0 }));
    await measure('getConversations', 'getConversations', () => ({ limit: settings.conversations }), `${settings.conversations} conversations, ${unreadConversations} with unread`);
    await measure('markRead (moves)', 'markRead', (i) => ({ conversationId: first, seq: i + 1 }), 'one seq further each time; read posted to 2 connections');
    await measure('markRead (does not move)', 'markRead', () => ({ conversationId: first, seq: 1 }), 'a seq below the stored one');
    if (settings.longerBy > 0) {
      progress.start(`reads: ${settings.longerBy} more read messages in each conversation`, settings.conversations, 'conversations');
      for (const [c, conversationId] of conversations.entries()) {
        const before = (await members.get(conversationId, reader))?.readSeq ?? 0;
        const last = await log.lastSeq(conversationId);
        for (let seq = last + 1; seq <= last + settings.longerBy; seq += 1) {
          const senderId = seq % 4 === 0 ? reader : other;
          const draft = { conversationId, senderId, senderDevice: 'phone', clientMessageId: randomUUID(), messageId: randomUUID(), sentAt: Date.now() };
          await log.append(draft, () => SEALED, seq - 1);
        }
        await members.raiseReadSeq(conversationId, reader, before + settings.longerBy);
        progress.update(c + 1);
      }
      progress.finish();
      await measure(
        `getConversations, ${settings.messages + settings.longerBy} messages each`,
        'getConversations',
        () => ({ limit: settings.conversations }),
        `the same unread, ${settings.longerBy} more read messages in each conversation`,
      );
    }
    return { settings, unreadConversations, rows };
  } finally {
    await sockets.close();
    await counting?.close();
  }
}

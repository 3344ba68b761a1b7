import { vi } from 'vitest';
import { MemoryPresence } from '../../lambdas/adapters/memory-presence.js';
import { MessageCipher } from '../../lambdas/encryption.js';
import { changeEntry } from './fake-log-changes.js';
import { RecordingMetrics } from './recording-metrics.js';
import type {
  AppendOutcome,
  ConnectionRecord,
  ConversationSizeSettings,
  DeliverySettings,
  Device,
  DevicePosition,
  FanoutJob,
  HandshakeSettings,
  LogChange,
  LogEntry,
  LogPage,
  LogTop,
  Membership,
  MembershipPage,
  MessageDraft,
  NotifyJob,
  PostOutcome,
  PushCandidate,
  PushNotification,
  PushResult,
  StoredPushTarget,
  RateBucket,
  RateSettings,
  ReadMark,
  RemovedConnection,
  SealFor,
  Services,
  Subscription,
  SubscriptionSettings,
  TypingSettings,
  TypingState,
} from '../../lambdas/ports.js';

/** The master key of every fake's sealer (tests that need another keyring build their own cipher). */
/** The stage endpoint the fake fan-out worker posts to. */
export const FAKE_ENDPOINT = 'https://api.example/dev';
export const FAKE_MASTER_KEY = Buffer.from('domain-test-master-key-0123456789abcdef', 'utf8');

type PageRange = { afterSeq?: number; beforeSeq?: number; limit: number; maxBytes: number; newestFirst: boolean };

const positionKey = (conversationId: string, device: Device) => `${conversationId}\n${device.userId}\n${device.deviceId}`;

/**
 * Services for domain tests: every port a vi.fn with a plain default, so each test states only what it
 * changes. The message log, the device positions and the seq cache are small in-memory fakes with the ports'
 * semantics (seq = last + 1, idempotent on sender + clientMessageId, versioned saves), not twins: the adapters
 * have their own contract tests.
 */
export function fakeServices(
  overrides: Partial<RateSettings & DeliverySettings & HandshakeSettings & SubscriptionSettings & ConversationSizeSettings & TypingSettings> = {},
) {
  /** Open connections (their records). */
  const records: ConnectionRecord[] = [];
  /** Subscriptions: one per (connection, conversation). */
  const connections: Subscription[] = [];
  const outcomes = new Map<string, PostOutcome>();
  const posted: { endpoint: string; connectionId: string; data: string }[] = [];
  /** `start <connectionId>` / `end <connectionId>` for every post, in the order they happened. */
  const timeline: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const logs: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  const logAt = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    logs.push({ level, message, ...(fields === undefined ? {} : { fields }) });
  };
  let nextId = 0;

  /** The message log: every entry of every conversation, in append order. */
  const entries: LogEntry[] = [];
  const inConversation = (conversationId: string) => entries.filter((e) => e.conversationId === conversationId);
  const lastSeqIn = (conversationId: string) => inConversation(conversationId).reduce((top, e) => Math.max(top, e.seq), 0);
  const appendEntry = (draft: MessageDraft, seal: SealFor): AppendOutcome => {
    const earlier = entries.find(
      (e) => e.conversationId === draft.conversationId && e.senderId === draft.senderId && e.clientMessageId === draft.clientMessageId,
    );
    if (earlier !== undefined) return { status: 'duplicate', messageId: earlier.messageId, seq: earlier.seq, sentAt: earlier.sentAt };
    const fields = { ...draft, seq: lastSeqIn(draft.conversationId) + 1 };
    const entry: LogEntry = { ...fields, sealed: seal(fields) };
    entries.push(entry);
    return { status: 'stored', entry, completed: false };
  };

  const positions = new Map<string, DevicePosition>();
  const seqCache = new Map<string, number>();
  /** Memberships `join` made: what `listByUser` pages (`get` answers for anyone unless a test says otherwise). */
  const memberships: Membership[] = [];
  /** Read positions `raiseReadSeq` stored, by conversation and user. */
  const readSeqs = new Map<string, number>();
  const memberKey = (conversationId: string, userId: string) => `${conversationId}\n${userId}`;
  const withReadSeq = (m: Membership): Membership => ({ ...m, readSeq: readSeqs.get(memberKey(m.conversationId, m.userId)) ?? m.readSeq ?? 0 });

  const services = {
    limits: {
      ratePerSecond: overrides.ratePerSecond ?? 20,
      rateBurst: overrides.rateBurst ?? 40,
      userRatePerSecond: overrides.userRatePerSecond ?? 40,
      userRateBurst: overrides.userRateBurst ?? 80,
    },
    subscriptions: { maxSubscriptionsPerConnection: overrides.maxSubscriptionsPerConnection ?? 100 },
    delivery: {
      fanoutThreshold: overrides.fanoutThreshold ?? 100,
      fanoutBatchSize: overrides.fanoutBatchSize ?? 100,
      postConcurrency: overrides.postConcurrency ?? 4,
      pruneGraceMs: overrides.pruneGraceMs ?? 30_000,
    },
    conversationSize: { largeConversationMembers: overrides.largeConversationMembers ?? 100 },
    typing: { coalesceMs: overrides.coalesceMs ?? 2000, expiresMs: overrides.expiresMs ?? 6000 },
    /** Lets every frame out; tests of coalescing give it a real gate's behaviour. */
    typingGate: { shouldSend: vi.fn(async (_conversationId: string, _userId: string, _state: TypingState, _now: number) => true) },
    handshake: {
      connectionTtlSeconds: overrides.connectionTtlSeconds ?? 3600,
      originAllowList: overrides.originAllowList ?? [],
      maxConnectionsPerUser: overrides.maxConnectionsPerUser ?? 10,
    },
    registry: {
      open: vi.fn(async (record: ConnectionRecord, maxPerUser: number) => {
        if (records.filter((r) => r.userId === record.userId).length >= maxPerUser) return false;
        records.push(record);
        return true;
      }),
      connection: vi.fn(async (id: string) => records.find((c) => c.connectionId === id)),
      subscription: vi.fn(async (id: string, conversationId: string) =>
        connections.find((c) => c.connectionId === id && c.conversationId === conversationId),
      ),
      subscriptionsOf: vi.fn(async (id: string) => connections.filter((c) => c.connectionId === id).map((c) => c.conversationId)),
      subscribe: vi.fn(async (record: ConnectionRecord, conversationIds: readonly string[], _now: number) => {
        for (const conversationId of conversationIds) {
          if (!connections.some((c) => c.connectionId === record.connectionId && c.conversationId === conversationId)) {
            connections.push({ ...record, conversationId });
          }
        }
      }),
      unsubscribe: vi.fn(async (id: string, conversationIds: readonly string[]) => {
        for (let i = connections.length - 1; i >= 0; i -= 1) {
          const c = connections[i];
          if (c !== undefined && c.connectionId === id && conversationIds.includes(c.conversationId)) connections.splice(i, 1);
        }
      }),
      listByConversation: vi.fn(async (conversationId: string) => connections.filter((c) => c.conversationId === conversationId)),
      devicesSubscribed: vi.fn(
        async (userId: string, conversationId: string) =>
          new Set(connections.filter((c) => c.userId === userId && c.conversationId === conversationId).map((c) => c.deviceId)),
      ),
      remove: vi.fn(async (id: string): Promise<RemovedConnection | undefined> => {
        const userId = [...records, ...connections].find((c) => c.connectionId === id)?.userId;
        const conversationIds = connections.filter((c) => c.connectionId === id).map((c) => c.conversationId);
        for (const list of [records, connections]) {
          for (let i = list.length - 1; i >= 0; i -= 1) if (list[i]?.connectionId === id) list.splice(i, 1);
        }
        return userId === undefined ? undefined : { userId, conversationIds };
      }),
    },
    roster: {
      isMember: vi.fn(async (_conversationId: string, _userId: string) => true),
      membersAmong: vi.fn(async (_conversationId: string, userIds: readonly string[]) => new Set(userIds)),
      count: vi.fn(async (_conversationId: string) => 2),
    },
    members: {
      get: vi.fn(async (conversationId: string, userId: string): Promise<Membership | undefined> => ({ conversationId, userId, sinceSeq: 0 })),
      getMany: vi.fn(async (userId: string, conversationIds: readonly string[]) => {
        const found = new Map<string, Membership>();
        for (const conversationId of conversationIds) {
          const membership = await services.members.get(conversationId, userId);
          if (membership !== undefined) found.set(conversationId, membership);
        }
        return found;
      }),
      list: vi.fn(async (_conversationId: string): Promise<string[]> => []),
      isMember: vi.fn(async (_conversationId: string, _userId: string) => true),
      add: vi.fn(async (_conversationId: string, _userId: string, _sinceSeq: number) => undefined),
      remove: vi.fn(async (_conversationId: string, _userId: string) => undefined),
      listByUser: vi.fn(async (userId: string, page: { limit: number; after?: string }): Promise<MembershipPage> => {
        const after = page.after;
        const mine = memberships
          .filter((m) => m.userId === userId && (after === undefined || m.conversationId > after))
          .sort((a, b) => (a.conversationId < b.conversationId ? -1 : 1))
          .map(withReadSeq);
        const listed = mine.slice(0, page.limit);
        const last = listed[listed.length - 1];
        return mine.length > page.limit && last !== undefined ? { memberships: listed, nextAfter: last.conversationId } : { memberships: listed };
      }),
      raiseReadSeq: vi.fn(async (conversationId: string, userId: string, seq: number): Promise<ReadMark | undefined> => {
        const membership = await services.members.get(conversationId, userId);
        if (membership === undefined) return undefined;
        const stored = withReadSeq(membership).readSeq ?? 0;
        if (seq <= stored) return { readSeq: stored, moved: false };
        readSeqs.set(memberKey(conversationId, userId), seq);
        return { readSeq: seq, moved: true };
      }),
    },
    messages: {
      append: vi.fn(async (draft: MessageDraft, seal: SealFor, _lastSeqHint?: number): Promise<AppendOutcome> => appendEntry(draft, seal)),
      lastSeq: vi.fn(async (conversationId: string) => lastSeqIn(conversationId)),
      get: vi.fn(async (conversationId: string, seq: number) => entries.find((e) => e.conversationId === conversationId && e.seq === seq)),
      seqsOf: vi.fn(async (conversationId: string, messageIds: readonly string[]) => {
        const seqs = new Map<string, number>();
        for (const entry of inConversation(conversationId)) if (messageIds.includes(entry.messageId)) seqs.set(entry.messageId, entry.seq);
        return seqs;
      }),
      page: vi.fn(async (conversationId: string, range: PageRange): Promise<LogPage> => {
        const low = range.afterSeq ?? 0;
        const high = range.beforeSeq ?? Number.POSITIVE_INFINITY;
        const inRange = inConversation(conversationId)
          .filter((e) => e.seq > low && e.seq < high)
          .sort((a, b) => (range.newestFirst ? b.seq - a.seq : a.seq - b.seq));
        const taken: LogEntry[] = [];
        let bytes = 0;
        for (const entry of inRange) {
          // The first entry always goes in: a page is never empty while entries remain.
          if (taken.length >= range.limit || (taken.length > 0 && bytes + entry.sealed.length > range.maxBytes)) break;
          taken.push(entry);
          bytes += entry.sealed.length;
        }
        const hasMore = taken.length < inRange.length;
        return { entries: range.newestFirst ? taken.reverse() : taken, hasMore };
      }),
      change: vi.fn(async (conversationId: string, seq: number, by: { messageId: string; senderId: string }, change: LogChange) =>
        changeEntry(entries, conversationId, seq, by, change),
      ),
      latest: vi.fn(async (conversationId: string): Promise<LogTop> => {
        const lastSeq = lastSeqIn(conversationId);
        const top = inConversation(conversationId).find((e) => e.seq === lastSeq);
        return top === undefined ? { lastSeq } : { lastSeq, lastMessageAt: top.sentAt };
      }),
      countByOthers: vi.fn(async (conversationId: string, afterSeq: number, userId: string) =>
        inConversation(conversationId).filter((e) => e.seq > afterSeq && e.senderId !== userId && e.deleted !== true).length,
      ),
    },
    positions: {
      register: vi.fn(async (conversationId: string, device: Device, startAfterSeq: number, now: number): Promise<DevicePosition> => {
        const key = positionKey(conversationId, device);
        const known = positions.get(key);
        const position: DevicePosition = known === undefined
          ? { conversationId, userId: device.userId, deviceId: device.deviceId, ackedThrough: startAfterSeq, acked: [], lastSeenAt: now, version: 1 }
          : { ...known, lastSeenAt: now };
        positions.set(key, position);
        return position;
      }),
      get: vi.fn(async (conversationId: string, device: Device) => positions.get(positionKey(conversationId, device))),
      save: vi.fn(async (next: DevicePosition) => {
        const key = positionKey(next.conversationId, next);
        const stored = positions.get(key);
        if ((stored?.version ?? 0) !== next.version - 1) return false;
        positions.set(key, { ...next, acked: [...next.acked] });
        return true;
      }),
      forgetUser: vi.fn(async (conversationId: string, userId: string) => {
        for (const [key, position] of positions) {
          if (position.conversationId === conversationId && position.userId === userId) positions.delete(key);
        }
      }),
    },
    limiter: { admit: vi.fn(async (_buckets: readonly RateBucket[]) => true) },
    fanoutBudget: {
      waitMs: vi.fn(async (_conversationId: string, _senderId: string) => 0),
      spend: vi.fn(async (_conversationId: string, _senderId: string, _posts: number) => undefined),
    },
    seqCache: {
      get: vi.fn(async (conversationId: string) => seqCache.get(conversationId)),
      raise: vi.fn(async (conversationId: string, seq: number) => {
        seqCache.set(conversationId, Math.max(seqCache.get(conversationId) ?? 0, seq));
      }),
    },
    fanout: { enqueue: vi.fn(async (_jobs: readonly FanoutJob[]) => undefined) },
    sealer: new MessageCipher([FAKE_MASTER_KEY]),
    clock: { now: () => 1_700_000_000_000 },
    log: { debug: logAt('debug'), info: logAt('info'), warn: logAt('warn'), error: logAt('error') },
    auth: { verify: vi.fn(async (token: string) => (token === 'good' ? { ok: true as const, userId: 'alice', expiresAt: 1_700_000_000_000 + 3_600_000 } : { ok: false as const, reason: 'invalid' as const })) },
    posterFor: vi.fn((endpoint: string) => ({
      post: async (connectionId: string, data: string): Promise<PostOutcome> => {
        timeline.push(`start ${connectionId}`);
        inFlight += 1;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((resolve) => setImmediate(resolve));
        inFlight -= 1;
        posted.push({ endpoint, connectionId, data });
        timeline.push(`end ${connectionId}`);
        return outcomes.get(connectionId) ?? 'delivered';
      },
    })),
    newMessageId: () => {
      nextId += 1;
      return `msg-${nextId}`;
    },
    /** The in-process twin (contract-tested like the Redis one), with the default timings. */
    presence: new MemoryPresence({ ttlMs: 60_000, graceMs: 15_000, occupancyIntervalMs: 5_000 }),
    metrics: new RecordingMetrics(),
    notify: { enqueue: vi.fn(async (_job: NotifyJob) => undefined) },
    pushTargets: {
      put: vi.fn(async (_stored: StoredPushTarget, _max: number) => ({ evicted: [] as string[] })),
      remove: vi.fn(async (_userId: string, _deviceId: string) => false),
      removeIf: vi.fn(async (_stored: StoredPushTarget) => undefined),
      ofUser: vi.fn(async (_userId: string) => [] as StoredPushTarget[]),
      get: vi.fn(async (_userId: string, _deviceId: string): Promise<StoredPushTarget | undefined> => undefined),
      setEndpointArn: vi.fn(async (_stored: StoredPushTarget, _arn: string) => undefined),
    },
    pushMarks: {
      candidates: vi.fn(async (_conversationId: string) => [] as PushCandidate[]),
      mark: vi.fn(async (_position: DevicePosition, _seq: number, _at: number) => true),
      unmark: vi.fn(async (_position: DevicePosition, _at: number) => undefined),
      setPushable: vi.fn(async (_conversationId: string, _device: Device, _pushable: boolean) => undefined),
    },
    pusher: { send: vi.fn(async (_stored: StoredPushTarget, _n: PushNotification): Promise<PushResult> => ({ outcome: 'delivered' })) },
    push: { maxTargetsPerUser: 10, webAllowedHosts: [], allowLoopback: false, preview: false, concurrency: 4, apns: false, fcm: false },
  } satisfies Services;

  return {
    /** With the fan-out worker's own stage endpoint (it posts nowhere else). */
    services: { ...services, endpoint: FAKE_ENDPOINT },
    records,
    connections,
    outcomes,
    posted,
    timeline,
    logs,
    /** The message log's entries (all conversations), in append order. */
    entries,
    /** The stored device positions, keyed by conversation, user and device. */
    positions,
    /** Makes the user a member `listByUser` lists (with a read position, when given). */
    join(conversationId: string, userId: string, readSeq?: number): void {
      memberships.push({ conversationId, userId, sinceSeq: 0, ...(readSeq === undefined ? {} : { readSeq }) });
    },
    /** The read position `raiseReadSeq` stored for a user, or undefined. */
    readSeqOf(conversationId: string, userId: string): number | undefined {
      return readSeqs.get(memberKey(conversationId, userId));
    },
    maxInFlight: () => maxInFlight,
    /** A live connection; its device gets a position at the conversation's current last seq (as $connect does). */
    connect(connectionId: string, userId: string, deviceId: string, conversationId = 'conv'): Subscription {
      let connection = records.find((r) => r.connectionId === connectionId);
      if (connection === undefined) {
        connection = { connectionId, userId, deviceId, connectedAt: 0, expiresAt: 2_000_000_000 };
        records.push(connection);
      }
      const record = { ...connection, conversationId };
      connections.push(record);
      const key = positionKey(conversationId, { userId, deviceId });
      if (!positions.has(key)) {
        positions.set(key, { conversationId, userId, deviceId, ackedThrough: lastSeqIn(conversationId), acked: [], lastSeenAt: 0, version: 1 });
      }
      return record;
    },
    /** Writes a message straight into the log (sealed by the fake's sealer), bypassing the spies. */
    addMessage(message: { senderId: string; senderDevice: string; body: string; conversationId?: string; clientMessageId?: string }): LogEntry {
      nextId += 1;
      const conversationId = message.conversationId ?? 'conv';
      const outcome = appendEntry(
        {
          conversationId,
          senderId: message.senderId,
          senderDevice: message.senderDevice,
          clientMessageId: message.clientMessageId ?? `client-${nextId}`,
          messageId: `seeded-${nextId}`,
          sentAt: 1_600_000_000_000 + nextId,
        },
        (fields) => services.sealer.seal(fields, message.body),
      );
      if (outcome.status !== 'stored') throw new RangeError('addMessage: that clientMessageId is already in the log');
      return outcome.entry;
    },
    /** The stored position of a device, or undefined. */
    positionOf(binding: { userId: string; deviceId: string; conversationId?: string }): DevicePosition | undefined {
      return positions.get(positionKey(binding.conversationId ?? 'conv', binding));
    },
    /** Sets a device's position (by default keeping its version, or 1 for a new one). */
    setPosition(binding: { userId: string; deviceId: string; conversationId?: string }, ackedThrough: number, acked: number[] = [], version?: number) {
      const conversationId = binding.conversationId ?? 'conv';
      const key = positionKey(conversationId, binding);
      version ??= positions.get(key)?.version ?? 1;
      positions.set(key, { conversationId, userId: binding.userId, deviceId: binding.deviceId, ackedThrough, acked, lastSeenAt: 0, version });
    },
  };
}

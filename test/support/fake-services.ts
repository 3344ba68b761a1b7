import { vi } from 'vitest';
import { MessageCipher } from '../../lambdas/encryption.js';
import type { AppendResult, ConnectionRecord, DeliverySettings, FanoutJob, HandshakeSettings, PendingResult, PostOutcome, RateLimit, RateSettings, Services, StoredMessage } from '../../lambdas/ports.js';

/**
 * Services for domain tests: every port a vi.fn with a plain default, so each test states only what it
 * changes. (Mocks for isolation, not twins: the adapters have their own contract tests.)
 */
export function fakeServices(overrides: Partial<RateSettings & DeliverySettings & HandshakeSettings> = {}) {
  const connections: ConnectionRecord[] = [];
  const outcomes = new Map<string, PostOutcome>();
  const posted: { endpoint: string; connectionId: string; data: string }[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const logs: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  const logAt = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    logs.push({ level, message, ...(fields === undefined ? {} : { fields }) });
  };
  let nextId = 0;
  const services = {
    limits: { ratePerSecond: overrides.ratePerSecond ?? 20, rateBurst: overrides.rateBurst ?? 40 },
    delivery: {
      fanoutThreshold: overrides.fanoutThreshold ?? 100,
      fanoutBatchSize: overrides.fanoutBatchSize ?? 100,
      postConcurrency: overrides.postConcurrency ?? 4,
    },
    handshake: { connectionTtlSeconds: overrides.connectionTtlSeconds ?? 3600, originAllowList: overrides.originAllowList ?? [] },
    registry: {
      register: vi.fn(async (record: ConnectionRecord) => {
        connections.push(record);
      }),
      get: vi.fn(async (id: string) => connections.find((c) => c.connectionId === id)),
      listByConversation: vi.fn(async (conversationId: string) => connections.filter((c) => c.conversationId === conversationId)),
      remove: vi.fn(async (id: string) => {
        const index = connections.findIndex((c) => c.connectionId === id);
        if (index >= 0) connections.splice(index, 1);
      }),
    },
    members: { isMember: vi.fn(async () => true), add: vi.fn(async () => undefined), remove: vi.fn(async () => undefined) },
    store: {
      admit: vi.fn(async (..._args: unknown[]): Promise<boolean> => true),
      registerDevice: vi.fn(async () => undefined),
      forgetUser: vi.fn(async () => undefined),
      append: vi.fn(async (_message: StoredMessage, _limit: RateLimit): Promise<AppendResult> => ({ status: 'stored', seq: 1 })),
      ack: vi.fn(async (..._args: unknown[]): Promise<'ok' | 'rate_limited'> => 'ok'),
      pending: vi.fn(async (..._args: unknown[]): Promise<PendingResult> => ({ status: 'ok', messages: [], hasMore: false })),
      load: vi.fn(async (_conversationId: string, _messageId: string): Promise<StoredMessage | undefined> => undefined),
    },
    fanout: { enqueue: vi.fn(async (_jobs: readonly FanoutJob[]) => undefined) },
    sealer: new MessageCipher(Buffer.from('domain-test-master-key-0123456789abcdef')),
    clock: { now: () => 1_700_000_000_000 },
    log: { debug: logAt('debug'), info: logAt('info'), warn: logAt('warn'), error: logAt('error') },
    auth: { verify: vi.fn(async (token: string) => (token === 'good' ? { ok: true as const, userId: 'alice' } : { ok: false as const, reason: 'invalid' as const })) },
    posterFor: vi.fn((endpoint: string) => ({
      post: async (connectionId: string, data: string): Promise<PostOutcome> => {
        inFlight += 1;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((resolve) => setImmediate(resolve));
        inFlight -= 1;
        posted.push({ endpoint, connectionId, data });
        return outcomes.get(connectionId) ?? 'delivered';
      },
    })),
    newMessageId: () => {
      nextId += 1;
      return `msg-${nextId}`;
    },
  } satisfies Services;

  return {
    services,
    connections,
    outcomes,
    posted,
    logs,
    maxInFlight: () => maxInFlight,
    connect(connectionId: string, userId: string, deviceId: string, conversationId = 'conv') {
      const record = { connectionId, userId, deviceId, conversationId, connectedAt: 0, expiresAt: 2_000_000_000 };
      connections.push(record);
      return record;
    },
  };
}

import { randomUUID } from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { RedisStoreSettings } from '../../../lambdas/adapters/redis-message-store.js';
import type { Device, MessageStore, PendingResult, RateLimit, StoredMessage } from '../../../lambdas/ports.js';

/**
 * The MessageStore contract, one suite for every implementation (RedisMessageStore on a real redis-server and
 * its in-memory twin). Each test opens its own store and uses fresh conversation and connection ids, so runs
 * against a shared Redis never see each other's keys.
 */
export interface StoreUnderTest {
  store: MessageStore;
  /**
   * Lets `ms` of time pass for the store: a fake clock for the in-memory store, a real wait for Redis (whose
   * TTLs and token buckets run on the server's own clock).
   */
  advance(ms: number): Promise<void>;
  close(): Promise<void>;
}

export type MakeStore = (settings: RedisStoreSettings) => Promise<StoreUnderTest>;

const DEFAULT_SETTINGS: RedisStoreSettings = { retentionSeconds: 3600, maxPendingPerDevice: 1000 };
const SENT_AT = Date.UTC(2030, 0, 1);

/** A limit that never refuses, on a connection of its own. */
function free(): RateLimit {
  return { connectionId: `conn-${randomUUID()}`, perSecond: 10_000, burst: 100_000 };
}

function tight(): RateLimit {
  return { connectionId: `conn-${randomUUID()}`, perSecond: 1, burst: 3 };
}

function message(conversationId: string, sender: Device, overrides: Partial<StoredMessage> = {}): StoredMessage {
  const messageId = overrides.messageId ?? randomUUID();
  return {
    conversationId,
    messageId,
    seq: 0,
    senderId: sender.userId,
    senderDevice: sender.deviceId,
    clientMessageId: `cm-${randomUUID()}`,
    sentAt: SENT_AT,
    sealed: `v1.${messageId.slice(0, 8)}.sealed-body`,
    ...overrides,
  };
}

const ALL = { afterSeq: 0, limit: 1000, maxBytes: 10_000_000 };

function ok(result: PendingResult): { messages: StoredMessage[]; hasMore: boolean } {
  if (result.status !== 'ok') throw new Error(`expected an ok page, got ${result.status}`);
  return result;
}

export function messageStoreContract(name: string, makeStore: MakeStore): void {
  async function open(settings: Partial<RedisStoreSettings> = {}): Promise<StoreUnderTest> {
    const harness = await makeStore({ ...DEFAULT_SETTINGS, ...settings });
    onTestFinished(() => harness.close());
    return harness;
  }

  /** Appends and insists it was stored; returns the message as the store should now hold it. */
  async function stored(store: MessageStore, m: StoredMessage): Promise<StoredMessage> {
    const result = await store.append(m, free());
    if (result.status !== 'stored') throw new Error(`expected stored, got ${result.status}`);
    return { ...m, seq: result.seq };
  }

  async function pendingSeqs(store: MessageStore, conversationId: string, device: Device): Promise<number[]> {
    return ok(await store.pending(conversationId, device, ALL, free())).messages.map((m) => m.seq);
  }

  async function pendingIds(store: MessageStore, conversationId: string, device: Device): Promise<string[]> {
    return ok(await store.pending(conversationId, device, ALL, free())).messages.map((m) => m.messageId);
  }

  const alice1: Device = { userId: 'alice', deviceId: 'phone' };
  const alice2: Device = { userId: 'alice', deviceId: 'laptop' };
  const bob: Device = { userId: 'bob', deviceId: 'phone' };
  const carol: Device = { userId: 'carol', deviceId: 'tablet' };

  async function conversationWith(store: MessageStore, devices: Device[]): Promise<string> {
    const conversationId = `conv-${randomUUID()}`;
    for (const device of devices) await store.registerDevice(conversationId, device);
    return conversationId;
  }

  describe(`MessageStore contract: ${name}`, () => {
    describe('sequence numbers', () => {
      it('assigns strictly increasing seqs per conversation, independently across conversations', async () => {
        const { store } = await open();
        const a = `conv-${randomUUID()}`;
        const b = `conv-${randomUUID()}`;
        const seqs = { a: [] as number[], b: [] as number[] };
        for (const target of ['a', 'b', 'a', 'a', 'b'] as const) {
          const result = await store.append(message(target === 'a' ? a : b, alice1, { seq: 999 }), free());
          expect(result.status).toBe('stored');
          if (result.status === 'stored') seqs[target].push(result.seq);
        }
        expect(seqs).toEqual({ a: [1, 2, 3], b: [1, 2] });
      });

      it('gives 100 concurrent appends the seqs 1..100, without gaps or duplicates', async () => {
        const { store } = await open();
        const conversationId = await conversationWith(store, [bob]);
        const results = await Promise.all(
          Array.from({ length: 100 }, () => store.append(message(conversationId, alice1), free())),
        );
        const seqs = results.map((r) => (r.status === 'stored' ? r.seq : -1)).sort((x, y) => x - y);
        expect(seqs).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
        expect(await pendingSeqs(store, conversationId, bob)).toEqual(seqs);
      });
    });

    describe('idempotency on (senderId, clientMessageId)', () => {
      it('answers a duplicate with the first messageId, seq and sentAt, and stores nothing new', async () => {
        const { store } = await open();
        const conversationId = await conversationWith(store, [alice1, alice2, bob]);
        const first = await stored(store, message(conversationId, alice1, { clientMessageId: 'cm-1', sentAt: SENT_AT }));

        // A retry, even from the sender's other device, with a new server-side id and time.
        const retry = message(conversationId, alice2, { clientMessageId: 'cm-1', sentAt: SENT_AT + 5000 });
        await expect(store.append(retry, free())).resolves.toEqual({
          status: 'duplicate',
          messageId: first.messageId,
          seq: first.seq,
          sentAt: SENT_AT,
        });

        await expect(store.load(conversationId, retry.messageId)).resolves.toBeUndefined();
        expect(await pendingIds(store, conversationId, bob)).toEqual([first.messageId]);
        expect(await pendingIds(store, conversationId, alice2)).toEqual([first.messageId]);
        expect(await pendingIds(store, conversationId, alice1)).toEqual([]);
        // The duplicate used no seq.
        const next = await store.append(message(conversationId, alice1), free());
        expect(next).toEqual({ status: 'stored', seq: 2 });
      });

      it('keeps the same clientMessageId of different senders apart', async () => {
        const { store } = await open();
        const conversationId = await conversationWith(store, [carol]);
        const fromAlice = await store.append(message(conversationId, alice1, { clientMessageId: 'same' }), free());
        const fromBob = await store.append(message(conversationId, bob, { clientMessageId: 'same' }), free());
        expect(fromAlice).toEqual({ status: 'stored', seq: 1 });
        expect(fromBob).toEqual({ status: 'stored', seq: 2 });
        expect(await pendingSeqs(store, conversationId, carol)).toEqual([1, 2]);
      });
    });

    describe('pending', () => {
      it("makes a message pending for every registered device except the sender's own", async () => {
        const { store } = await open();
        const conversationId = await conversationWith(store, [alice1, alice2, bob]);
        const m = await stored(store, message(conversationId, alice1));

        expect(await pendingIds(store, conversationId, alice1)).toEqual([]);
        expect(await pendingIds(store, conversationId, alice2)).toEqual([m.messageId]);
        expect(await pendingIds(store, conversationId, bob)).toEqual([m.messageId]);
        // Not a member device: nothing.
        expect(await pendingIds(store, conversationId, carol)).toEqual([]);
      });

      it('gives a device registered later only what was sent after it registered', async () => {
        const { store } = await open();
        const conversationId = await conversationWith(store, [bob]);
        await stored(store, message(conversationId, alice1));
        await store.registerDevice(conversationId, carol);
        await store.registerDevice(conversationId, carol);
        const later = await stored(store, message(conversationId, alice1));
        expect(await pendingIds(store, conversationId, carol)).toEqual([later.messageId]);
        expect(await pendingSeqs(store, conversationId, bob)).toEqual([1, 2]);
      });

      it('keeps devices with the same deviceId but different users apart', async () => {
        const { store } = await open();
        const conversationId = await conversationWith(store, [alice1, bob]);
        expect(alice1.deviceId).toBe(bob.deviceId);
        const m = await stored(store, message(conversationId, bob));
        expect(await pendingIds(store, conversationId, alice1)).toEqual([m.messageId]);
        expect(await pendingIds(store, conversationId, bob)).toEqual([]);
      });

      it('returns whole stored messages in ascending seq, honouring afterSeq and limit, with hasMore', async () => {
        const { store } = await open();
        const conversationId = await conversationWith(store, [bob]);
        const all: StoredMessage[] = [];
        for (let i = 0; i < 5; i += 1) all.push(await stored(store, message(conversationId, alice1)));

        await expect(store.pending(conversationId, bob, ALL, free())).resolves.toEqual({
          status: 'ok',
          messages: all,
          hasMore: false,
        });
        const page = (afterSeq: number, limit: number) =>
          store.pending(conversationId, bob, { afterSeq, limit, maxBytes: 10_000_000 }, free()).then(ok);
        await expect(page(2, 100)).resolves.toEqual({ status: 'ok', messages: all.slice(2), hasMore: false });
        await expect(page(0, 2)).resolves.toEqual({ status: 'ok', messages: all.slice(0, 2), hasMore: true });
        await expect(page(2, 2)).resolves.toEqual({ status: 'ok', messages: all.slice(2, 4), hasMore: true });
        await expect(page(4, 2)).resolves.toEqual({ status: 'ok', messages: all.slice(4), hasMore: false });
        await expect(page(3, 2)).resolves.toEqual({ status: 'ok', messages: all.slice(3), hasMore: false });
        await expect(page(5, 10)).resolves.toEqual({ status: 'ok', messages: [], hasMore: false });
      });

      it('pages by maxBytes, with at least one message per page even when it alone is larger', async () => {
        const { store } = await open();
        const conversationId = await conversationWith(store, [bob]);
        const all: StoredMessage[] = [];
        for (let i = 0; i < 5; i += 1) {
          all.push(await stored(store, message(conversationId, alice1, { sealed: `v1.${String(i).repeat(2000)}` })));
        }

        // About 2,200 bytes each: 5,000 bytes hold two of them, not three.
        const sizes: number[] = [];
        const more: boolean[] = [];
        let afterSeq = 0;
        for (let guard = 0; guard < 10; guard += 1) {
          const page = ok(await store.pending(conversationId, bob, { afterSeq, limit: 100, maxBytes: 5000 }, free()));
          sizes.push(page.messages.length);
          more.push(page.hasMore);
          afterSeq = page.messages.at(-1)?.seq ?? afterSeq;
          if (!page.hasMore) break;
        }
        expect(sizes).toEqual([2, 2, 1]);
        expect(more).toEqual([true, true, false]);

        const tiny = ok(await store.pending(conversationId, bob, { afterSeq: 0, limit: 100, maxBytes: 1 }, free()));
        expect(tiny).toEqual({ status: 'ok', messages: [all[0]], hasMore: true });
        const last = ok(await store.pending(conversationId, bob, { afterSeq: 4, limit: 100, maxBytes: 1 }, free()));
        expect(last).toEqual({ status: 'ok', messages: [all[4]], hasMore: false });
      });

      it('caps a device at maxPendingPerDevice, keeping the newest', async () => {
        const { store } = await open({ maxPendingPerDevice: 3 });
        const conversationId = await conversationWith(store, [bob]);
        const all: StoredMessage[] = [];
        for (let i = 0; i < 6; i += 1) all.push(await stored(store, message(conversationId, alice1)));

        expect(await pendingSeqs(store, conversationId, bob)).toEqual([4, 5, 6]);
        // Only the pending set is capped: the oldest message itself is still stored.
        await expect(store.load(conversationId, all[0]?.messageId ?? '')).resolves.toEqual(all[0]);
      });
    });

    describe('ack', () => {
      it("removes only that device's entries, is idempotent and ignores unknown ids", async () => {
        const { store } = await open();
        const conversationId = await conversationWith(store, [alice2, bob]);
        const m1 = await stored(store, message(conversationId, alice1));
        const m2 = await stored(store, message(conversationId, alice1));
        const m3 = await stored(store, message(conversationId, alice1));

        await expect(store.ack(conversationId, bob, [m1.messageId, m3.messageId], free())).resolves.toBe('ok');
        expect(await pendingIds(store, conversationId, bob)).toEqual([m2.messageId]);
        expect(await pendingIds(store, conversationId, alice2)).toEqual([m1.messageId, m2.messageId, m3.messageId]);

        await expect(store.ack(conversationId, bob, [m1.messageId], free())).resolves.toBe('ok');
        await expect(store.ack(conversationId, bob, ['no-such-id', m2.messageId], free())).resolves.toBe('ok');
        expect(await pendingIds(store, conversationId, bob)).toEqual([]);
        // Acking does not delete the message: the other device still loads and lists it.
        await expect(store.load(conversationId, m1.messageId)).resolves.toEqual(m1);
        expect(await pendingIds(store, conversationId, alice2)).toEqual([m1.messageId, m2.messageId, m3.messageId]);
      });

      it('is a no-op for a device with nothing pending and for an unknown conversation', async () => {
        const { store } = await open();
        const conversationId = await conversationWith(store, [bob]);
        await expect(store.ack(conversationId, carol, ['x'], free())).resolves.toBe('ok');
        await expect(store.ack(`conv-${randomUUID()}`, bob, ['x', 'y'], free())).resolves.toBe('ok');
      });

      it('accepts an empty list of ids as a no-op', async () => {
        const { store } = await open();
        const conversationId = await conversationWith(store, [bob]);
        const m = await stored(store, message(conversationId, alice1));
        await expect(store.ack(conversationId, bob, [], free())).resolves.toBe('ok');
        expect(await pendingIds(store, conversationId, bob)).toEqual([m.messageId]);
      });
    });

    describe('forgetUser', () => {
      it("removes that user's devices and their pending, and nobody else's", async () => {
        const { store } = await open();
        const conversationId = await conversationWith(store, [alice1, alice2, bob]);
        const m1 = await stored(store, message(conversationId, carol));

        await store.forgetUser(conversationId, 'alice');
        expect(await pendingIds(store, conversationId, alice1)).toEqual([]);
        expect(await pendingIds(store, conversationId, alice2)).toEqual([]);
        expect(await pendingIds(store, conversationId, bob)).toEqual([m1.messageId]);

        // Alice's devices are no longer member devices: new messages skip them.
        const m2 = await stored(store, message(conversationId, carol));
        expect(await pendingIds(store, conversationId, alice1)).toEqual([]);
        expect(await pendingIds(store, conversationId, bob)).toEqual([m1.messageId, m2.messageId]);

        // Registering again starts from now.
        await store.registerDevice(conversationId, alice1);
        const m3 = await stored(store, message(conversationId, carol));
        expect(await pendingIds(store, conversationId, alice1)).toEqual([m3.messageId]);
      });

      it('does not mistake a user whose id starts with the same characters (ids with / and %)', async () => {
        const { store } = await open();
        const plain: Device = { userId: 'a', deviceId: 'b/phone' };
        const slashed: Device = { userId: 'a/b', deviceId: 'phone' };
        const encodedLookalike: Device = { userId: 'a%2Fb', deviceId: 'phone' };
        const conversationId = await conversationWith(store, [plain, slashed, encodedLookalike]);
        const m = await stored(store, message(conversationId, carol));

        await store.forgetUser(conversationId, 'a');
        expect(await pendingIds(store, conversationId, plain)).toEqual([]);
        expect(await pendingIds(store, conversationId, slashed)).toEqual([m.messageId]);
        expect(await pendingIds(store, conversationId, encodedLookalike)).toEqual([m.messageId]);

        await store.forgetUser(conversationId, 'a/b');
        expect(await pendingIds(store, conversationId, slashed)).toEqual([]);
        expect(await pendingIds(store, conversationId, encodedLookalike)).toEqual([m.messageId]);
      });

      it('is a no-op for an unknown user or conversation', async () => {
        const { store } = await open();
        const conversationId = await conversationWith(store, [bob]);
        const m = await stored(store, message(conversationId, alice1));
        await store.forgetUser(conversationId, 'nobody');
        await store.forgetUser(`conv-${randomUUID()}`, 'bob');
        expect(await pendingIds(store, conversationId, bob)).toEqual([m.messageId]);
      });
    });

    describe('load', () => {
      it('returns the stored message with its assigned seq, or undefined', async () => {
        const { store } = await open();
        const conversationId = `conv-${randomUUID()}`;
        const m = await stored(store, message(conversationId, alice1, { seq: 42, sealed: 'v1.AAAA.BBBB' }));
        expect(m.seq).toBe(1);
        await expect(store.load(conversationId, m.messageId)).resolves.toEqual(m);
        await expect(store.load(conversationId, randomUUID())).resolves.toBeUndefined();
        await expect(store.load(`conv-${randomUUID()}`, m.messageId)).resolves.toBeUndefined();
      });
    });

    describe('rate limiting (perSecond 1, burst 3)', () => {
      it('refuses the 4th admit in quick succession', async () => {
        const { store } = await open();
        const conversationId = `conv-${randomUUID()}`;
        const limit = tight();
        const answers: boolean[] = [];
        for (let i = 0; i < 4; i += 1) answers.push(await store.admit(conversationId, limit));
        expect(answers).toEqual([true, true, true, false]);
      });

      it('refuses the 4th append, and the refused one stores nothing and uses no seq', async () => {
        const { store } = await open();
        const conversationId = await conversationWith(store, [bob]);
        const limit = tight();
        const statuses: string[] = [];
        const refused = message(conversationId, alice1);
        for (let i = 0; i < 3; i += 1) statuses.push((await store.append(message(conversationId, alice1), limit)).status);
        statuses.push((await store.append(refused, limit)).status);
        expect(statuses).toEqual(['stored', 'stored', 'stored', 'rate_limited']);

        await expect(store.load(conversationId, refused.messageId)).resolves.toBeUndefined();
        expect(await pendingSeqs(store, conversationId, bob)).toEqual([1, 2, 3]);
        // The refused clientMessageId was not remembered either: sent again later, it is stored, as seq 4.
        await expect(store.append(refused, free())).resolves.toEqual({ status: 'stored', seq: 4 });
      });

      it('refuses the 4th ack', async () => {
        const { store } = await open();
        const conversationId = await conversationWith(store, [bob]);
        const m = await stored(store, message(conversationId, alice1));
        const limit = tight();
        const answers: string[] = [];
        for (let i = 0; i < 3; i += 1) answers.push(await store.ack(conversationId, bob, ['unknown'], limit));
        answers.push(await store.ack(conversationId, bob, [m.messageId], limit));
        expect(answers).toEqual(['ok', 'ok', 'ok', 'rate_limited']);
        // The refused ack removed nothing.
        expect(await pendingIds(store, conversationId, bob)).toEqual([m.messageId]);
      });

      it('refuses the 4th pending', async () => {
        const { store } = await open();
        const conversationId = await conversationWith(store, [bob]);
        await stored(store, message(conversationId, alice1));
        const limit = tight();
        const statuses: string[] = [];
        for (let i = 0; i < 4; i += 1) statuses.push((await store.pending(conversationId, bob, ALL, limit)).status);
        expect(statuses).toEqual(['ok', 'ok', 'ok', 'rate_limited']);
      });

      it('shares one bucket between admit, append, ack and pending of a connection', async () => {
        const { store } = await open();
        const conversationId = await conversationWith(store, [bob]);
        const limit = tight();
        expect(await store.admit(conversationId, limit)).toBe(true);
        expect((await store.append(message(conversationId, bob), limit)).status).toBe('stored');
        expect(await store.ack(conversationId, bob, ['x'], limit)).toBe('ok');
        expect((await store.pending(conversationId, bob, ALL, limit)).status).toBe('rate_limited');
        expect(await store.admit(conversationId, limit)).toBe(false);
      });

      it('keeps a bucket per connection id', async () => {
        const { store } = await open();
        const conversationId = `conv-${randomUUID()}`;
        const first = tight();
        const second = tight();
        for (let i = 0; i < 3; i += 1) expect(await store.admit(conversationId, first)).toBe(true);
        expect(await store.admit(conversationId, first)).toBe(false);
        expect(await store.admit(conversationId, second)).toBe(true);
      });

      it('refills the bucket as time passes', async () => {
        const harness = await open();
        const conversationId = `conv-${randomUUID()}`;
        const limit: RateLimit = { connectionId: `conn-${randomUUID()}`, perSecond: 4, burst: 1 };
        expect(await harness.store.admit(conversationId, limit)).toBe(true);
        expect(await harness.store.admit(conversationId, limit)).toBe(false);
        await harness.advance(400);
        expect(await harness.store.admit(conversationId, limit)).toBe(true);
      });
    });

    describe('retention', () => {
      it('drops expired messages from pending (even between live ones) and load, and forgets their clientMessageId', async () => {
        const harness = await open({ retentionSeconds: 1 });
        const { store } = harness;
        const conversationId = await conversationWith(store, [bob]);
        const old = await stored(store, message(conversationId, alice1, { clientMessageId: 'cm-retained' }));
        await harness.advance(600);
        const recent = await stored(store, message(conversationId, alice1));
        expect(await pendingIds(store, conversationId, bob)).toEqual([old.messageId, recent.messageId]);

        // 1.2 s after the first append, 0.6 s after the second: only the first has passed its retention.
        await harness.advance(600);

        await expect(
          store.pending(conversationId, bob, { afterSeq: 0, limit: 1, maxBytes: 100_000 }, free()),
        ).resolves.toEqual({ status: 'ok', messages: [recent], hasMore: false });
        await expect(store.load(conversationId, old.messageId)).resolves.toBeUndefined();
        await expect(store.load(conversationId, recent.messageId)).resolves.toEqual(recent);
        const again = await store.append(message(conversationId, alice1, { clientMessageId: 'cm-retained' }), free());
        expect(again).toEqual({ status: 'stored', seq: 3 });
      });
    });
  });
}

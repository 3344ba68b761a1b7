import { randomUUID } from 'node:crypto';
import { DeleteCommand, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { DynamoMessageLog, idempotencyKey } from '../../lambdas/adapters/dynamo-message-log.js';
import type { AppendOutcome, LogEntry, MessageDraft, SealFor } from '../../lambdas/ports.js';
import { MESSAGE_ID_INDEX } from '../../deploy/tables.js';
import {
  createStoreTables,
  instrumentedDoc,
  startDynalite,
  type LocalDynamo,
  type WireCommand,
} from '../support/dynalite.js';

const TABLES = { messages: 'messages', idempotency: 'idempotency' };
const START = Date.UTC(2030, 0, 1, 12, 0, 0);
const HOUR = 3600;

let dynamo: LocalDynamo;
let recorder: { doc: LocalDynamo['doc']; destroy(): void };
let retrying: { doc: LocalDynamo['doc']; destroy(): void };
const sent: WireCommand[] = [];
let nowMs = START;
const clock = { now: () => nowMs };
let log: DynamoMessageLog;
let recordedLog: DynamoMessageLog;

beforeAll(async () => {
  dynamo = await startDynalite();
  await createStoreTables(dynamo.client, TABLES);
  recorder = instrumentedDoc(dynamo, { before: (command) => void sent.push(command) });
  // SDK retries as in production (a keep-alive socket reset under 50 concurrent calls must not fail the test);
  // the log tells its own retried writes apart (see the crash tests).
  retrying = instrumentedDoc(dynamo, {}, { maxAttempts: 3 });
  log = new DynamoMessageLog(retrying.doc, TABLES, clock);
  recordedLog = new DynamoMessageLog(recorder.doc, TABLES, clock);
});

afterAll(async () => {
  recorder.destroy();
  retrying.destroy();
  await dynamo.close();
});

beforeEach(() => {
  nowMs = START;
  sent.length = 0;
});

function draft(conversationId: string, overrides: Partial<MessageDraft> = {}): MessageDraft {
  return {
    conversationId,
    senderId: 'alice',
    senderDevice: 'phone',
    clientMessageId: randomUUID(),
    messageId: randomUUID(),
    sentAt: nowMs,
    ...overrides,
  };
}

/** A stand-in for the sealer that shows which ids (seq included) it was given. */
const seal: SealFor = (entry) => `sealed(${entry.messageId}@${entry.seq})`;

function padded(bytes: number): SealFor {
  return (entry) => `${entry.messageId}@${entry.seq}:`.padEnd(bytes, 'x');
}

function stored(outcome: AppendOutcome): LogEntry {
  if (outcome.status !== 'stored') throw new Error(`expected stored, got ${JSON.stringify(outcome)}`);
  return outcome.entry;
}

/** Every message item of a conversation as stored, expired ones included (the head item left out). */
async function rawItems(conversationId: string): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await dynamo.doc.send(
      new QueryCommand({
        TableName: TABLES.messages,
        KeyConditionExpression: 'conversationId = :c AND seq > :zero',
        ExpressionAttributeValues: { ':c': conversationId, ':zero': 0 },
        ConsistentRead: true,
        ExclusiveStartKey: startKey,
      }),
    );
    items.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey !== undefined);
  return items;
}

function nth<T>(items: readonly T[], index: number): T {
  const item = items[index];
  if (item === undefined) throw new Error(`no item at ${index} of ${items.length}`);
  return item;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

async function appendMany(target: DynamoMessageLog, conversationId: string, count: number, sealFor: SealFor = seal): Promise<LogEntry[]> {
  const entries: LogEntry[] = [];
  for (let i = 0; i < count; i += 1) {
    entries.push(stored(await target.append(draft(conversationId), sealFor, entries.length)));
  }
  return entries;
}

describe('DynamoMessageLog: append', () => {
  it('stores the first message at seq 1, sealed for the ids it settled on, and reads it back', async () => {
    const conversationId = randomUUID();
    const first = draft(conversationId);

    const outcome = await log.append(first, seal);

    const expected: LogEntry = {
      conversationId,
      seq: 1,
      messageId: first.messageId,
      senderId: 'alice',
      senderDevice: 'phone',
      clientMessageId: first.clientMessageId,
      sentAt: first.sentAt,
      sealed: `sealed(${first.messageId}@1)`,
    };
    expect(outcome).toEqual({ status: 'stored', entry: expected, completed: false });
    await expect(log.get(conversationId, 1)).resolves.toEqual(expected);
    await expect(log.lastSeq(conversationId)).resolves.toBe(1);
    await expect(log.lastSeq(randomUUID())).resolves.toBe(0);
    await expect(log.get(conversationId, 2)).resolves.toBeUndefined();
  });

  it('numbers 50 concurrent appends from different senders 1..50 with no hole and no repeat', async () => {
    const conversationId = randomUUID();
    const drafts = range(1, 50).map((i) => draft(conversationId, { senderId: `sender-${i}` }));

    const outcomes = await Promise.all(drafts.map((d) => log.append(d, seal)));

    const entries = outcomes.map(stored);
    expect(entries.map((e) => e.seq).sort((a, b) => a - b)).toEqual(range(1, 50));
    expect(new Set(entries.map((e) => e.messageId)).size).toBe(50);
    // Each sender's own draft, sealed for the seq it finally got.
    for (const [i, entry] of entries.entries()) {
      expect(entry.messageId).toBe(nth(drafts, i).messageId);
      expect(entry.sealed).toBe(`sealed(${entry.messageId}@${entry.seq})`);
    }
    const items = await rawItems(conversationId);
    expect(items.map((item) => item.seq)).toEqual(range(1, 50));
    await expect(log.lastSeq(conversationId)).resolves.toBe(50);
  });

  it('answers a resend of the same clientMessageId with the first ids and stores nothing new', async () => {
    const conversationId = randomUUID();
    const first = draft(conversationId);
    const firstEntry = stored(await log.append(first, seal));
    await appendMany(log, conversationId, 2);
    nowMs += 60_000;

    const resend = await log.append({ ...first, messageId: randomUUID(), sentAt: nowMs }, seal, 3);

    expect(resend).toEqual({ status: 'duplicate', messageId: first.messageId, seq: 1, sentAt: first.sentAt });
    expect((await rawItems(conversationId)).map((item) => item.messageId)).toEqual([
      firstEntry.messageId,
      expect.any(String),
      expect.any(String),
    ]);
    await expect(log.lastSeq(conversationId)).resolves.toBe(3);
  });

  it('keeps clientMessageIds apart per sender: the same id from two senders is two messages', async () => {
    const conversationId = randomUUID();
    const clientMessageId = randomUUID();

    const a = stored(await log.append(draft(conversationId, { senderId: 'a#b', clientMessageId }), seal));
    const b = stored(await log.append(draft(conversationId, { senderId: 'a', clientMessageId: `b#${clientMessageId}` }), seal));
    const c = stored(await log.append(draft(conversationId, { senderId: 'carol', clientMessageId }), seal));

    expect([a.seq, b.seq, c.seq]).toEqual([1, 2, 3]);
  });

  it('stores exactly one message when 20 resends of one clientMessageId race (with other senders around)', async () => {
    const conversationId = randomUUID();
    await appendMany(log, conversationId, 2);
    const clientMessageId = randomUUID();
    const resends = range(1, 20).map(() => draft(conversationId, { senderId: 'bob', clientMessageId }));
    const others = range(1, 10).map((i) => draft(conversationId, { senderId: `other-${i}` }));

    const outcomes = await Promise.all([...resends, ...others].map((d) => log.append(d, seal)));

    const mine = outcomes.slice(0, 20);
    const winners = mine.filter((o) => o.status === 'stored');
    expect(winners).toHaveLength(1);
    const winner = stored(nth(winners, 0));
    for (const outcome of mine) {
      if (outcome.status === 'duplicate') {
        expect(outcome).toEqual({ status: 'duplicate', messageId: winner.messageId, seq: winner.seq, sentAt: winner.sentAt });
      }
    }
    const items = await rawItems(conversationId);
    expect(items.filter((item) => item.clientMessageId === clientMessageId)).toEqual([
      expect.objectContaining({ messageId: winner.messageId, seq: winner.seq }),
    ]);
    expect(items.map((item) => item.seq)).toEqual(range(1, 13));
  });

  it('still lands at lastSeq + 1 with a stale (too low) hint, and with hint 0', async () => {
    const conversationId = randomUUID();
    await appendMany(log, conversationId, 5);

    const stale = stored(await log.append(draft(conversationId), seal, 2));
    const zero = stored(await log.append(draft(conversationId), seal, 0));

    expect([stale.seq, zero.seq]).toEqual([6, 7]);
    expect(stale.sealed).toBe(`sealed(${stale.messageId}@6)`);
    expect((await rawItems(conversationId)).map((item) => item.seq)).toEqual(range(1, 7));
  });

  // Callers never pass a hint above a seq that exists (the seq cache is only raised after a write succeeded):
  // such a hint would leave a hole, so it is part of the caller's contract and not exercised here.

  it('costs two writes and no read on the common path (right hint), one Query more without a hint', async () => {
    const conversationId = randomUUID();
    await appendMany(log, conversationId, 3);

    sent.length = 0;
    stored(await recordedLog.append(draft(conversationId), seal, 3));
    expect(sent).toEqual([
      { command: 'PutItemCommand', table: TABLES.idempotency },
      { command: 'PutItemCommand', table: TABLES.messages },
    ]);

    sent.length = 0;
    stored(await recordedLog.append(draft(conversationId), seal));
    expect(sent).toEqual([
      { command: 'QueryCommand', table: TABLES.messages },
      { command: 'PutItemCommand', table: TABLES.idempotency },
      { command: 'PutItemCommand', table: TABLES.messages },
    ]);
  });

  it('writes the idempotency record with the attempt seq and an expiry one window after sentAt', async () => {
    const conversationId = randomUUID();
    const first = draft(conversationId, { senderId: 'user/with#odd chars' });
    await log.append(first, seal);

    const key = idempotencyKey(first.senderId, first.clientMessageId);
    expect(key).toBe(`${encodeURIComponent(first.senderId)}#${first.clientMessageId}`);
    const { Item } = await dynamo.doc.send(new GetCommand({ TableName: TABLES.idempotency, Key: { conversationId, key } }));
    expect(Item).toEqual({
      conversationId,
      key,
      messageId: first.messageId,
      sentAt: first.sentAt,
      attempt: 1,
      expiresAt: Math.floor(first.sentAt / 1000) + 7 * 24 * HOUR,
    });
  });
});

describe('DynamoMessageLog: idempotency window', () => {
  it('stores a clientMessageId again as new once its idempotency record has expired', async () => {
    const conversationId = randomUUID();
    const first = draft(conversationId);
    const firstEntry = stored(await log.append(first, seal));
    // An old record from the same sender and clientMessageId, its window already over.
    await dynamo.doc.send(
      new PutCommand({
        TableName: TABLES.idempotency,
        Item: {
          conversationId,
          key: idempotencyKey(first.senderId, first.clientMessageId),
          messageId: first.messageId,
          sentAt: first.sentAt,
          attempt: 1,
          expiresAt: Math.floor(nowMs / 1000) - 1,
        },
      }),
    );

    const again = draft(conversationId, { clientMessageId: first.clientMessageId });
    const outcome = stored(await log.append(again, seal, 1));

    expect(outcome).toMatchObject({ seq: 2, messageId: again.messageId, clientMessageId: first.clientMessageId });
    expect(outcome.messageId).not.toBe(firstEntry.messageId);
    // And the new record guards it again.
    await expect(log.append(draft(conversationId, { clientMessageId: first.clientMessageId }), seal, 2)).resolves.toEqual({
      status: 'duplicate',
      messageId: again.messageId,
      seq: 2,
      sentAt: again.sentAt,
    });
  });

  it('remembers a clientMessageId for the configured window and no longer', async () => {
    const conversationId = randomUUID();
    const windowed = new DynamoMessageLog(dynamo.doc, TABLES, clock, { idempotencyWindowSeconds: 60 });
    const first = draft(conversationId);
    await windowed.append(first, seal);

    nowMs += 59_000;
    await expect(windowed.append(draft(conversationId, { clientMessageId: first.clientMessageId }), seal, 1)).resolves.toMatchObject({
      status: 'duplicate',
      messageId: first.messageId,
    });
    nowMs += 2_000;
    const later = stored(await windowed.append(draft(conversationId, { clientMessageId: first.clientMessageId }), seal, 1));
    expect(later.seq).toBe(2);
    expect(later.messageId).not.toBe(first.messageId);
  });
});

describe('DynamoMessageLog: seqsOf', () => {
  it('maps the ids that exist in the conversation and leaves out the others', async () => {
    const conversationId = randomUUID();
    const entries = await appendMany(log, conversationId, 4);
    const elsewhere = stored(await log.append(draft(randomUUID()), seal));

    sent.length = 0;
    const fourth = nth(entries, 3).messageId;
    const first = nth(entries, 0).messageId;
    const seqs = await recordedLog.seqsOf(conversationId, [fourth, 'unknown', first, elsewhere.messageId, fourth]);

    expect(seqs).toEqual(
      new Map([
        [fourth, 4],
        [first, 1],
      ]),
    );
    // One Query per distinct id, each on the index.
    expect(sent).toHaveLength(4);
    expect(sent.every((command) => command.command === 'QueryCommand')).toBe(true);
    await expect(log.seqsOf(conversationId, [])).resolves.toEqual(new Map());
    expect(MESSAGE_ID_INDEX).toBe('byMessageId');
  });
});

describe('DynamoMessageLog: page', () => {
  const seqsOf = (entries: LogEntry[]) => entries.map((e) => e.seq);
  let conversationId: string;

  beforeAll(async () => {
    conversationId = randomUUID();
    // Ten messages whose sealed bodies are 100 characters each.
    await appendMany(log, conversationId, 10, padded(100));
  });

  it.each([
    { name: 'everything', range: { limit: 100 }, seqs: range(1, 10), hasMore: false },
    { name: 'after 3, 4 of them', range: { afterSeq: 3, limit: 4 }, seqs: [4, 5, 6, 7], hasMore: true },
    { name: 'after 6, the last 4 exactly', range: { afterSeq: 6, limit: 4 }, seqs: [7, 8, 9, 10], hasMore: false },
    { name: 'before 5', range: { beforeSeq: 5, limit: 100 }, seqs: [1, 2, 3, 4], hasMore: false },
    { name: 'between 2 and 6', range: { afterSeq: 2, beforeSeq: 6, limit: 100 }, seqs: [3, 4, 5], hasMore: false },
    { name: 'between 2 and 6, 2 of them', range: { afterSeq: 2, beforeSeq: 6, limit: 2 }, seqs: [3, 4], hasMore: true },
    { name: 'newest 3', range: { limit: 3, newestFirst: true }, seqs: [8, 9, 10], hasMore: true },
    { name: 'newest 2 before 5', range: { beforeSeq: 5, limit: 2, newestFirst: true }, seqs: [3, 4], hasMore: true },
    { name: 'newest before 4', range: { beforeSeq: 4, limit: 3, newestFirst: true }, seqs: [1, 2, 3], hasMore: false },
    { name: 'newest 3 between 5 and 10', range: { afterSeq: 5, beforeSeq: 10, limit: 3, newestFirst: true }, seqs: [7, 8, 9], hasMore: true },
    { name: 'empty between 5 and 6', range: { afterSeq: 5, beforeSeq: 6, limit: 10 }, seqs: [], hasMore: false },
    { name: 'empty after the end', range: { afterSeq: 10, limit: 10 }, seqs: [], hasMore: false },
    { name: 'empty before the start', range: { beforeSeq: 1, limit: 10, newestFirst: true }, seqs: [], hasMore: false },
    { name: 'maxBytes 250: 2 entries', range: { limit: 100, maxBytes: 250 }, seqs: [1, 2], hasMore: true },
    { name: 'maxBytes 300: exactly 3', range: { afterSeq: 7, limit: 100, maxBytes: 300 }, seqs: [8, 9, 10], hasMore: false },
    { name: 'maxBytes 1: still one', range: { afterSeq: 4, limit: 100, maxBytes: 1 }, seqs: [5], hasMore: true },
    { name: 'maxBytes 250, newest', range: { limit: 100, maxBytes: 250, newestFirst: true }, seqs: [9, 10], hasMore: true },
  ])('$name', async ({ range: given, seqs, hasMore }) => {
    const page = await log.page(conversationId, { maxBytes: 1_000_000, newestFirst: false, ...given });

    expect(seqsOf(page.entries)).toEqual(seqs);
    expect(page.hasMore).toBe(hasMore);
    for (const entry of page.entries) expect(entry.conversationId).toBe(conversationId);
  });

  it('reads past DynamoDB’s 1 MB pages (40 bodies of 30 KB), both ways', async () => {
    const big = randomUUID();
    await appendMany(log, big, 40, padded(30_000));

    sent.length = 0;
    const forward = await recordedLog.page(big, { limit: 100, maxBytes: 10_000_000, newestFirst: false });
    const queries = sent.length;
    const backward = await recordedLog.page(big, { afterSeq: 0, limit: 100, maxBytes: 10_000_000, newestFirst: true });

    expect(seqsOf(forward.entries)).toEqual(range(1, 40));
    expect(seqsOf(backward.entries)).toEqual(range(1, 40));
    expect([forward.hasMore, backward.hasMore]).toEqual([false, false]);
    expect(forward.entries.every((e) => e.sealed.length === 30_000)).toBe(true);
    expect(queries).toBeGreaterThanOrEqual(2);
    expect(sent.every((command) => command.command === 'QueryCommand')).toBe(true);

    const capped = await log.page(big, { afterSeq: 5, limit: 100, maxBytes: 1_000_000, newestFirst: false });
    expect(seqsOf(capped.entries)).toEqual(range(6, 38));
    expect(capped.hasMore).toBe(true);
  });
});

describe('DynamoMessageLog: retention', () => {
  const RETENTION = 2 * HOUR;
  let retained: DynamoMessageLog;

  beforeAll(() => {
    retained = new DynamoMessageLog(dynamo.doc, TABLES, clock, { retentionSeconds: RETENTION });
  });

  async function head(conversationId: string): Promise<Record<string, unknown> | undefined> {
    const { Item } = await dynamo.doc.send(
      new GetCommand({ TableName: TABLES.messages, Key: { conversationId, seq: 0 }, ConsistentRead: true }),
    );
    return Item;
  }

  it('sets expiresAt and keeps a head item only when a retention is configured', async () => {
    const forever = randomUUID();
    const limited = randomUUID();

    await log.append(draft(forever), seal);
    await retained.append(draft(limited), seal);
    nowMs += 10_000;
    await retained.append(draft(limited), seal, 1);

    const [kept] = await rawItems(forever);
    expect(kept).toBeDefined();
    expect(kept).not.toHaveProperty('expiresAt');
    await expect(head(forever)).resolves.toBeUndefined();
    expect((await rawItems(limited)).map((item) => item.expiresAt)).toEqual([
      Math.floor(START / 1000) + RETENTION,
      Math.floor(START / 1000) + 10 + RETENTION,
    ]);
    await expect(head(limited)).resolves.toEqual({ conversationId: limited, seq: 0, lastSeq: 2 });
  });

  it('costs one write more (raising the head) on the common path', async () => {
    const conversationId = randomUUID();
    const recordedRetained = new DynamoMessageLog(recorder.doc, TABLES, clock, { retentionSeconds: RETENTION });
    await appendMany(retained, conversationId, 2);

    sent.length = 0;
    await recordedRetained.append(draft(conversationId), seal, 2);
    expect(sent).toEqual([
      { command: 'PutItemCommand', table: TABLES.idempotency },
      { command: 'PutItemCommand', table: TABLES.messages },
      { command: 'UpdateItemCommand', table: TABLES.messages },
    ]);
  });

  it('hides expired messages from get and page while lastSeq still counts them', async () => {
    const conversationId = randomUUID();
    await appendMany(retained, conversationId, 2);
    nowMs += HOUR * 1000;
    const late = stored(await retained.append(draft(conversationId), seal, 2));
    nowMs = START + RETENTION * 1000 + 1;

    await expect(retained.get(conversationId, 1)).resolves.toBeUndefined();
    await expect(retained.get(conversationId, 3)).resolves.toEqual(late);
    const page = await retained.page(conversationId, { limit: 10, maxBytes: 100_000, newestFirst: false });
    expect(page).toEqual({ entries: [late], hasMore: false });
    const oldest = await retained.page(conversationId, { beforeSeq: 3, limit: 10, maxBytes: 100_000, newestFirst: true });
    expect(oldest).toEqual({ entries: [], hasMore: false });
    await expect(retained.lastSeq(conversationId)).resolves.toBe(3);
  });

  it('continues at lastSeq + 1 after every message item is gone (TTL), never repeating a seq', async () => {
    const conversationId = randomUUID();
    const before = await appendMany(retained, conversationId, 3);
    nowMs += (RETENTION + 60) * 1000;
    // What TTL would do, eventually: delete every message item.
    for (const entry of before) {
      await dynamo.doc.send(new DeleteCommand({ TableName: TABLES.messages, Key: { conversationId, seq: entry.seq } }));
    }

    await expect(retained.lastSeq(conversationId)).resolves.toBe(3);
    const next = stored(await retained.append(draft(conversationId), seal));
    const after = stored(await retained.append(draft(conversationId), seal, 4));

    expect([next.seq, after.seq]).toEqual([4, 5]);
    expect((await rawItems(conversationId)).map((item) => item.seq)).toEqual([4, 5]);
    await expect(head(conversationId)).resolves.toMatchObject({ lastSeq: 5 });
  });

  it('remembers a clientMessageId no longer than the retention (its message may be gone after that)', async () => {
    const conversationId = randomUUID();
    const short = new DynamoMessageLog(dynamo.doc, TABLES, clock, { retentionSeconds: 60 });
    const first = draft(conversationId);
    stored(await short.append(first, seal));
    const { Item } = await dynamo.doc.send(
      new GetCommand({
        TableName: TABLES.idempotency,
        Key: { conversationId, key: idempotencyKey(first.senderId, first.clientMessageId) },
      }),
    );
    expect(Item).toMatchObject({ expiresAt: Math.floor(first.sentAt / 1000) + 60 });
    nowMs += 61_000;
    await dynamo.doc.send(new DeleteCommand({ TableName: TABLES.messages, Key: { conversationId, seq: 1 } }));

    const again = stored(await short.append(draft(conversationId, { clientMessageId: first.clientMessageId }), seal));

    expect(again.seq).toBe(2);
    expect(again.messageId).not.toBe(first.messageId);
  });

  it('still knows the last seq when TTL removed the newest message before older ones', async () => {
    const conversationId = randomUUID();
    await appendMany(retained, conversationId, 3);
    nowMs += (RETENTION + 60) * 1000;
    await dynamo.doc.send(new DeleteCommand({ TableName: TABLES.messages, Key: { conversationId, seq: 3 } }));

    await expect(retained.lastSeq(conversationId)).resolves.toBe(3);
    const next = stored(await retained.append(draft(conversationId), seal));
    expect(next.seq).toBe(4);
  });
});

describe('DynamoMessageLog: change (edit and delete)', () => {
  async function oneMessage() {
    const conversationId = `conv-${randomUUID()}`;
    const entry = stored(await log.append(draft(conversationId), seal));
    return { conversationId, entry, by: { messageId: entry.messageId, senderId: entry.senderId } };
  }
  const rawItem = async (conversationId: string, seq: number) =>
    (await dynamo.doc.send(new GetCommand({ TableName: TABLES.messages, Key: { conversationId, seq }, ConsistentRead: true }))).Item;

  it('edits in one conditional write: same seq, new sealed body, editedAt; get reads the edit back', async () => {
    // Prepare
    const { conversationId, entry, by } = await oneMessage();
    sent.length = 0;
    // Act
    const outcome = await recordedLog.change(conversationId, entry.seq, by, { kind: 'edit', editedAt: START + 5, sealed: 'sealed(edit)' });
    // Assess
    expect(outcome).toEqual({ status: 'changed', entry: { ...entry, editedAt: START + 5, sealed: 'sealed(edit)' } });
    expect(await log.get(conversationId, entry.seq)).toEqual({ ...entry, editedAt: START + 5, sealed: 'sealed(edit)' });
    expect(sent.map((c) => c.command)).toEqual(['UpdateItemCommand']);
  });

  it('deletes into a tombstone: the item keeps its keys and seq, the sealed body is gone from the table', async () => {
    // Prepare
    const { conversationId, entry, by } = await oneMessage();
    await log.change(conversationId, entry.seq, by, { kind: 'edit', editedAt: START + 5, sealed: 'sealed(edit)' });
    // Act
    const outcome = await log.change(conversationId, entry.seq, by, { kind: 'delete', deletedAt: START + 9 });
    const raw = await rawItem(conversationId, entry.seq);
    // Assess
    expect(outcome.status).toBe('changed');
    expect(raw).toMatchObject({ conversationId, seq: entry.seq, messageId: entry.messageId, deleted: true, deletedAt: START + 9 });
    expect(raw).not.toHaveProperty('sealed');
    expect(raw).not.toHaveProperty('editedAt');
    expect(JSON.stringify(raw)).not.toContain('sealed(');
    expect(await log.get(conversationId, entry.seq)).toMatchObject({ seq: entry.seq, deleted: true, sealed: '' });
    expect(await log.lastSeq(conversationId)).toBe(entry.seq);
  });

  it('answers deleted (writing nothing) for a change to a deleted message', async () => {
    // Prepare
    const { conversationId, entry, by } = await oneMessage();
    await log.change(conversationId, entry.seq, by, { kind: 'delete', deletedAt: START });
    // Act
    const edit = await log.change(conversationId, entry.seq, by, { kind: 'edit', editedAt: START + 1, sealed: 'sealed(late)' });
    const again = await log.change(conversationId, entry.seq, by, { kind: 'delete', deletedAt: START + 2 });
    // Assess
    expect([edit.status, again.status]).toEqual(['deleted', 'deleted']);
    expect(await rawItem(conversationId, entry.seq)).toMatchObject({ deletedAt: START });
    expect(await rawItem(conversationId, entry.seq)).not.toHaveProperty('sealed');
  });

  it('answers missing for another sender, another message id, an unknown seq and the head seq', async () => {
    // Prepare
    const { conversationId, entry, by } = await oneMessage();
    const edit = { kind: 'edit', editedAt: START + 1, sealed: 'sealed(x)' } as const;
    // Act
    const outcomes = await Promise.all([
      log.change(conversationId, entry.seq, { ...by, senderId: 'mallory' }, edit),
      log.change(conversationId, entry.seq, { ...by, messageId: randomUUID() }, edit),
      log.change(conversationId, entry.seq + 1, by, edit),
      log.change(conversationId, 0, by, edit),
    ]);
    // Assess
    expect(outcomes.map((o) => o.status)).toEqual(['missing', 'missing', 'missing', 'missing']);
    expect(await log.get(conversationId, entry.seq)).toEqual(entry);
    expect(await rawItem(conversationId, entry.seq + 1)).toBeUndefined();
  });
});

describe('DynamoMessageLog: latest and countByOthers (unread counts)', () => {
  /** A deleted message as the edit/delete path stores it: the item stays at its seq, `deleted`, without a body. */
  async function tombstone(conversationId: string, seq: number, senderId: string): Promise<void> {
    await dynamo.doc.send(
      new PutCommand({
        TableName: TABLES.messages,
        Item: { conversationId, seq, messageId: randomUUID(), senderId, senderDevice: 'phone', clientMessageId: randomUUID(), sentAt: nowMs, deleted: true },
      }),
    );
  }

  it('counts exactly the messages by others above the seq: own messages and tombstones never count', async () => {
    // Prepare
    const conversationId = randomUUID();
    const senders = ['bob', 'alice', 'bob', 'carol', 'alice', 'bob', 'bob', 'carol'];
    for (const [i, senderId] of senders.entries()) stored(await log.append(draft(conversationId, { senderId }), seal, i));
    // seq 9 is a deleted message by bob, seq 10 one by alice.
    await tombstone(conversationId, 9, 'bob');
    await tombstone(conversationId, 10, 'alice');
    stored(await log.append(draft(conversationId, { senderId: 'bob' }), seal, 10));
    // Act
    const counts = await Promise.all([0, 3, 7, 10, 11].map((after) => log.countByOthers(conversationId, after, 'alice')));
    const forBob = await log.countByOthers(conversationId, 0, 'bob');
    // Assess
    // Others' live messages: seqs 1, 3, 4, 6, 7, 8, 11.
    expect(counts).toEqual([7, 5, 2, 1, 0]);
    // Others for bob: alice (2, 5), carol (4, 8).
    expect(forBob).toBe(4);
    await expect(log.countByOthers(randomUUID(), 0, 'alice')).resolves.toBe(0);
  });

  it('counts across Query pages (1 MB each)', async () => {
    // Prepare
    const conversationId = randomUUID();
    await appendMany(log, conversationId, 30, padded(60_000));
    // Act
    const count = await log.countByOthers(conversationId, 0, 'bob');
    // Assess
    expect(count).toBe(30);
  });

  it('reads only the items above the seq, in one consistent COUNT Query', async () => {
    // Prepare
    const conversationId = randomUUID();
    await appendMany(log, conversationId, 5);
    const send = vi.spyOn(recorder.doc, 'send');
    // Act
    const count = await recordedLog.countByOthers(conversationId, 3, 'bob');
    const inputs = send.mock.calls.map((call) => call[0].input);
    send.mockRestore();
    // Assess
    expect(count).toBe(2);
    expect(inputs).toHaveLength(1);
    expect(inputs[0]).toMatchObject({
      KeyConditionExpression: 'conversationId = :c AND seq > :after',
      ExpressionAttributeValues: { ':after': 3 },
      Select: 'COUNT',
      ConsistentRead: true,
    });
  });

  it('latest is the last seq and the newest message\'s sentAt, in one read; nothing for an empty conversation', async () => {
    // Prepare
    const conversationId = randomUUID();
    await appendMany(log, conversationId, 2);
    nowMs += 5_000;
    const last = stored(await log.append(draft(conversationId), seal, 2));
    const send = vi.spyOn(recorder.doc, 'send');
    // Act
    const top = await recordedLog.latest(conversationId);
    const inputs = send.mock.calls.map((call) => call[0].input);
    send.mockRestore();
    const empty = await log.latest(randomUUID());
    // Assess
    expect(top).toEqual({ lastSeq: 3, lastMessageAt: last.sentAt });
    expect(inputs).toHaveLength(1);
    expect(inputs[0]).toMatchObject({ Limit: 1, ScanIndexForward: false, ConsistentRead: true });
    expect(empty).toEqual({ lastSeq: 0 });
  });

  it('with a retention, latest keeps the head\'s last seq and has no sentAt once everything expired; expired messages are not counted', async () => {
    // Prepare
    const retained = new DynamoMessageLog(dynamo.doc, TABLES, clock, { retentionSeconds: HOUR });
    const conversationId = randomUUID();
    await appendMany(retained, conversationId, 3);
    const live = await retained.latest(conversationId);
    nowMs += (HOUR + 60) * 1000;
    // TTL removed the newest first; the two others are expired but still stored.
    await dynamo.doc.send(new DeleteCommand({ TableName: TABLES.messages, Key: { conversationId, seq: 3 } }));
    // Act
    const expired = await retained.latest(conversationId);
    const unread = await retained.countByOthers(conversationId, 0, 'bob');
    // Assess
    expect(live).toEqual({ lastSeq: 3, lastMessageAt: START });
    expect(expired).toEqual({ lastSeq: 3 });
    expect(unread).toBe(0);
  });
});

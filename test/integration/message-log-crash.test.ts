import { randomUUID } from 'node:crypto';
import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DynamoMessageLog } from '../../lambdas/adapters/dynamo-message-log.js';
import type { AppendOutcome, LogEntry, MessageDraft, SealFor } from '../../lambdas/ports.js';
import { createStoreTables, instrumentedDoc, startDynalite, type LocalDynamo, type WireCommand } from '../support/dynalite.js';

/**
 * Fault injection: the log runs on a client that "dies" at one write of an append, either before the write
 * reaches DynamoDB or after it took effect (the answer is lost). Whatever the crash point, a resend of the same
 * clientMessageId must leave exactly one message for it, the seqs 1..N without hole or repeat, and a second
 * resend must answer duplicate with the same ids.
 */

const TABLES = { messages: 'crash-messages', idempotency: 'crash-idempotency' };
const START = Date.UTC(2030, 0, 1, 12, 0, 0);
const WRITES = new Set(['PutItemCommand', 'UpdateItemCommand', 'DeleteItemCommand']);

class ProcessDied extends Error {
  override readonly name = 'ProcessDied';
}

interface CrashPlan {
  /** The k-th write of the faulty log (1-based) is where it dies. */
  write: number;
  when: 'before' | 'after';
  /** Runs at the moment of death, before the throw: another sender acting meanwhile. */
  meanwhile?: () => Promise<void>;
}

let dynamo: LocalDynamo;
let faultyClient: { doc: LocalDynamo['doc']; destroy(): void };
let retryingClient: { doc: LocalDynamo['doc']; destroy(): void };
let plan: CrashPlan | undefined;
let writes = 0;
const faultyWrites: WireCommand[] = [];
let loseNextAnswerOf: string | undefined;
const nowMs = START;
const clock = { now: () => nowMs };

async function maybeDie(sent: WireCommand, when: CrashPlan['when']): Promise<void> {
  if (plan === undefined || plan.when !== when || !WRITES.has(sent.command)) return;
  if (writes !== plan.write) return;
  const dying = plan;
  plan = undefined;
  await dying.meanwhile?.();
  throw new ProcessDied(`died ${when} write ${dying.write} (${sent.command} on ${sent.table ?? '?'})`);
}

beforeAll(async () => {
  dynamo = await startDynalite();
  await createStoreTables(dynamo.client, TABLES);
  faultyClient = instrumentedDoc(dynamo, {
    before: async (sent) => {
      if (WRITES.has(sent.command)) {
        writes += 1;
        faultyWrites.push(sent);
      }
      await maybeDie(sent, 'before');
    },
    after: (sent) => maybeDie(sent, 'after'),
  });
  // Inside the SDK's retries: a lost answer here is retried, as a network blip would be.
  retryingClient = instrumentedDoc(
    dynamo,
    {
      after: (sent, error) => {
        if (error !== undefined || loseNextAnswerOf === undefined || sent.table !== loseNextAnswerOf) return;
        loseNextAnswerOf = undefined;
        throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
      },
    },
    { step: 'deserialize', maxAttempts: 2 },
  );
});

afterAll(async () => {
  faultyClient.destroy();
  retryingClient.destroy();
  await dynamo.close();
});

beforeEach(() => {
  plan = undefined;
  writes = 0;
  faultyWrites.length = 0;
  loseNextAnswerOf = undefined;
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

const seal: SealFor = (entry) => `sealed(${entry.messageId}@${entry.seq})`;

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

function idsOf(outcome: AppendOutcome): { messageId: string; seq: number } {
  return outcome.status === 'stored'
    ? { messageId: outcome.entry.messageId, seq: outcome.entry.seq }
    : { messageId: outcome.messageId, seq: outcome.seq };
}

async function logItems(conversationId: string): Promise<LogEntry[]> {
  const items: LogEntry[] = [];
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
    for (const item of page.Items ?? []) {
      const { seq, messageId, senderId, senderDevice, clientMessageId, sentAt, sealed } = item;
      items.push({ conversationId, seq, messageId, senderId, senderDevice, clientMessageId, sentAt, sealed });
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey !== undefined);
  return items;
}

async function headLastSeq(conversationId: string): Promise<unknown> {
  const { Item } = await dynamo.doc.send(
    new GetCommand({ TableName: TABLES.messages, Key: { conversationId, seq: 0 }, ConsistentRead: true }),
  );
  return Item?.lastSeq;
}

/** The promises every crash point must keep, checked after the resend. */
async function expectConverged(
  healthy: DynamoMessageLog,
  first: MessageDraft,
  resend: AppendOutcome,
  expectedCount: number,
): Promise<void> {
  const items = await logItems(first.conversationId);
  expect(items.map((item) => item.seq)).toEqual(range(1, expectedCount));
  const mine = items.filter((item) => item.senderId === first.senderId && item.clientMessageId === first.clientMessageId);
  expect(mine).toHaveLength(1);
  expect(mine[0]).toMatchObject(idsOf(resend));
  // The body was sealed for the seq it ended at.
  expect(mine[0]?.sealed).toBe(`sealed(${idsOf(resend).messageId}@${idsOf(resend).seq})`);

  const again = await healthy.append({ ...first, messageId: randomUUID() }, seal, expectedCount);
  expect(again).toEqual({ status: 'duplicate', ...idsOf(resend), sentAt: first.sentAt });
  await expect(healthy.lastSeq(first.conversationId)).resolves.toBe(expectedCount);
}

async function seedMessages(healthy: DynamoMessageLog, conversationId: string, count: number): Promise<void> {
  for (let seq = 1; seq <= count; seq += 1) {
    const outcome = await healthy.append(draft(conversationId, { senderId: `seed-${seq}` }), seal, seq - 1);
    expect(idsOf(outcome).seq).toBe(seq);
  }
}

interface Scenario {
  name: string;
  /** The hint the dying process uses: right (3) or stale (1, so it loses seq 2 and has to move). */
  hint: number;
  /** The writes of that path, in order (retention adds the head raise at the end). */
  writes: string[];
}

const SCENARIOS: Scenario[] = [
  { name: 'right hint', hint: 3, writes: ['claim', 'log put'] },
  { name: 'stale hint', hint: 1, writes: ['claim', 'log put (taken)', 'move attempt (CAS)', 'log put'] },
];

describe.each([
  { retention: 'without retention', retentionSeconds: undefined },
  { retention: 'with retention', retentionSeconds: 24 * 3600 },
])('DynamoMessageLog crash points, $retention', ({ retentionSeconds }) => {
  const options = retentionSeconds === undefined ? {} : { retentionSeconds };
  let healthy: DynamoMessageLog;
  let faulty: DynamoMessageLog;

  beforeAll(() => {
    healthy = new DynamoMessageLog(dynamo.doc, TABLES, clock, options);
    faulty = new DynamoMessageLog(faultyClient.doc, TABLES, clock, options);
  });

  it('takes the writes each scenario lists (so every crash point below is a real one)', async () => {
    for (const scenario of SCENARIOS) {
      const conversationId = randomUUID();
      await seedMessages(healthy, conversationId, 3);
      faultyWrites.length = 0;
      writes = 0;

      const outcome = await faulty.append(draft(conversationId), seal, scenario.hint);

      expect(idsOf(outcome).seq).toBe(4);
      const expected = scenario.writes.length + (retentionSeconds === undefined ? 0 : 1);
      expect(faultyWrites).toHaveLength(expected);
      expect(faultyWrites[0]).toEqual({ command: 'PutItemCommand', table: TABLES.idempotency });
      expect(faultyWrites[scenario.writes.length - 1]).toEqual({ command: 'PutItemCommand', table: TABLES.messages });
    }
  });

  const points = SCENARIOS.flatMap((scenario) =>
    [...scenario.writes, ...(retentionSeconds === undefined ? [] : ['head raise'])].flatMap((write, index) =>
      (['before', 'after'] as const).flatMap((when) =>
        [false, true].map((interloper) => ({ scenario, write, index: index + 1, when, interloper })),
      ),
    ),
  );

  it.each(points)(
    '$scenario.name: dies $when $write (write $index), another sender meanwhile: $interloper',
    async ({ scenario, index, when, interloper }) => {
      const conversationId = randomUUID();
      await seedMessages(healthy, conversationId, 3);
      const first = draft(conversationId);
      plan = {
        write: index,
        when,
        meanwhile: interloper
          ? async () => {
              await healthy.append(draft(conversationId, { senderId: 'bob' }), seal);
            }
          : undefined,
      };
      writes = 0;

      const died: unknown = await faulty.append(first, seal, scenario.hint).catch((error: unknown) => error);
      expect(plan).toBeUndefined();
      expect(died).toBeInstanceOf(Error);
      const claimWritten = index > 1 || when === 'after';

      // The sender retries with the same clientMessageId; this process picks a new messageId for it.
      const resend = await healthy.append({ ...first, messageId: randomUUID() }, seal);

      if (claimWritten) expect(idsOf(resend).messageId).toBe(first.messageId);
      const total = 3 + (interloper ? 1 : 0) + 1;
      await expectConverged(healthy, first, resend, total);
      if (retentionSeconds !== undefined) await expect(headLastSeq(conversationId)).resolves.toBe(total);
    },
  );

  it('converges when the dying process, two resends and other senders all race', async () => {
    const conversationId = randomUUID();
    await seedMessages(healthy, conversationId, 3);
    const first = draft(conversationId);
    plan = { write: 1, when: 'after' };
    writes = 0;
    await expect(faulty.append(first, seal, 3)).rejects.toBeInstanceOf(Error);

    const outcomes = await Promise.all([
      healthy.append({ ...first, messageId: randomUUID() }, seal, 1),
      healthy.append({ ...first, messageId: randomUUID() }, seal),
      ...range(1, 6).map((i) => healthy.append(draft(conversationId, { senderId: `other-${i}` }), seal, 3)),
    ]);

    const [resendA, resendB] = outcomes;
    expect(resendA).toBeDefined();
    expect(resendB).toBeDefined();
    if (resendA === undefined || resendB === undefined) return;
    expect([resendA.status, resendB.status].sort()).toEqual(['duplicate', 'stored']);
    expect(idsOf(resendA)).toEqual(idsOf(resendB));
    expect(idsOf(resendA).messageId).toBe(first.messageId);
    await expectConverged(healthy, first, resendA, 10);
  });
});

describe('DynamoMessageLog when the SDK retries a write whose answer was lost', () => {
  let retrying: DynamoMessageLog;
  let healthy: DynamoMessageLog;

  beforeAll(() => {
    retrying = new DynamoMessageLog(retryingClient.doc, TABLES, clock);
    healthy = new DynamoMessageLog(dynamo.doc, TABLES, clock);
  });

  it.each([
    { lost: 'the claim', table: TABLES.idempotency },
    { lost: 'the log put', table: TABLES.messages },
  ])('answers stored (not duplicate) when the answer of $lost was lost and retried', async ({ table }) => {
    const conversationId = randomUUID();
    await seedMessages(healthy, conversationId, 2);
    const first = draft(conversationId);
    loseNextAnswerOf = table;

    const outcome = await retrying.append(first, seal, 2);

    expect(loseNextAnswerOf).toBeUndefined();
    expect(outcome).toEqual({
      status: 'stored',
      completed: false,
      entry: expect.objectContaining({ messageId: first.messageId, seq: 3, sealed: `sealed(${first.messageId}@3)` }),
    });
    await expectConverged(healthy, first, outcome, 3);
  });
});

import { randomUUID } from 'node:crypto';
import {
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
  type QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { MESSAGE_ID_INDEX } from '../../deploy/tables.js';
import { CorruptRecordError, UnavailableError } from '../errors.js';
import type { AppendOutcome, ChangeOutcome, Clock, LogChange, LogEntry, LogPage, LogTop, MessageDraft, MessageLog, SealFor } from '../ports.js';
import { callAws, isConditionFailure } from './aws-errors.js';

const DEFAULT_IDEMPOTENCY_WINDOW_SECONDS = 7 * 24 * 3600;
/** Rounds of "that seq was taken, move on" before the sender is asked to resend (same clientMessageId). */
const MAX_ROUNDS = 50;
/** Items read at most to find acked ids above a device's position before falling back to the index. */
const SEQS_SCAN_LIMIT = 500;
/** Items read after a lost seq: enough to see past the writers racing for the same conversation. */
const HOLDER_RANGE = 25;
/** The head item's seq: below every message, so `seq > 0` never reads it. */
const HEAD_SEQ = 0;

export interface DynamoMessageLogTables {
  messages: string;
  idempotency: string;
}

export interface DynamoMessageLogOptions {
  /** History retention: messages carry `expiresAt` and readers skip them once it passed. @default keep forever */
  readonly retentionSeconds?: number;
  /** How long a clientMessageId is remembered after its sentAt (never longer than the retention). @default 7 days */
  readonly idempotencyWindowSeconds?: number;
}

/** The idempotency item of one (sender, clientMessageId): which message and which seq it is being written at. */
interface Claim {
  messageId: string;
  sentAt: number;
  attempt: number;
}


/**
 * The message log in DynamoDB, without transactions. An append claims its clientMessageId first (the
 * idempotency item records the seq it is being written at, `attempt`), then writes the message at exactly that
 * seq. The attempt moves only after the log shows that seq holds another message, so one message never lands
 * at two seqs; and a seq is only tried once the one below it was seen to exist, so there are no holes. A crash
 * between any two writes leaves a claim that the resend (same clientMessageId) adopts and completes.
 *
 * Each log item also carries `writer`, a nonce per append call, so that a put the SDK retried after losing its
 * answer is still answered `stored` (and fanned out) rather than `duplicate`.
 *
 * Callers never pass a `lastSeqHint` above a seq that exists (the seq cache is raised only after a write).
 * With a retention, a hint older than the retention could point below seqs TTL has already deleted, and
 * such a seq would be written again: a hint must come from a write within the retention.
 */
export class DynamoMessageLog implements MessageLog {
  private readonly retentionSeconds: number | undefined;
  private readonly idempotencyWindowSeconds: number;

  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly tables: DynamoMessageLogTables,
    private readonly clock: Clock,
    options: DynamoMessageLogOptions = {},
  ) {
    this.retentionSeconds = options.retentionSeconds;
    const window = options.idempotencyWindowSeconds ?? DEFAULT_IDEMPOTENCY_WINDOW_SECONDS;
    // A claim must expire before any message it points at can: a claim outliving them would make a resend
    // write into a seq that TTL freed (a repeat). Past the retention the first message is gone anyway.
    this.idempotencyWindowSeconds =
      this.retentionSeconds === undefined ? window : Math.min(window, this.retentionSeconds);
  }

  async append(draft: MessageDraft, seal: SealFor, lastSeqHint?: number): Promise<AppendOutcome> {
    const { conversationId } = draft;
    const key = idempotencyKey(draft.senderId, draft.clientMessageId);
    const first = Math.max(lastSeqHint ?? (await this.lastSeq(conversationId)), HEAD_SEQ) + 1;
    const { claim, adopted } = await this.claim(draft, key, first);
    // Tells this call's own write (seen again after an SDK retry) from anyone else's.
    const writer = randomUUID();
    let { attempt } = claim;

    for (let round = 0; round < MAX_ROUNDS; round += 1) {
      const fields: Omit<LogEntry, 'sealed'> = {
        conversationId,
        seq: attempt,
        messageId: claim.messageId,
        senderId: draft.senderId,
        senderDevice: draft.senderDevice,
        clientMessageId: draft.clientMessageId,
        sentAt: claim.sentAt,
      };
      const entry: LogEntry = { ...fields, sealed: seal(fields) };
      if (await this.putEntry(entry, writer)) {
        await this.raiseHead(conversationId, attempt);
        return { status: 'stored', entry, completed: adopted };
      }

      // One read for both questions: who holds `attempt`, and where the log ends above it.
      const { holder, top } = await this.holderAndTop(conversationId, attempt);
      // Absent here means TTL removed it since the failed put: it existed all the same, so it is not free.
      if (holder !== undefined && holder.entry.messageId === claim.messageId) {
        // The head may have missed this seq if the write that stored it died before raising it.
        await this.raiseHead(conversationId, attempt);
        // Our own put, retried by the SDK after an answer was lost: this call did store it.
        if (holder.writer === writer) return { status: 'stored', entry: holder.entry, completed: adopted };
        // An earlier attempt, or a concurrent resend of the same clientMessageId, stored it: nothing new here.
        return { status: 'duplicate', messageId: claim.messageId, seq: attempt, sentAt: claim.sentAt };
      }

      // Another message holds `attempt`, so `attempt` exists: trying above it (and above lastSeq) keeps no hole.
      const moved = Math.max(top ?? (await this.lastSeq(conversationId)), attempt) + 1;
      if (await this.moveAttempt(conversationId, key, claim.messageId, attempt, moved)) {
        attempt = moved;
        continue;
      }
      // A concurrent attempt of the same clientMessageId moved it first: follow it.
      const current = await this.readClaim(conversationId, key);
      if (current === undefined || current.messageId !== claim.messageId) {
        throw new UnavailableError(
          'the idempotency record changed during the send; resend with the same clientMessageId',
        );
      }
      attempt = current.attempt;
    }
    throw new UnavailableError('the conversation is too busy; resend with the same clientMessageId');
  }

  async lastSeq(conversationId: string): Promise<number> {
    return (await this.latest(conversationId)).lastSeq;
  }

  async get(conversationId: string, seq: number): Promise<LogEntry | undefined> {
    if (seq <= HEAD_SEQ) return undefined;
    const item = await this.logItem(conversationId, seq);
    return item !== undefined && this.isLive(item) ? toEntry(item) : undefined;
  }

  async seqsOf(conversationId: string, messageIds: readonly string[], afterSeq?: number): Promise<Map<string, number>> {
    const seqs = new Map<string, number>();
    let unique = [...new Set(messageIds)];
    // Several ids above a known seq: one read of the log's ids there usually finds them all.
    if (afterSeq !== undefined && unique.length > 1) {
      const wanted = new Set(unique);
      let startKey: Record<string, unknown> | undefined;
      let scanned = 0;
      do {
        const page = await callAws('the message log', () =>
          this.db.send(
            new QueryCommand({
              TableName: this.tables.messages,
              KeyConditionExpression: 'conversationId = :c AND seq > :after',
              ExpressionAttributeValues: { ':c': conversationId, ':after': Math.max(afterSeq, HEAD_SEQ) },
              ProjectionExpression: 'seq, messageId',
              ConsistentRead: true,
              Limit: SEQS_SCAN_LIMIT,
              ExclusiveStartKey: startKey,
            }),
          ),
        );
        for (const item of page.Items ?? []) {
          if (typeof item.messageId === 'string' && typeof item.seq === 'number' && wanted.delete(item.messageId)) {
            seqs.set(item.messageId, item.seq);
          }
        }
        scanned += page.Items?.length ?? 0;
        startKey = page.LastEvaluatedKey;
      } while (startKey !== undefined && wanted.size > 0 && scanned < SEQS_SCAN_LIMIT);
      unique = [...wanted];
    }
    // The index is KEYS_ONLY (never a copy of the bodies), so an expired message not yet removed by TTL still
    // maps to its seq; the callers (acks) treat that as harmless.
    const found = await Promise.all(
      unique.map(async (messageId) => {
        const result = await callAws('the message log', () =>
          this.db.send(
            new QueryCommand({
              TableName: this.tables.messages,
              IndexName: MESSAGE_ID_INDEX,
              KeyConditionExpression: 'conversationId = :c AND messageId = :m',
              ExpressionAttributeValues: { ':c': conversationId, ':m': messageId },
              ConsistentRead: true,
              Limit: 1,
            }),
          ),
        );
        const seq = result.Items?.[0]?.seq;
        return typeof seq === 'number' && seq > HEAD_SEQ ? ([messageId, seq] as const) : undefined;
      }),
    );
    for (const pair of found) if (pair !== undefined) seqs.set(pair[0], pair[1]);
    return seqs;
  }

  async page(
    conversationId: string,
    range: { afterSeq?: number; beforeSeq?: number; limit: number; maxBytes: number; newestFirst: boolean },
  ): Promise<LogPage> {
    const low = Math.max(range.afterSeq ?? HEAD_SEQ, HEAD_SEQ) + 1;
    const high = range.beforeSeq === undefined ? undefined : range.beforeSeq - 1;
    const limit = Math.max(1, Math.floor(range.limit));
    if (high !== undefined && high < low) return { entries: [], hasMore: false };

    const bounds =
      high === undefined
        ? {
            KeyConditionExpression: 'conversationId = :c AND seq >= :lo',
            ExpressionAttributeValues: { ':c': conversationId, ':lo': low },
          }
        : {
            KeyConditionExpression: 'conversationId = :c AND seq BETWEEN :lo AND :hi',
            ExpressionAttributeValues: { ':c': conversationId, ':lo': low, ':hi': high },
          };
    const entries: LogEntry[] = [];
    let bytes = 0;
    let hasMore = false;
    let startKey: Record<string, unknown> | undefined;
    reading: do {
      // One more than still fits, so a full page knows whether anything is left without another request.
      const input: QueryCommandInput = {
        TableName: this.tables.messages,
        ...bounds,
        ScanIndexForward: !range.newestFirst,
        ConsistentRead: true,
        Limit: limit - entries.length + 1,
        ExclusiveStartKey: startKey,
      };
      const result = await callAws('the message log', () => this.db.send(new QueryCommand(input)));
      for (const item of result.Items ?? []) {
        if (!this.isLive(item)) continue;
        const entry = toEntry(item);
        // The first entry always goes in, however large: a page never comes back empty while entries remain.
        if (entries.length >= limit || (entries.length > 0 && bytes + entry.sealed.length > range.maxBytes)) {
          hasMore = true;
          break reading;
        }
        entries.push(entry);
        bytes += entry.sealed.length;
      }
      startKey = result.LastEvaluatedKey;
    } while (startKey !== undefined);
    if (range.newestFirst) entries.reverse();
    return { entries, hasMore };
  }

  async change(conversationId: string, seq: number, by: { messageId: string; senderId: string }, change: LogChange): Promise<ChangeOutcome> {
    if (seq <= HEAD_SEQ) return { status: 'missing' };
    // An edit replaces the sealed body and its editedAt together (the body is sealed for that editedAt); a
    // delete removes the sealed body: the tombstone keeps the ids, the seq and the sender, never the text.
    const update =
      change.kind === 'edit'
        ? { expression: 'SET sealed = :sealed, editedAt = :at', values: { ':sealed': change.sealed, ':at': change.editedAt } }
        : { expression: 'SET deleted = :deleted, deletedAt = :at REMOVE sealed, editedAt', values: { ':deleted': true, ':at': change.deletedAt } };
    try {
      const result = await callAws('the message log', () =>
        this.db.send(
          new UpdateCommand({
            TableName: this.tables.messages,
            Key: { conversationId, seq },
            UpdateExpression: update.expression,
            ConditionExpression:
              'messageId = :m AND senderId = :u AND attribute_not_exists(deleted) AND (attribute_not_exists(expiresAt) OR expiresAt > :now)',
            ExpressionAttributeValues: { ...update.values, ':m': by.messageId, ':u': by.senderId, ':now': this.nowSeconds() },
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      if (result.Attributes === undefined) throw new CorruptRecordError(`message ${conversationId}/${seq} came back empty from its update`);
      return { status: 'changed', entry: toEntry(result.Attributes) };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    // Refused: find out why (rare, so the read is not paid on the common path).
    const item = await this.logItem(conversationId, seq);
    if (item === undefined || !this.isLive(item) || item.messageId !== by.messageId || item.senderId !== by.senderId) return { status: 'missing' };
    if (item.deleted === true) return { status: 'deleted', entry: toEntry(item) };
    throw new UnavailableError('the message changed during the update; retry');
  }

  async latest(conversationId: string): Promise<LogTop> {
    // TTL deletes expired messages in no particular order: the top item left may sit below a deleted one, so
    // with a retention the head item (raised after every write) is read too.
    const [top, fromHead] = await Promise.all([
      this.topItem(conversationId),
      this.retentionSeconds === undefined ? Promise.resolve(0) : this.headSeq(conversationId),
    ]);
    if (top === undefined) return { lastSeq: fromHead };
    if (top.seq === HEAD_SEQ) return { lastSeq: Math.max(headValue(top), fromHead) };
    const lastSeq = Math.max(seqOf(top), fromHead);
    // An expired top item means nothing readable is left (messages expire in the order they were written).
    return this.isLive(top) && typeof top.sentAt === 'number' ? { lastSeq, lastMessageAt: top.sentAt } : { lastSeq };
  }

  async countByOthers(conversationId: string, afterSeq: number, userId: string): Promise<number> {
    const live = this.retentionSeconds === undefined ? '' : ' AND (attribute_not_exists(expiresAt) OR expiresAt > :now)';
    const input: Omit<QueryCommandInput, 'ExclusiveStartKey'> = {
      TableName: this.tables.messages,
      KeyConditionExpression: 'conversationId = :c AND seq > :after',
      // Tombstones (`deleted`) and the reader's own messages are never unread.
      FilterExpression: `senderId <> :me AND attribute_not_exists(deleted)${live}`,
      ExpressionAttributeValues: {
        ':c': conversationId,
        ':after': Math.max(afterSeq, HEAD_SEQ),
        ':me': userId,
        ...(this.retentionSeconds === undefined ? {} : { ':now': this.nowSeconds() }),
      },
      Select: 'COUNT',
      ConsistentRead: true,
    };
    let count = 0;
    let startKey: Record<string, unknown> | undefined;
    do {
      const result = await callAws('the message log', () => this.db.send(new QueryCommand({ ...input, ExclusiveStartKey: startKey })));
      count += result.Count ?? 0;
      startKey = result.LastEvaluatedKey;
    } while (startKey !== undefined);
    return count;
  }

  /** Step 2: the claim. Ours if absent or past its window; else the earlier attempt's, which this call completes. */
  private async claim(draft: MessageDraft, key: string, attempt: number): Promise<{ claim: Claim; adopted: boolean }> {
    const claim: Claim = { messageId: draft.messageId, sentAt: draft.sentAt, attempt };
    const expiresAt = Math.floor(draft.sentAt / 1000) + this.idempotencyWindowSeconds;
    // Twice at most: the second try only happens if the item vanished between the failed put and the read.
    for (let tries = 0; tries < 2; tries += 1) {
      try {
        await callAws('the idempotency table', () =>
          this.db.send(
            new PutCommand({
              TableName: this.tables.idempotency,
              Item: { conversationId: draft.conversationId, key, ...claim, expiresAt },
              ConditionExpression: 'attribute_not_exists(#k) OR expiresAt < :now',
              ExpressionAttributeNames: { '#k': 'key' },
              ExpressionAttributeValues: { ':now': this.nowSeconds() },
            }),
          ),
        );
        return { claim, adopted: false };
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
      }
      const earlier = await this.readClaim(draft.conversationId, key);
      // Our own messageId means our own put, retried by the SDK after its answer was lost: nothing to adopt.
      if (earlier !== undefined) return { claim: earlier, adopted: earlier.messageId !== draft.messageId };
    }
    throw new UnavailableError('the idempotency record is changing; resend with the same clientMessageId');
  }

  private async readClaim(conversationId: string, key: string): Promise<Claim | undefined> {
    const result = await callAws('the idempotency table', () =>
      this.db.send(
        new GetCommand({ TableName: this.tables.idempotency, Key: { conversationId, key }, ConsistentRead: true }),
      ),
    );
    if (result.Item === undefined) return undefined;
    const { messageId, sentAt, attempt } = result.Item;
    if (typeof messageId !== 'string' || typeof sentAt !== 'number' || typeof attempt !== 'number') {
      throw new CorruptRecordError(`idempotency item ${conversationId}/${key} is malformed`);
    }
    return { messageId, sentAt, attempt };
  }

  /** The compare-and-swap that lets the claim follow its message to a higher seq. */
  private async moveAttempt(
    conversationId: string,
    key: string,
    messageId: string,
    from: number,
    to: number,
  ): Promise<boolean> {
    try {
      await callAws('the idempotency table', () =>
        this.db.send(
          new UpdateCommand({
            TableName: this.tables.idempotency,
            Key: { conversationId, key },
            UpdateExpression: 'SET attempt = :to',
            ConditionExpression: 'attempt = :from AND messageId = :m',
            ExpressionAttributeValues: { ':to': to, ':from': from, ':m': messageId },
          }),
        ),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  /** Step 3: the message itself, only where no item is. */
  private async putEntry(entry: LogEntry, writer: string): Promise<boolean> {
    const item: Record<string, unknown> = { ...entry, writer };
    // From the write, not sentAt: a completed resend keeps the first sentAt but must stay readable.
    if (this.retentionSeconds !== undefined) item.expiresAt = this.nowSeconds() + this.retentionSeconds;
    try {
      await callAws('the message log', () =>
        this.db.send(
          new PutCommand({ TableName: this.tables.messages, Item: item, ConditionExpression: 'attribute_not_exists(seq)' }),
        ),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  /** The stored item at a seq whatever its expiry: which message holds the seq, and who wrote it, is what matters. */
  private async logItem(conversationId: string, seq: number): Promise<Record<string, unknown> | undefined> {
    const result = await callAws('the message log', () =>
      this.db.send(new GetCommand({ TableName: this.tables.messages, Key: { conversationId, seq }, ConsistentRead: true })),
    );
    return result.Item;
  }

  private async raiseHead(conversationId: string, seq: number): Promise<void> {
    if (this.retentionSeconds === undefined) return;
    try {
      await callAws('the message log', () =>
        this.db.send(
          new UpdateCommand({
            TableName: this.tables.messages,
            Key: { conversationId, seq: HEAD_SEQ },
            UpdateExpression: 'SET lastSeq = :s',
            ConditionExpression: 'attribute_not_exists(lastSeq) OR lastSeq < :s',
            ExpressionAttributeValues: { ':s': seq },
          }),
        ),
      );
    } catch (error) {
      // Someone raised it higher already.
      if (!isConditionFailure(error)) throw error;
    }
  }

  /** The item with the highest seq (the head item when the log holds no message), in one consistent read. */
  private async topItem(conversationId: string): Promise<Record<string, unknown> | undefined> {
    const result = await callAws('the message log', () =>
      this.db.send(
        new QueryCommand({
          TableName: this.tables.messages,
          KeyConditionExpression: 'conversationId = :c',
          ExpressionAttributeValues: { ':c': conversationId },
          ScanIndexForward: false,
          ConsistentRead: true,
          Limit: 1,
        }),
      ),
    );
    return result.Items?.[0];
  }

  /**
   * The item at `seq` and the highest seq at or above it, in one consistent Query of a short range. `top` is
   * undefined when the range did not reach the end of the log, or when a retention is configured (then the
   * head item may know a higher seq whose message TTL already removed): the caller reads lastSeq instead.
   */
  private async holderAndTop(
    conversationId: string,
    seq: number,
  ): Promise<{ holder: { entry: LogEntry; writer: string | undefined } | undefined; top: number | undefined }> {
    const result = await callAws('the message log', () =>
      this.db.send(
        new QueryCommand({
          TableName: this.tables.messages,
          KeyConditionExpression: 'conversationId = :c AND seq >= :s',
          ExpressionAttributeValues: { ':c': conversationId, ':s': seq },
          ConsistentRead: true,
          Limit: HOLDER_RANGE,
        }),
      ),
    );
    const items = result.Items ?? [];
    const first = items[0];
    const holder = first !== undefined && first.seq === seq ? { entry: toEntry(first), writer: typeof first.writer === 'string' ? first.writer : undefined } : undefined;
    const last = items[items.length - 1];
    const top = result.LastEvaluatedKey === undefined && this.retentionSeconds === undefined && last !== undefined ? seqOf(last) : undefined;
    return { holder, top };
  }

  private async headSeq(conversationId: string): Promise<number> {
    const head = await this.logItem(conversationId, HEAD_SEQ);
    return head === undefined ? 0 : headValue(head);
  }

  private isLive(item: Record<string, unknown>): boolean {
    if (item.seq === HEAD_SEQ) return false;
    const { expiresAt } = item;
    return typeof expiresAt !== 'number' || expiresAt * 1000 > this.clock.now();
  }

  private nowSeconds(): number {
    return Math.floor(this.clock.now() / 1000);
  }
}

/** The idempotency sort key: encoding the sender keeps `#` a separator. */
export function idempotencyKey(senderId: string, clientMessageId: string): string {
  return `${encodeURIComponent(senderId)}#${clientMessageId}`;
}

function seqOf(item: Record<string, unknown>): number {
  if (typeof item.seq !== 'number') throw new CorruptRecordError('message item without a numeric seq');
  return item.seq;
}

function headValue(item: Record<string, unknown>): number {
  return typeof item.lastSeq === 'number' ? item.lastSeq : 0;
}

/**
 * A log item as an entry. An item whose keys are sound but whose other fields were damaged is still an entry —
 * its body then never opens (the associated data no longer matches, or there is no sealed text), so readers
 * answer it `undecryptable` and it never blocks the messages around it. Only an item without its keys is refused.
 */
function toEntry(item: Record<string, unknown>): LogEntry {
  const { conversationId, seq, messageId, senderId, senderDevice, clientMessageId, sentAt, sealed, editedAt, deleted } = item;
  if (typeof conversationId !== 'string' || typeof seq !== 'number' || typeof messageId !== 'string') {
    throw new CorruptRecordError(`message item ${String(conversationId)}/${String(seq)} has no keys`);
  }
  const text = (value: unknown) => (typeof value === 'string' ? value : '');
  return {
    conversationId,
    seq,
    messageId,
    senderId: text(senderId),
    senderDevice: text(senderDevice),
    clientMessageId: text(clientMessageId),
    sentAt: typeof sentAt === 'number' ? sentAt : 0,
    ...(typeof editedAt === 'number' ? { editedAt } : {}),
    ...(deleted === true ? { deleted: true as const } : {}),
    sealed: text(sealed),
  };
}

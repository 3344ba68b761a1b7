import { ForbiddenError, UnavailableError, errorSummary } from '../errors.js';
import type { Binding, Device, DevicePosition, LogEntry, Membership, Services, Subscription } from '../ports.js';
import {
  MAX_ANSWER_BYTES,
  type AckFrame,
  type AckedFrame,
  type GetHistoryFrame,
  type GetUnackedFrame,
  type HistoryFrame,
  type MessageFrame,
  type SendMessageFrame,
  type SentFrame,
  type TypingEventFrame,
  type TypingFrame,
  type UnackedFrame,
} from '../protocol.js';
import { assertFanoutBudget, spendFanoutBudget, withinFanoutBudget, type BudgetServices } from './budgets.js';
import { deliver, liveRecipients, prune, type DeliveryServices } from './delivery.js';
import { assertBodyFits, fitEntries, pageEntryOf } from './message-frames.js';
import { isOwn, overOwn, samePosition, withAcks } from './positions.js';
import { requestIdOf } from './request-id.js';

export type TypingServices = DeliveryServices & BudgetServices & Pick<Services, 'clock' | 'registry' | 'roster' | 'conversationSize' | 'typing' | 'typingGate'>;
export type SendMessageServices = DeliveryServices &
  BudgetServices &
  Pick<Services, 'clock' | 'registry' | 'roster' | 'sealer' | 'newMessageId' | 'messages' | 'seqCache' | 'notify'>;
export type AckServices = Pick<Services, 'messages' | 'positions' | 'seqCache' | 'log'>;
export type PendingServices = Pick<Services, 'messages' | 'positions' | 'seqCache' | 'sealer' | 'clock' | 'log'>;
export type GetUnackedServices = PendingServices & Pick<Services, 'members'>;
export type GetHistoryServices = Pick<Services, 'messages' | 'members' | 'sealer' | 'log'>;

/** Sealed bytes are about 4/3 of the body: twice the answer size of sealed data is enough to fill one page. */
const PAGE_SEALED_BYTES = 2 * MAX_ANSWER_BYTES;
/** Log pages read at most for one `unacked` answer (the device's own messages are skipped). */
const MAX_PENDING_READS = 8;
/** Attempts at saving a position when another container saved it first. */
const MAX_SAVE_ATTEMPTS = 5;

const deviceOf = (binding: Binding): Device => ({ userId: binding.userId, deviceId: binding.deviceId });

/** The conversation's last seq: the cache when it has it (never above the truth), else the log. */
export async function lastSeqOf(services: Pick<Services, 'messages' | 'seqCache'>, conversationId: string): Promise<number> {
  return (await services.seqCache.get(conversationId)) ?? (await services.messages.lastSeq(conversationId));
}

/**
 * `seq`, or the conversation's last seq when the log ends below it. The cache may lag the log (a raise that
 * failed): only the log can say a seq is past the end, so it is asked whenever the cache is below `seq`.
 */
export async function atMostLastSeq(services: Pick<Services, 'messages' | 'seqCache'>, conversationId: string, seq: number): Promise<number> {
  const cached = await services.seqCache.get(conversationId);
  if (cached !== undefined && cached >= seq) return seq;
  return Math.min(seq, await services.messages.lastSeq(conversationId));
}

/**
 * `typing`: to every other user's connections, coalesced: a repeated state of the user in the conversation goes
 * out at most once per window, a change of state at once (the gate, shared by every container and so by every
 * device of the user). A `start` expires on the receivers at `expiresAt`; a `stop` is over at once. Above the
 * size limit nothing goes out, and that is checked first: the roster's count costs no round trip (it is this
 * container's snapshot), and a frame that cannot go out must not count as sent in the gate. While the
 * conversation's or the user's fan-out budget is in debt the frame is dropped (typing is best effort); its posts
 * are spent from the budgets when it goes out.
 */
export async function typing(services: TypingServices, binding: Binding, frame: TypingFrame, endpoint: string): Promise<void> {
  if (frame.userId !== undefined && frame.userId !== binding.userId) {
    throw new ForbiddenError('userId does not match this connection');
  }
  const conversationId = binding.conversationId;
  if ((await services.roster.count(conversationId)) > services.conversationSize.largeConversationMembers) return;
  if (!(await withinFanoutBudget(services, binding))) return;
  const at = services.clock.now();
  if (!(await services.typingGate.shouldSend(conversationId, binding.userId, frame.state, at))) return;
  const out: TypingEventFrame = {
    type: 'typing',
    conversationId,
    userId: binding.userId,
    state: frame.state,
    at,
    expiresAt: frame.state === 'start' ? at + services.typing.expiresMs : at,
  };
  const subscriptions = await services.registry.listByConversation(conversationId);
  const others = subscriptions.filter((c) => c.userId !== binding.userId);
  const recipients = await liveRecipients(services, conversationId, others, endpoint);
  await spendFanoutBudget(services, binding, recipients.length);
  await deliver(services, endpoint, { kind: 'event', frame: out }, recipients);
}

/**
 * `sendMessage`: the message is written to the log (DynamoDB) under the next seq, idempotent on
 * clientMessageId; then `sent` goes to the sender first (through the Management API, so it does not wait for the
 * fan-out), then the message to the other live connections. Returns `sent` as the route's answer only when it
 * could not be posted. Pending is not written per device: it is the log after each device's position.
 * While the conversation's or the sender's fan-out budget is in debt the send is refused before anything is
 * written (`rate_limited` with `retryAfterMs`; see budgets.ts); its posts are spent once it is stored.
 */
export async function sendMessage(
  services: SendMessageServices,
  binding: Binding,
  frame: SendMessageFrame,
  endpoint: string,
): Promise<SentFrame | undefined> {
  const conversationId = binding.conversationId;
  const draft = {
    conversationId,
    senderId: binding.userId,
    senderDevice: binding.deviceId,
    clientMessageId: frame.clientMessageId,
    messageId: services.newMessageId(),
    sentAt: services.clock.now(),
  };
  assertBodyFits(draft, frame.body);
  await assertFanoutBudget(services, binding, 'stored');
  const hint = await services.seqCache.get(conversationId);
  let outcome;
  try {
    outcome = await services.messages.append(draft, (fields) => services.sealer.seal(fields, frame.body), hint);
  } catch (error) {
    if (error instanceof UnavailableError) {
      // A write that timed out may still have landed: resending the same clientMessageId completes it, never twice.
      throw new UnavailableError('the message log did not answer; resend with the same clientMessageId (it is never stored twice)', {
        cause: error,
      });
    }
    throw error;
  }
  if (outcome.status === 'duplicate') {
    return {
      type: 'sent',
      conversationId,
      clientMessageId: frame.clientMessageId,
      messageId: outcome.messageId,
      seq: outcome.seq,
      sentAt: outcome.sentAt,
      duplicate: true,
      ...requestIdOf(frame),
    };
  }
  const entry = outcome.entry;
  // The recipients are looked up once the message is stored (beside the `sent` post, so `sent` does not wait):
  // a device that subscribes during the append then either is in the list, or its resume page already has the
  // message. (Looked up before, it could miss both and learn of the message only from a later one.) Its failure
  // costs only live delivery.
  const connections = services.registry.listByConversation(conversationId).then(
    (list) => ({ ok: true as const, list }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  await services.seqCache.raise(conversationId, entry.seq);
  const sent: SentFrame = {
    type: 'sent',
    conversationId,
    clientMessageId: frame.clientMessageId,
    messageId: entry.messageId,
    seq: entry.seq,
    sentAt: entry.sentAt,
    duplicate: false,
    ...requestIdOf(frame),
  };
  const sentOutcome = await services.posterFor(endpoint).post(binding.connectionId, JSON.stringify(sent));
  if (sentOutcome === 'gone') await prune(services, binding.connectionId);
  const sentPosted = sentOutcome === 'delivered';
  // Push notifications are decided off the send path: one job of ids to the notifier, beside live delivery.
  const notified = enqueueNotify(services, entry);
  await deliverLive(services, binding, entry, frame.body, endpoint, await connections);
  await notified;
  return sentPosted ? undefined : sent;
}

/** Hands the stored message's ids to the notifier. Never fails the send: a lost job costs only its pushes. */
async function enqueueNotify(services: SendMessageServices, entry: LogEntry): Promise<void> {
  const { conversationId, seq, messageId, senderId, senderDevice } = entry;
  try {
    await services.notify.enqueue({ conversationId, seq, messageId, senderId, senderDevice });
    services.metrics.count('notify_jobs');
  } catch (error) {
    services.metrics.count('notify_enqueue_failed');
    services.log.warn('notify job not enqueued; no push for this message', { messageId, conversationId, seq, error: errorSummary(error) });
  }
}

async function deliverLive(
  services: SendMessageServices,
  binding: Binding,
  entry: LogEntry,
  body: string,
  endpoint: string,
  lookup: { ok: true; list: Subscription[] } | { ok: false; error: unknown },
): Promise<void> {
  if (!lookup.ok) {
    services.log.warn('recipient lookup failed; message stays pending', { messageId: entry.messageId, error: errorSummary(lookup.error) });
    return;
  }
  const others = lookup.list.filter((c) => !isOwn({ senderId: c.userId, senderDevice: c.deviceId }, deviceOf(binding)));
  const message: MessageFrame = {
    type: 'message',
    conversationId: entry.conversationId,
    messageId: entry.messageId,
    seq: entry.seq,
    senderId: entry.senderId,
    clientMessageId: entry.clientMessageId,
    body,
    sentAt: entry.sentAt,
  };
  try {
    const recipients = await liveRecipients(services, entry.conversationId, others, endpoint);
    // The sender's `sent` was a post too.
    await spendFanoutBudget(services, binding, recipients.length + 1);
    await deliver(
      services,
      endpoint,
      { kind: 'message', conversationId: entry.conversationId, seq: entry.seq, messageId: entry.messageId, frame: JSON.stringify(message) },
      recipients,
    );
  } catch (error) {
    services.log.warn('live delivery failed; message stays pending', { messageId: entry.messageId, error: errorSummary(error) });
  }
}

/**
 * `ack`: these messages (by id, and/or everything through `upToSeq`) are done for this device. Idempotent;
 * unknown ids are ignored; the position only moves forward and never past the conversation's last seq.
 */
export async function ack(services: AckServices, binding: Binding, frame: AckFrame): Promise<AckedFrame> {
  const conversationId = binding.conversationId;
  const device = deviceOf(binding);
  let upToSeq = frame.upToSeq;
  let seqs: number[] | undefined;
  for (let attempt = 0; attempt < MAX_SAVE_ATTEMPTS; attempt += 1) {
    const position = await services.positions.get(conversationId, device);
    // A device with no position (never registered, or not seen for the device TTL) has nothing pending.
    if (position === undefined) break;
    seqs ??= frame.messageIds.length === 0 ? [] : [...(await services.messages.seqsOf(conversationId, frame.messageIds, position.ackedThrough)).values()];
    if (upToSeq !== undefined && upToSeq > position.ackedThrough) upToSeq = await atMostLastSeq(services, conversationId, upToSeq);
    let next = withAcks(position, seqs, upToSeq);
    if (next.acked.length > 0) {
      // The device's own messages are never acked: walk over them (and the acks above) in one bounded read.
      const highest = next.acked[next.acked.length - 1] ?? next.ackedThrough;
      const { entries } = await services.messages.page(conversationId, {
        afterSeq: next.ackedThrough,
        beforeSeq: highest + 1,
        limit: 100,
        maxBytes: PAGE_SEALED_BYTES,
        newestFirst: false,
      });
      next = overOwn(next, entries, device);
    }
    if (samePosition(position, next)) break;
    if (await services.positions.save(next)) break;
    if (attempt === MAX_SAVE_ATTEMPTS - 1) throw new UnavailableError('this device is acking from too many places at once; retry');
  }
  return {
    type: 'acked',
    conversationId,
    messageIds: frame.messageIds,
    ...(frame.upToSeq === undefined ? {} : { upToSeq: frame.upToSeq }),
    ...requestIdOf(frame),
  };
}

/**
 * `getUnacked`: this device's pending messages, ascending: the log after its position (and after the member's
 * (re-)add), minus its own messages and its out-of-order acks. Only a current member has pending messages.
 */
export async function getUnacked(services: GetUnackedServices, binding: Binding, frame: GetUnackedFrame): Promise<UnackedFrame> {
  const membership = await services.members.get(binding.conversationId, binding.userId);
  if (membership === undefined) throw new ForbiddenError('not a member of this conversation');
  const page = await pendingPage(services, binding, membership, { limit: frame.limit, ...(frame.afterSeq === undefined ? {} : { afterSeq: frame.afterSeq }) });
  return { ...page, ...requestIdOf(frame) };
}

/**
 * One page of the device's pending messages after `afterSeq` (what `getUnacked` and a resuming `subscribe`
 * send). A `gap` names the seqs above the cursor that are gone from the log (history retention) although the
 * device never acked them: the log numbers without holes, so a missing seq can only have expired.
 */
export async function pendingPage(
  services: PendingServices,
  binding: Binding,
  membership: Membership,
  request: { limit: number; afterSeq?: number },
  /** The device's position when the caller has just read or registered it. */
  known?: DevicePosition,
): Promise<UnackedFrame> {
  const conversationId = binding.conversationId;
  const device = deviceOf(binding);
  const position =
    known ??
    (await services.positions.get(conversationId, device)) ??
    (await services.positions.register(conversationId, device, await lastSeqOf(services, conversationId), services.clock.now()));
  const acked = new Set(position.acked);
  const start = Math.max(position.ackedThrough, membership.sinceSeq, request.afterSeq ?? 0);
  let cursor = start;
  const pending: LogEntry[] = [];
  // What was read from right above the position: the device's own messages there can be put behind it.
  const walked: LogEntry[] = [];
  const fromPosition = cursor === position.ackedThrough;
  let hasMore = false;
  let firstSeq: number | undefined;
  for (let read = 0; read < MAX_PENDING_READS; read += 1) {
    const page = await services.messages.page(conversationId, {
      afterSeq: cursor,
      // Wide enough to step over a long run of the device's own messages in one answer.
      limit: Math.min(Math.max(2 * request.limit, 50), 200),
      maxBytes: PAGE_SEALED_BYTES,
      newestFirst: false,
    });
    for (const entry of page.entries) {
      firstSeq ??= entry.seq;
      cursor = entry.seq;
      if (fromPosition && pending.length === 0) walked.push(entry);
      if (isOwn(entry, device) || acked.has(entry.seq)) continue;
      if (pending.length === request.limit) {
        hasMore = true;
        break;
      }
      pending.push(entry);
    }
    if (hasMore || !page.hasMore) break;
    if (read === MAX_PENDING_READS - 1) hasMore = true;
  }
  await skipOwnMessages(services, position, walked, device);
  const missingTo = firstSeq === undefined ? await lastSeqOf(services, conversationId) : firstSeq - 1;
  const answer: UnackedFrame = {
    type: 'unacked',
    conversationId,
    messages: [],
    hasMore,
    ...(missingTo > start ? { gap: { fromSeq: start + 1, toSeq: missingTo } } : {}),
  };
  return fitEntries(answer, pending.map((entry) => pageEntryOf(services, entry)));
}

/**
 * The device's own messages (and its out-of-order acks) right above its position are never pending: moving the
 * position over them keeps a device that sent many messages in a row from reading them again and again. Best
 * effort: another container saving first only means the next read walks them once more.
 */
async function skipOwnMessages(
  services: Pick<Services, 'positions'>,
  position: DevicePosition,
  walked: readonly LogEntry[],
  device: Device,
): Promise<void> {
  const next = overOwn(position, walked, device);
  if (next === position) return;
  await services.positions.save({ ...next, version: position.version + 1 });
}

/**
 * `getHistory`: the conversation's messages, ascending; the newest page when neither bound (or `beforeSeq`) is
 * given. Any current member may read it.
 */
export async function getHistory(services: GetHistoryServices, binding: Binding, frame: GetHistoryFrame): Promise<HistoryFrame> {
  const conversationId = binding.conversationId;
  if ((await services.members.get(conversationId, binding.userId)) === undefined) {
    throw new ForbiddenError('not a member of this conversation');
  }
  const page = await services.messages.page(conversationId, {
    ...(frame.afterSeq === undefined ? {} : { afterSeq: frame.afterSeq }),
    ...(frame.beforeSeq === undefined ? {} : { beforeSeq: frame.beforeSeq }),
    limit: frame.limit,
    maxBytes: PAGE_SEALED_BYTES,
    newestFirst: frame.afterSeq === undefined,
  });
  const answer: HistoryFrame = { type: 'history', conversationId, messages: [], hasMore: page.hasMore, ...requestIdOf(frame) };
  const entries = page.entries.map((entry) => pageEntryOf(services, entry));
  if (frame.afterSeq !== undefined) return fitEntries(answer, entries);
  // Newest first: what does not fit is dropped from the old end, so the page still ends at the newest.
  const fitted = fitEntries(answer, [...entries].reverse());
  return { ...fitted, messages: [...fitted.messages].reverse() };
}

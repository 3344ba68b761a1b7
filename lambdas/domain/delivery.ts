import { DecryptionError, errorSummary } from '../errors.js';
import type { FanoutJob, LogEntry, Services, Subscription } from '../ports.js';
import type { MessageDeletedFrame, MessageEditedFrame, PresenceFrame, ReadFrame, TypingEventFrame, UnsubscribedFrame } from '../protocol.js';
import { messageDataOf, messageFrameOf } from './message-frames.js';

/** What posting needs: the poster, and the registry to prune gone connections. */
export type PostingServices = Pick<Services, 'posterFor' | 'log' | 'clock'> & {
  registry: Pick<Services['registry'], 'remove' | 'connection'>;
  delivery: Pick<Services['delivery'], 'pruneGraceMs'>;
};
/** What live delivery needs: posting, and the queue for large fan-outs. */
export type DeliveryServices = PostingServices & Pick<Services, 'delivery' | 'fanout' | 'metrics'>;
export type FanoutJobServices = PostingServices &
  Pick<Services, 'sealer' | 'metrics'> & {
    delivery: Pick<Services['delivery'], 'postConcurrency' | 'pruneGraceMs'>;
    messages: Pick<Services['messages'], 'get'>;
    typing: Pick<Services['typing'], 'expiresMs'>;
    /** The stage's own callback endpoint: the only one the worker posts to. */
    endpoint: string;
  };

export interface DeliveryReport {
  delivered: number;
  gone: number;
  failed: number;
  queued: number;
}

/** A frame pushed to others that is not a stored message: a queued job carries its ids, and the worker rebuilds it. */
export type PushedFrame = TypingEventFrame | ReadFrame | MessageDeletedFrame | Exclude<PresenceFrame, { online: string[] }>;

/**
 * What goes out: a frame without a body (typing, a read, a deletion, presence), or a stored message or edit that
 * the worker reloads by id (a queued job never carries a body).
 */
export type Delivery =
  | { kind: 'event'; frame: PushedFrame }
  | { kind: 'message' | 'edited'; conversationId: string; seq: number; messageId: string; frame: string };

/**
 * Delivers live to `recipients`: posted inline up to the fan-out threshold, above it split into batches
 * for the SQS worker. Delivery never clears what is pending: only `ack` does, so a failure here loses nothing.
 * Presence never prunes on a 410: it goes out from `$connect`, when other connections may still be in theirs.
 */
export async function deliver(
  services: DeliveryServices,
  endpoint: string,
  delivery: Delivery,
  recipients: readonly Pick<Subscription, 'connectionId'>[],
): Promise<DeliveryReport> {
  const connectionIds = recipients.map((r) => r.connectionId);
  if (connectionIds.length <= services.delivery.fanoutThreshold) {
    const frame = delivery.kind === 'event' ? JSON.stringify(delivery.frame) : delivery.frame;
    const pruneGone = delivery.kind !== 'event' || delivery.frame.type !== 'presence';
    return { ...(await postAll(services, endpoint, frame, connectionIds, pruneGone)), queued: 0 };
  }
  const jobs: FanoutJob[] = [];
  for (let start = 0; start < connectionIds.length; start += services.delivery.fanoutBatchSize) {
    const batch = connectionIds.slice(start, start + services.delivery.fanoutBatchSize);
    jobs.push(
      delivery.kind === 'event'
        ? jobOf(delivery.frame, batch)
        : { kind: delivery.kind, conversationId: delivery.conversationId, seq: delivery.seq, messageId: delivery.messageId, connectionIds: batch },
    );
  }
  await services.fanout.enqueue(jobs);
  services.metrics.count('fanout_jobs', jobs.length);
  return { delivered: 0, gone: 0, failed: 0, queued: connectionIds.length };
}

/** The job of a pushed frame: its ids, field by field (nothing else of the frame goes on the queue). */
function jobOf(frame: PushedFrame, connectionIds: string[]): FanoutJob {
  const { conversationId } = frame;
  switch (frame.type) {
    case 'typing':
      return { kind: 'typing', conversationId, userId: frame.userId, state: frame.state, at: frame.at, connectionIds };
    case 'read':
      return { kind: 'read', conversationId, userId: frame.userId, seq: frame.seq, at: frame.at, connectionIds };
    case 'messageDeleted':
      return { kind: 'deleted', conversationId, messageId: frame.messageId, seq: frame.seq, connectionIds };
    case 'presence':
      return 'occupancy' in frame
        ? { kind: 'occupancy', conversationId, occupancy: frame.occupancy, connectionIds }
        : { kind: 'presence', conversationId, userId: frame.userId, state: frame.state, at: frame.at, connectionIds };
  }
}

/**
 * The subscriptions whose users are still members (as the roster sees them). A subscription that outlived its
 * membership — the member was removed by any means — gets no more of the conversation: its row is dropped and
 * its connection told with an `unsubscribed` (`forbidden`) frame.
 */
export async function liveRecipients(
  services: PostingServices & Pick<Services, 'roster'> & { registry: Pick<Services['registry'], 'unsubscribe'> },
  conversationId: string,
  subscriptions: readonly Subscription[],
  endpoint: string,
): Promise<Subscription[]> {
  if (subscriptions.length === 0) return [];
  const members = await services.roster.membersAmong(conversationId, subscriptions.map((s) => s.userId));
  const strangers = subscriptions.filter((s) => !members.has(s.userId));
  if (strangers.length > 0) {
    const notice: UnsubscribedFrame = { type: 'unsubscribed', conversations: [{ conversationId, status: 'forbidden' }] };
    const poster = services.posterFor(endpoint);
    await Promise.all(
      strangers.map(async ({ connectionId }) => {
        try {
          await services.registry.unsubscribe(connectionId, [conversationId]);
          if ((await poster.post(connectionId, JSON.stringify(notice))) === 'gone') await prune(services, connectionId);
          services.log.info('dropped the subscription of a removed member', { connectionId, conversationId });
        } catch (error) {
          services.log.warn('could not drop the subscription of a removed member', { connectionId, error: errorSummary(error) });
        }
      }),
    );
  }
  return subscriptions.filter((s) => members.has(s.userId));
}

/** Posts one frame to many connections with bounded concurrency; a gone connection's row is removed (if `pruneGone`). */
export async function postAll(
  services: PostingServices & { delivery: Pick<Services['delivery'], 'postConcurrency'> },
  endpoint: string,
  frame: string,
  connectionIds: readonly string[],
  pruneGone = true,
): Promise<Omit<DeliveryReport, 'queued'>> {
  const poster = services.posterFor(endpoint);
  const report = { delivered: 0, gone: 0, failed: 0 };
  let next = 0;
  const worker = async () => {
    while (next < connectionIds.length) {
      const connectionId = connectionIds[next];
      next += 1;
      if (connectionId === undefined) break;
      const outcome = await poster.post(connectionId, frame);
      report[outcome] += 1;
      if (outcome === 'gone' && pruneGone) await prune(services, connectionId);
    }
  };
  const workers = Math.min(services.delivery.postConcurrency, connectionIds.length);
  await Promise.all(Array.from({ length: workers }, worker));
  return report;
}

/**
 * Removes a connection the Management API says is gone (410); its device keeps its pending messages. API Gateway
 * also answers 410 to a post for a connection whose `$connect` has not returned yet (its rows are written by
 * then: a v1 connect subscribes during `$connect`), so a connection younger than `pruneGraceMs` is kept: pruning
 * it would cut a connection about to open. One that really is gone that young is pruned by a later post, or
 * lapses with its TTL.
 */
export async function prune(services: PostingServices, connectionId: string): Promise<void> {
  try {
    const record = await services.registry.connection(connectionId);
    if (record !== undefined && services.clock.now() - record.connectedAt < services.delivery.pruneGraceMs) {
      services.log.info('kept a young connection that answered 410 (its $connect may not have returned)', { connectionId });
      return;
    }
    await services.registry.remove(connectionId);
    services.log.info('pruned gone connection', { connectionId });
  } catch (error) {
    services.log.warn('could not prune gone connection', { connectionId, error: errorSummary(error) });
  }
}

/**
 * Runs one batch from the fan-out queue, always to the stage's own endpoint. Every frame is built here from the
 * job's ids: stored messages and deletions are checked against the log. Throws only when the batch should be
 * retried (store unavailable).
 */
export async function runFanoutJob(services: FanoutJobServices, job: FanoutJob): Promise<DeliveryReport> {
  const none = { delivered: 0, gone: 0, failed: 0, queued: 0 };
  const post = async (frame: PushedFrame, pruneGone = true) => ({
    ...(await postAll(services, services.endpoint, JSON.stringify(frame), job.connectionIds, pruneGone)),
    queued: 0,
  });
  switch (job.kind) {
    case 'typing': {
      const { conversationId, userId, state, at } = job;
      const frame: TypingEventFrame = { type: 'typing', conversationId, userId, state, at, expiresAt: state === 'start' ? at + services.typing.expiresMs : at };
      return post(frame);
    }
    case 'read': {
      const frame: ReadFrame = { type: 'read', conversationId: job.conversationId, userId: job.userId, seq: job.seq, at: job.at };
      return post(frame);
    }
    case 'presence': {
      const frame: PresenceFrame = { type: 'presence', conversationId: job.conversationId, userId: job.userId, state: job.state, at: job.at };
      return post(frame, false);
    }
    case 'occupancy': {
      const frame: PresenceFrame = { type: 'presence', conversationId: job.conversationId, occupancy: job.occupancy };
      return post(frame, false);
    }
    case 'deleted': {
      const entry = await services.messages.get(job.conversationId, job.seq);
      const ids = { conversationId: job.conversationId, seq: job.seq, messageId: job.messageId };
      if (entry === undefined || entry.messageId !== job.messageId || entry.deleted !== true) {
        services.log.warn('fan-out deletion not in the log', ids);
        return none;
      }
      const frame: MessageDeletedFrame = { type: 'messageDeleted', ...ids };
      return post(frame);
    }
    case 'message':
    case 'edited':
      break;
  }
  const entry = await services.messages.get(job.conversationId, job.seq);
  const ids = { conversationId: job.conversationId, seq: job.seq, messageId: job.messageId };
  if (entry === undefined || entry.messageId !== job.messageId) {
    // Gone past the history retention (or a job that names another message): nothing to deliver live.
    services.log.warn('fan-out message not in the log', ids);
    return none;
  }
  const { editedAt } = entry;
  if (entry.deleted === true || (job.kind === 'edited' && editedAt === undefined)) {
    // Deleted since (its `messageDeleted` went out on its own): the text must not go out now.
    services.log.info('fan-out message deleted before delivery', ids);
    return none;
  }
  let frame: string;
  try {
    frame = JSON.stringify(job.kind === 'edited' && editedAt !== undefined ? editedFrameOf(services, entry, editedAt) : messageFrameOf(services, entry));
  } catch (error) {
    if (!(error instanceof DecryptionError)) throw error;
    // Retrying cannot open it: it stays pending, and getUnacked answers it as undecryptable so it can be acked.
    services.log.error('fan-out message did not open', ids);
    return { ...none, failed: job.connectionIds.length };
  }
  return { ...(await postAll(services, services.endpoint, frame, job.connectionIds)), queued: 0 };
}

/** The `messageEdited` frame of an edited entry, its body opened (the current version: a later edit wins). */
function editedFrameOf(services: Pick<Services, 'sealer'>, entry: LogEntry, editedAt: number): MessageEditedFrame {
  const { conversationId, messageId, seq, body } = messageDataOf(services, entry);
  return { type: 'messageEdited', conversationId, messageId, seq, body, editedAt };
}

import { DecryptionError, errorSummary } from '../errors.js';
import type { FanoutJob, LogEntry, Services, Subscription } from '../ports.js';
import type { MessageEditedFrame, UnsubscribedFrame } from '../protocol.js';
import { messageDataOf, messageFrameOf } from './message-frames.js';

/** What posting needs: the poster, and the registry to prune gone connections. */
export type PostingServices = Pick<Services, 'posterFor' | 'log' | 'clock'> & {
  registry: Pick<Services['registry'], 'remove' | 'connection'>;
  delivery: Pick<Services['delivery'], 'pruneGraceMs'>;
};
/** What live delivery needs: posting, and the queue for large fan-outs. */
export type DeliveryServices = PostingServices & Pick<Services, 'delivery' | 'fanout' | 'metrics'>;
export type FanoutJobServices = PostingServices &
  Pick<Services, 'sealer' | 'metrics'> & { delivery: Pick<Services['delivery'], 'postConcurrency' | 'pruneGraceMs'>; messages: Pick<Services['messages'], 'get'> };

export interface DeliveryReport {
  delivered: number;
  gone: number;
  failed: number;
  queued: number;
}

/**
 * What goes out: a ready frame without a body (typing, a deletion), or a stored message or edit that the worker
 * reloads by id (a queued job never carries a body).
 */
export type Delivery =
  | { kind: 'frame'; frame: string }
  | { kind: 'message' | 'edited'; conversationId: string; seq: number; messageId: string; frame: string };

/**
 * Delivers live to `recipients`: posted inline up to the fan-out threshold, above it split into batches
 * for the SQS worker. Delivery never clears what is pending: only `ack` does, so a failure here loses nothing.
 */
export async function deliver(
  services: DeliveryServices,
  endpoint: string,
  delivery: Delivery,
  recipients: readonly Pick<Subscription, 'connectionId'>[],
  { pruneGone = true }: { pruneGone?: boolean } = {},
): Promise<DeliveryReport> {
  const connectionIds = recipients.map((r) => r.connectionId);
  if (connectionIds.length <= services.delivery.fanoutThreshold) {
    return { ...(await postAll(services, endpoint, delivery.frame, connectionIds, pruneGone)), queued: 0 };
  }
  const jobs: FanoutJob[] = [];
  for (let start = 0; start < connectionIds.length; start += services.delivery.fanoutBatchSize) {
    const batch = connectionIds.slice(start, start + services.delivery.fanoutBatchSize);
    jobs.push(
      delivery.kind === 'frame'
        ? { kind: 'frame', endpoint, frame: delivery.frame, connectionIds: batch, ...(pruneGone ? {} : { pruneGone: false }) }
        : { kind: delivery.kind, endpoint, conversationId: delivery.conversationId, seq: delivery.seq, messageId: delivery.messageId, connectionIds: batch },
    );
  }
  await services.fanout.enqueue(jobs);
  services.metrics.count('fanout_jobs', jobs.length);
  return { delivered: 0, gone: 0, failed: 0, queued: connectionIds.length };
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

/** Runs one batch from the fan-out queue. Throws only when the batch should be retried (store unavailable). */
export async function runFanoutJob(services: FanoutJobServices, job: FanoutJob): Promise<DeliveryReport> {
  if (job.kind === 'frame') return { ...(await postAll(services, job.endpoint, job.frame, job.connectionIds, job.pruneGone ?? true)), queued: 0 };
  const entry = await services.messages.get(job.conversationId, job.seq);
  const ids = { conversationId: job.conversationId, seq: job.seq, messageId: job.messageId };
  if (entry === undefined || entry.messageId !== job.messageId) {
    // Gone past the history retention (or a job that names another message): nothing to deliver live.
    services.log.warn('fan-out message not in the log', ids);
    return { delivered: 0, gone: 0, failed: 0, queued: 0 };
  }
  const { editedAt } = entry;
  if (entry.deleted === true || (job.kind === 'edited' && editedAt === undefined)) {
    // Deleted since (its `messageDeleted` went out on its own): the text must not go out now.
    services.log.info('fan-out message deleted before delivery', ids);
    return { delivered: 0, gone: 0, failed: 0, queued: 0 };
  }
  let frame: string;
  try {
    frame = JSON.stringify(job.kind === 'edited' && editedAt !== undefined ? editedFrameOf(services, entry, editedAt) : messageFrameOf(services, entry));
  } catch (error) {
    if (!(error instanceof DecryptionError)) throw error;
    // Retrying cannot open it: it stays pending, and getUnacked answers it as undecryptable so it can be acked.
    services.log.error('fan-out message did not open', ids);
    return { delivered: 0, gone: 0, failed: job.connectionIds.length, queued: 0 };
  }
  return { ...(await postAll(services, job.endpoint, frame, job.connectionIds)), queued: 0 };
}

/** The `messageEdited` frame of an edited entry, its body opened (the current version: a later edit wins). */
function editedFrameOf(services: Pick<Services, 'sealer'>, entry: LogEntry, editedAt: number): MessageEditedFrame {
  const { conversationId, messageId, seq, body } = messageDataOf(services, entry);
  return { type: 'messageEdited', conversationId, messageId, seq, body, editedAt };
}

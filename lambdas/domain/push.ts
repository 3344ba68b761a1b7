import * as z from 'zod/mini';
import '../zod.js';
import { BadRequestError, DecryptionError, errorSummary } from '../errors.js';
import type { ConnectionRecord, NotifyJob, PushCandidate, PushNotification, PushSettings, PushTarget, Services, StoredPushTarget } from '../ports.js';
import type { PushRegisteredFrame, PushUnregisteredFrame, RegisterPushFrame, UnregisterPushFrame } from '../protocol.js';
import { requestIdOf } from './request-id.js';

/** Characters of the body a Web Push preview carries (only with PUSH_PREVIEW; never over APNs or FCM). */
export const PREVIEW_CHARS = 100;

export type RegisterPushServices = Pick<Services, 'pushTargets' | 'clock' | 'log'> & {
  push: Pick<PushSettings, 'maxTargetsPerUser' | 'webAllowedHosts' | 'allowLoopback' | 'apns' | 'fcm'>;
};
export type UnregisterPushServices = Pick<Services, 'pushTargets' | 'log'>;
export type NotifierServices = Pick<Services, 'pushTargets' | 'pushMarks' | 'pusher' | 'clock' | 'log' | 'metrics' | 'sealer'> & {
  registry: Pick<Services['registry'], 'listByConversation'>;
  messages: Pick<Services['messages'], 'get'>;
  push: Pick<PushSettings, 'preview' | 'concurrency'>;
};

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** True when `hostname` is `pattern`, or a subdomain of it for a `*.` pattern. */
function hostMatches(hostname: string, pattern: string): boolean {
  const host = hostname.toLowerCase();
  const wanted = pattern.toLowerCase();
  return wanted.startsWith('*.') ? host.endsWith(wanted.slice(1)) && host.length > wanted.length - 1 : host === wanted;
}

/**
 * A Web Push endpoint the backend may POST to: https on the default port on an allowed push service's host (so a
 * client cannot make the backend call arbitrary hosts), or a loopback http endpoint where that is allowed
 * (`npm start`'s local push service). No credentials in the URL.
 */
export function webPushEndpointSchema(settings: Pick<PushSettings, 'webAllowedHosts' | 'allowLoopback'>) {
  return z.url().check(
    z.refine((endpoint: string) => {
      const url = new URL(endpoint);
      if (url.username !== '' || url.password !== '') return false;
      if (url.protocol === 'https:') return url.port === '' && settings.webAllowedHosts.some((pattern) => hostMatches(url.hostname, pattern));
      return settings.allowLoopback && url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname);
    }, 'must be an https endpoint of an allowed push service'),
  );
}

function targetOf(services: RegisterPushServices, frame: RegisterPushFrame): PushTarget {
  if (frame.webPush !== undefined) {
    if (!webPushEndpointSchema(services.push).safeParse(frame.webPush.endpoint).success) {
      throw new BadRequestError('webPush.endpoint must be an https endpoint of an allowed push service');
    }
    return { kind: 'webPush', subscription: { endpoint: frame.webPush.endpoint, keys: frame.webPush.keys } };
  }
  if (frame.apns !== undefined) {
    if (!services.push.apns) throw new BadRequestError('APNs push is not configured on this stage');
    return { kind: 'apns', token: frame.apns };
  }
  if (frame.fcm !== undefined) {
    if (!services.push.fcm) throw new BadRequestError('FCM push is not configured on this stage');
    return { kind: 'fcm', token: frame.fcm };
  }
  throw new BadRequestError('give exactly one of webPush, apns, fcm');
}

/** `registerPush`: this connection's device gets this target (replacing its earlier one); answers `pushRegistered`. */
export async function registerPush(services: RegisterPushServices, connection: ConnectionRecord, frame: RegisterPushFrame): Promise<PushRegisteredFrame> {
  const target = targetOf(services, frame);
  const stored: StoredPushTarget = { userId: connection.userId, deviceId: connection.deviceId, target, registeredAt: services.clock.now() };
  const { evicted } = await services.pushTargets.put(stored, services.push.maxTargetsPerUser);
  // Which kind and how many were dropped, never the endpoint, keys or token.
  services.log.info('push target registered', { userId: connection.userId, deviceId: connection.deviceId, kind: target.kind, evicted: evicted.length });
  return { type: 'pushRegistered', kind: target.kind, ...requestIdOf(frame) };
}

/** `unregisterPush`: this connection's device is no longer woken; answers `pushUnregistered`. */
export async function unregisterPush(services: UnregisterPushServices, connection: ConnectionRecord, frame: UnregisterPushFrame): Promise<PushUnregisteredFrame> {
  const removed = await services.pushTargets.remove(connection.userId, connection.deviceId);
  return { type: 'pushUnregistered', removed, ...requestIdOf(frame) };
}

export interface NotifyReport {
  /** Devices of others with the message pending and not pushed this offline period. */
  candidates: number;
  /** Of those, the ones with no live subscription to the conversation and a push target. */
  targeted: number;
  pushed: number;
  gone: number;
}

const deviceKey = (d: { userId: string; deviceId: string }) => `${encodeURIComponent(d.userId)}/${d.deviceId}`;

/** The message is pending for the device: above its position and not acked out of order. */
function isPending(position: PushCandidate, seq: number): boolean {
  return seq > position.ackedThrough && !position.acked.includes(seq);
}

/**
 * The notifier, for one stored message (its ids from the queue): each member device other than the sender's own
 * (all of the sender's devices: their user wrote it) that has the message pending, no live subscription to the
 * conversation and a push target, is pushed, at most once per offline period per conversation: the push marker on
 * its position is set by a conditional write before the push, and only an ack or a reconnect clears it. A push
 * that fails clears the marker it set and the job throws (retried by SQS, then the DLQ); the devices pushed before
 * keep theirs, so a retry pushes no one twice. A target the push service says is gone is removed.
 */
export async function notify(services: NotifierServices, job: NotifyJob): Promise<NotifyReport> {
  const report: NotifyReport = { candidates: 0, targeted: 0, pushed: 0, gone: 0 };
  const positions = (await services.pushMarks.candidates(job.conversationId)).filter(
    (p) => p.userId !== job.senderId && p.pushedAt === undefined && isPending(p, job.seq),
  );
  report.candidates = positions.length;
  if (positions.length === 0) return report;
  const live = new Set((await services.registry.listByConversation(job.conversationId)).map(deviceKey));
  const offline = positions.filter((p) => !live.has(deviceKey(p)));
  if (offline.length === 0) return report;

  const userIds = [...new Set(offline.map((p) => p.userId))];
  const targets = new Map<string, StoredPushTarget>();
  for (const list of await Promise.all(userIds.map((userId) => services.pushTargets.ofUser(userId)))) {
    for (const stored of list) targets.set(deviceKey(stored), stored);
  }
  const work = offline.flatMap((position) => {
    const stored = targets.get(deviceKey(position));
    return stored === undefined ? [] : [{ position, stored }];
  });
  report.targeted = work.length;

  const preview = once(() => previewOf(services, job));
  const failures: unknown[] = [];
  let next = 0;
  const worker = async () => {
    while (next < work.length) {
      const item = work[next];
      next += 1;
      if (item === undefined) break;
      try {
        const outcome = await pushOne(services, job, item.position, item.stored, preview);
        if (outcome !== 'skipped') report[outcome] += 1;
      } catch (error) {
        failures.push(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(services.push.concurrency, work.length) }, worker));
  if (failures.length > 0) throw failures[0];
  return report;
}

async function pushOne(
  services: NotifierServices,
  job: NotifyJob,
  position: PushCandidate,
  stored: StoredPushTarget,
  preview: () => Promise<string | undefined>,
): Promise<'pushed' | 'gone' | 'skipped'> {
  const at = services.clock.now();
  // Another message of this offline period (or an ack since the read) got there first.
  if (!(await services.pushMarks.mark(position, at))) return 'skipped';
  const fields = { userId: position.userId, deviceId: position.deviceId, kind: stored.target.kind, conversationId: job.conversationId, seq: job.seq };
  try {
    const notification: PushNotification = {
      conversationId: job.conversationId,
      senderId: job.senderId,
      seq: job.seq,
      count: Math.max(1, job.seq - position.ackedThrough - position.acked.filter((s) => s < job.seq).length),
    };
    const text = stored.target.kind === 'webPush' && services.push.preview ? await preview() : undefined;
    const result = await services.pusher.send(stored, text === undefined ? notification : { ...notification, preview: text });
    if (result.outcome === 'gone') {
      await services.pushTargets.removeIf(stored);
      services.metrics.count('push_gone');
      services.log.info('push target gone; removed', fields);
      return 'gone';
    }
    if (result.endpointArn !== undefined && result.endpointArn !== stored.endpointArn) {
      await services.pushTargets.setEndpointArn(stored, result.endpointArn);
    }
    services.metrics.count('pushes');
    services.log.debug('pushed', fields);
    return 'pushed';
  } catch (error) {
    services.metrics.count('push_failed');
    services.log.warn('push failed', { ...fields, error: errorSummary(error) });
    // So the retry of the job (or the next message) pushes this device after all.
    await services.pushMarks.unmark(position, at).catch((unmarkError: unknown) => {
      services.log.warn('push marker not cleared', { ...fields, error: errorSummary(unmarkError) });
    });
    throw error;
  }
}

/** The first PREVIEW_CHARS characters of the message, when it is still there and opens. */
async function previewOf(services: NotifierServices, job: NotifyJob): Promise<string | undefined> {
  const entry = await services.messages.get(job.conversationId, job.seq);
  if (entry === undefined || entry.messageId !== job.messageId || entry.deleted === true) return undefined;
  try {
    const { sealed, ...fields } = entry;
    return [...services.sealer.open(fields, sealed)].slice(0, PREVIEW_CHARS).join('');
  } catch (error) {
    if (error instanceof DecryptionError) return undefined;
    throw error;
  }
}

function once<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => (made ??= make());
}

import * as z from 'zod/mini';
import '../zod.js';
import { BadRequestError, DecryptionError, errorSummary } from '../errors.js';
import type {
  ConnectionRecord,
  Device,
  DevicePosition,
  NotifyJob,
  PushCandidate,
  PushNotification,
  PushSettings,
  PushTarget,
  Services,
  StoredPushTarget,
} from '../ports.js';
import type { PushRegisteredFrame, PushUnregisteredFrame, RegisterPushFrame, UnregisterPushFrame } from '../protocol.js';
import { requestIdOf } from './request-id.js';

/** Characters of the body a Web Push preview carries (only with PUSH_PREVIEW; never over APNs or FCM). */
export const PREVIEW_CHARS = 100;

/** Conversations of a user read per page, and push flags written at once, when a device registers for push. */
const FLAG_PAGE = 100;
const FLAG_CONCURRENCY = 8;

export type RegisterPushServices = Pick<Services, 'pushTargets' | 'clock' | 'log'> & {
  members: Pick<Services['members'], 'listByUser'>;
  pushMarks: Pick<Services['pushMarks'], 'setPushable'>;
  push: Pick<PushSettings, 'maxTargetsPerUser' | 'webAllowedHosts' | 'allowLoopback' | 'apns' | 'fcm'>;
};
export type UnregisterPushServices = Pick<Services, 'pushTargets' | 'log'>;
/** What `subscribe` and `$connect` need to flag a device's new positions for push. */
export type PushFlagServices = Pick<Services, 'log'> & {
  pushTargets: Pick<Services['pushTargets'], 'get'>;
  pushMarks: Pick<Services['pushMarks'], 'setPushable'>;
};
export type NotifierServices = Pick<Services, 'pushTargets' | 'pushMarks' | 'pusher' | 'clock' | 'log' | 'metrics' | 'sealer'> & {
  registry: Pick<Services['registry'], 'devicesSubscribed'>;
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

/**
 * `registerPush`: this connection's device gets this target (replacing its earlier one), and its positions in each
 * of its user's conversations go into the push index; answers `pushRegistered`. The target is stored first: a
 * `subscribe` racing with this either sees it (and flags its new position) or made its position before the flags
 * below are written. A failure part-way answers an error; registering again is harmless.
 */
export async function registerPush(services: RegisterPushServices, connection: ConnectionRecord, frame: RegisterPushFrame): Promise<PushRegisteredFrame> {
  const target = targetOf(services, frame);
  const stored: StoredPushTarget = { userId: connection.userId, deviceId: connection.deviceId, target, registeredAt: services.clock.now() };
  const { evicted } = await services.pushTargets.put(stored, services.push.maxTargetsPerUser);
  const device = { userId: connection.userId, deviceId: connection.deviceId };
  let flagged = 0;
  let after: string | undefined;
  do {
    const page = await services.members.listByUser(connection.userId, { limit: FLAG_PAGE, ...(after === undefined ? {} : { after }) });
    await inPool(page.memberships, FLAG_CONCURRENCY, (m) => services.pushMarks.setPushable(m.conversationId, device, true));
    flagged += page.memberships.length;
    after = page.nextAfter;
  } while (after !== undefined);
  // Which kind and how many were dropped, never the endpoint, keys or token.
  services.log.info('push target registered', { ...device, kind: target.kind, evicted: evicted.length, conversations: flagged });
  return { type: 'pushRegistered', kind: target.kind, ...requestIdOf(frame) };
}

/**
 * After `subscribe` / `$connect` registered the device's positions: the ones not in the push index yet are put
 * there when the device has a push target (a conversation joined, or a position made, after `registerPush`).
 * One read of the target when some position is not flagged; nothing at all when every one is. Never fails the
 * caller: a position left unflagged only means no push in that conversation until the device's next subscribe.
 */
export async function flagForPush(services: PushFlagServices, device: Device, positions: readonly DevicePosition[]): Promise<void> {
  const unflagged = positions.filter((p) => p.pushable !== true);
  if (unflagged.length === 0) return;
  try {
    if ((await services.pushTargets.get(device.userId, device.deviceId)) === undefined) return;
    await inPool(unflagged, FLAG_CONCURRENCY, (p) => services.pushMarks.setPushable(p.conversationId, device, true));
  } catch (error) {
    services.log.warn('push flags not set', { ...device, conversations: unflagged.length, error: errorSummary(error) });
  }
}

/** `unregisterPush`: this connection's device is no longer woken; answers `pushUnregistered`. */
export async function unregisterPush(services: UnregisterPushServices, connection: ConnectionRecord, frame: UnregisterPushFrame): Promise<PushUnregisteredFrame> {
  const removed = await services.pushTargets.remove(connection.userId, connection.deviceId);
  return { type: 'pushUnregistered', removed, ...requestIdOf(frame) };
}

export interface NotifyReport {
  /** Push-flagged devices of others with the message pending and not pushed this offline period. */
  candidates: number;
  /** Of those, the ones with no live subscription to the conversation and a push target. */
  targeted: number;
  pushed: number;
  gone: number;
  /** Flagged devices found without a target (unregistered, evicted, gone): taken out of the push index. */
  unflagged: number;
}

/** The message is pending for the device: above its position and not acked out of order. */
function isPending(position: PushCandidate, seq: number): boolean {
  return seq > position.ackedThrough && !position.acked.includes(seq);
}

/**
 * The notifier, for one stored message (its ids from the queue): each push-flagged member device other than the
 * sender's own (all of the sender's devices: their user wrote it) that has the message pending, no live
 * subscription to the conversation and a push target, is pushed, at most once per offline period per
 * conversation: the push marker on its position is set by a conditional write before the push, and only an ack
 * or a reconnect clears it. A push that fails clears the marker it set and the job throws (retried by SQS, then
 * the DLQ); the devices pushed before keep theirs, so a retry pushes no one twice. A target the push service says
 * is gone is removed.
 *
 * The work follows the devices that can be pushed, not the conversation: one Query of the sparse push index, then
 * per user with such a device their targets and their live subscriptions there (each one read).
 */
export async function notify(services: NotifierServices, job: NotifyJob): Promise<NotifyReport> {
  const report: NotifyReport = { candidates: 0, targeted: 0, pushed: 0, gone: 0, unflagged: 0 };
  const positions = (await services.pushMarks.candidates(job.conversationId)).filter(
    (p) => p.userId !== job.senderId && p.pushedAt === undefined && isPending(p, job.seq),
  );
  report.candidates = positions.length;
  if (positions.length === 0) return report;

  const byUser = new Map<string, PushCandidate[]>();
  for (const position of positions) byUser.set(position.userId, [...(byUser.get(position.userId) ?? []), position]);
  const work: { position: PushCandidate; stored: StoredPushTarget }[] = [];
  const stale: PushCandidate[] = [];
  await inPool([...byUser], services.push.concurrency, async ([userId, devices]) => {
    const [targets, live] = await Promise.all([
      services.pushTargets.ofUser(userId),
      services.registry.devicesSubscribed(userId, job.conversationId),
    ]);
    const byDevice = new Map(targets.map((t) => [t.deviceId, t]));
    for (const position of devices) {
      const stored = byDevice.get(position.deviceId);
      if (stored === undefined) stale.push(position);
      else if (!live.has(position.deviceId)) work.push({ position, stored });
    }
  });
  report.targeted = work.length;
  // A flag without a target costs a read on every message: it goes (a new registration flags again).
  await inPool(stale, services.push.concurrency, async (position) => {
    await services.pushMarks.setPushable(job.conversationId, position, false);
    report.unflagged += 1;
  });

  const preview = once(() => previewOf(services, job));
  const failures: unknown[] = [];
  await inPool(work, services.push.concurrency, async (item) => {
    try {
      const outcome = await pushOne(services, job, item.position, item.stored, preview);
      if (outcome !== 'skipped') report[outcome] += 1;
    } catch (error) {
      failures.push(error);
    }
  });
  if (failures.length > 0) throw failures[0];
  return report;
}

/** Runs `run` over `items`, at most `concurrency` at a time; the first failure rejects (after the running ones end). */
async function inPool<T>(items: readonly T[], concurrency: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next;
      next += 1;
      const item = items[index];
      if (item !== undefined) await run(item);
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(Math.max(1, concurrency), items.length) }, worker));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
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
  if (!(await services.pushMarks.mark(position, job.seq, at))) return 'skipped';
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

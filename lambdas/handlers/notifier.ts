import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import * as z from 'zod/mini';
import '../zod.js';
import { DynamoDevicePositions } from '../adapters/dynamo-device-positions.js';
import { bootLog, createLog } from '../adapters/log.js';
import { loadConfig } from '../config.js';
import { documentClient } from '../context/dynamo.js';
import { connectionRegistry } from '../context/members.js';
import { lambdaHandler, once, type Route, type ServiceSource } from '../context/lazy.js';
import { metricsOf } from '../context/metrics.js';
import { pushProviders } from '../context/push.js';
import { readAppKeys } from '../context/secrets.js';
import { systemClock } from '../context/settings.js';
import { messageLog, pushTargets } from '../context/store.js';
import { MessageCipher } from '../encryption.js';
import { notify, type NotifierServices } from '../domain/push.js';
import { DecryptionError, errorSummary } from '../errors.js';
import type { NotifyJob, Sealer } from '../ports.js';
import { conversationIdSchema } from '../protocol.js';
import { parseQueueRecord } from '../queue-record.js';

/** A job is ids only, strictly: anything else on the queue (a body, a token) makes the record poison. */
const notifyJobSchema = z.strictObject({
  conversationId: conversationIdSchema,
  seq: z.int().check(z.minimum(1), z.maximum(Number.MAX_SAFE_INTEGER)),
  messageId: z.string().check(z.minLength(1), z.maxLength(128)),
  senderId: z.string().check(z.minLength(1), z.maxLength(256)),
  senderDevice: z.string().check(z.minLength(1), z.maxLength(64)),
});

function parseJob(record: SQSRecord): NotifyJob {
  return parseQueueRecord(record, notifyJobSchema, 'a notify job');
}

/** Without previews the notifier holds no key: nothing it reads can be opened. */
const noPreviews: Sealer = {
  seal: () => {
    throw new DecryptionError('the notifier seals nothing');
  },
  open: () => {
    throw new DecryptionError('previews are off');
  },
};

export type Notifier = (event: SQSEvent) => Promise<SQSBatchResponse>;

/**
 * SQS notifier: decides, for each stored message, which offline devices to wake, and pushes them. A record that
 * fails (poison, the store or a push service failing) is reported alone (ReportBatchItemFailures): it comes
 * back after the visibility timeout and goes to the notifier's DLQ after maxReceiveCount.
 */
export const route: Route<NotifierServices, Notifier> = {
  async build(env, scope, given = {}) {
    const config = loadConfig('notifier', env);
    const log = given.log ?? createLog(config.LOG_LEVEL);
    const db = once(() => documentClient(config, scope, env));
    const marks = once(
      () => new DynamoDevicePositions(db(), config.POSITIONS_TABLE, systemClock, { deviceTtlSeconds: config.DEVICE_TTL_SECONDS, maxDevicesPerUser: config.MAX_DEVICES_PER_USER }),
    );
    return {
      log,
      metrics: given.metrics ?? metricsOf(config, log),
      clock: given.clock ?? systemClock,
      registry: given.registry ?? connectionRegistry(config, db()),
      messages: given.messages ?? messageLog(config, db()),
      // The app secret only opens a preview: without PUSH_PREVIEW no body is ever read.
      sealer: given.sealer ?? (config.PUSH_PREVIEW ? new MessageCipher((await readAppKeys(config, env)).masterKeys) : noPreviews),
      pushMarks: given.pushMarks ?? marks(),
      pushTargets: given.pushTargets ?? pushTargets(config, db()),
      pusher: given.pusher ?? (await pushProviders(config, scope, env)),
      push: given.push ?? { preview: config.PUSH_PREVIEW, concurrency: config.PUSH_CONCURRENCY },
    };
  },
  create: (services: ServiceSource<NotifierServices>) => {
    const processor = new BatchProcessor(EventType.SQS);
    let built: NotifierServices | undefined;
    const processRecord = async (record: SQSRecord): Promise<void> => {
      try {
        const job = parseJob(record);
        const ready = await services();
        built = ready;
        const report = await notify(ready, job);
        ready.log.info('notify job done', { messageId: record.messageId, conversationId: job.conversationId, seq: job.seq, ...report });
      } catch (error) {
        bootLog.error('notify record failed', { messageId: record.messageId, receiveCount: record.attributes.ApproximateReceiveCount, error: errorSummary(error) });
        throw error;
      }
    };
    return async (event) => {
      try {
        return await processPartialResponse(event, processRecord, processor, { throwOnFullBatchFailure: false });
      } finally {
        built?.metrics.flush();
      }
    };
  },
};

export const handler = lambdaHandler(route);

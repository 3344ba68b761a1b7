import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import * as z from 'zod/mini';
import '../zod.js';
import { bootLog, createLog } from '../adapters/log.js';
import { loadConfig } from '../config.js';
import { documentClient } from '../context/dynamo.js';
import { connectionRegistry } from '../context/members.js';
import { lambdaHandler, once, type Route, type ServiceSource } from '../context/lazy.js';
import { metricsOf } from '../context/metrics.js';
import { postersFor } from '../context/posters.js';
import { systemClock } from '../context/settings.js';
import { messageLog } from '../context/store.js';
import { readAppKeys } from '../context/secrets.js';
import { runFanoutJob, type FanoutJobServices } from '../domain/delivery.js';
import { MessageCipher } from '../encryption.js';
import { PoisonRecordError, errorSummary } from '../errors.js';
import { conversationIdSchema } from '../protocol.js';

/** API Gateway connection ids are base64-like (`L0SM9cOFvHcCIhw=`); anything else in a job is poison. */
const connectionIds = z
  .array(z.string().check(z.minLength(1), z.maxLength(128), z.regex(/^[A-Za-z0-9+/=_-]+$/)))
  .check(z.minLength(1), z.maxLength(1000));
/** A stored message (`message`) or its edit (`edited`), named by its ids: the worker reloads it. */
const storedJob = <K extends 'message' | 'edited'>(kind: K) =>
  z.object({
    kind: z.literal(kind),
    endpoint: z.url(),
    conversationId: conversationIdSchema,
    seq: z.int().check(z.minimum(1), z.maximum(Number.MAX_SAFE_INTEGER)),
    messageId: z.string().check(z.minLength(1), z.maxLength(128)),
    connectionIds,
  });
const fanoutJobSchema = z.discriminatedUnion('kind', [
  storedJob('message'),
  storedJob('edited'),
  z.object({ kind: z.literal('frame'), endpoint: z.url(), frame: z.string().check(z.minLength(2)), connectionIds, pruneGone: z.optional(z.boolean()) }),
]);

function parseJob(record: SQSRecord) {
  let body: unknown;
  try {
    body = JSON.parse(record.body);
  } catch (error) {
    throw new PoisonRecordError('record body is not JSON', { cause: error });
  }
  const job = fanoutJobSchema.safeParse(body);
  if (!job.success) throw new PoisonRecordError('record is not a fan-out job');
  return job.data;
}

export type FanoutWorker = (event: SQSEvent) => Promise<SQSBatchResponse>;

/**
 * SQS fan-out worker: posts each batch; a record that fails (poison, or the store unavailable) is reported
 * alone through ReportBatchItemFailures, so its batch-mates are not redelivered.
 */
export const route: Route<FanoutJobServices, FanoutWorker> = {
  async build(env, scope, given = {}) {
    const config = loadConfig('fanoutWorker', env);
    const log = given.log ?? createLog(config.LOG_LEVEL);
    const metrics = given.metrics ?? metricsOf(config, log);
    const db = once(() => documentClient(config, scope, env));
    return {
      log,
      metrics,
      delivery: given.delivery ?? { postConcurrency: config.POST_CONCURRENCY, pruneGraceMs: config.PRUNE_GRACE_SECONDS * 1000 },
      sealer: given.sealer ?? new MessageCipher((await readAppKeys(config, env)).masterKeys),
      registry: given.registry ?? connectionRegistry(config, db()),
      messages: given.messages ?? messageLog(config, db()),
      posterFor: given.posterFor ?? postersFor(config, scope, env, log, metrics),
      clock: given.clock ?? systemClock,
    };
  },
  create: (services: ServiceSource<FanoutJobServices>) => {
    const processor = new BatchProcessor(EventType.SQS);
    // The container's services once a record has built them: their counters are flushed once per batch.
    let built: FanoutJobServices | undefined;
    const processRecord = async (record: SQSRecord): Promise<void> => {
      const receiveCount = record.attributes.ApproximateReceiveCount;
      try {
        const job = parseJob(record);
        built = await services();
        const report = await runFanoutJob(built, job);
        built.log.info('fan-out batch done', { messageId: record.messageId, ...report });
      } catch (error) {
        // Reported back to SQS as this record's failure; after maxReceiveCount it moves to the DLQ.
        bootLog.error('fan-out record failed', { messageId: record.messageId, receiveCount, error: errorSummary(error) });
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

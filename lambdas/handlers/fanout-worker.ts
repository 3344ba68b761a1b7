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
import type { FanoutJob } from '../ports.js';
import { MessageCipher } from '../encryption.js';
import { errorSummary } from '../errors.js';
import { conversationIdSchema } from '../protocol.js';
import { parseQueueRecord } from '../queue-record.js';

/** API Gateway connection ids are base64-like (`L0SM9cOFvHcCIhw=`); anything else in a job is poison. */
const connectionIds = z
  .array(z.string().check(z.minLength(1), z.maxLength(128), z.regex(/^[A-Za-z0-9+/=_-]+$/)))
  .check(z.minLength(1), z.maxLength(1000));
const seq = z.int().check(z.minimum(1), z.maximum(Number.MAX_SAFE_INTEGER));
const at = z.int().check(z.minimum(0), z.maximum(Number.MAX_SAFE_INTEGER));
const messageId = z.string().check(z.minLength(1), z.maxLength(128));
const userId = z.string().check(z.minLength(1), z.maxLength(256));
/**
 * Jobs name what to deliver by ids only, and strictly: a field no job has (a prebuilt `frame`, a body) makes the
 * record poison. `endpoint` is accepted only for the jobs of earlier versions, and checked against the stage's.
 */
const job = <K extends string, S extends z.core.$ZodLooseShape>(kind: K, shape: S) =>
  z.strictObject({ kind: z.literal(kind), endpoint: z.optional(z.url()), conversationId: conversationIdSchema, connectionIds, ...shape });
const fanoutJobSchema = z.discriminatedUnion('kind', [
  job('message', { seq, messageId }),
  job('edited', { seq, messageId }),
  job('deleted', { seq, messageId }),
  job('typing', { userId, state: z.enum(['start', 'stop']), at }),
  job('read', { userId, seq: z.int().check(z.minimum(0), z.maximum(Number.MAX_SAFE_INTEGER)), at }),
  job('presence', { userId, state: z.enum(['online', 'offline']), at }),
  job('occupancy', { occupancy: z.int().check(z.minimum(0), z.maximum(Number.MAX_SAFE_INTEGER)) }),
]);

function parseJob(record: SQSRecord): FanoutJob & { endpoint?: string | undefined } {
  return parseQueueRecord(record, fanoutJobSchema, 'a fan-out job');
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
      typing: given.typing ?? { expiresMs: config.TYPING_EXPIRES_MS },
      endpoint: given.endpoint ?? ownEndpoint(config.CALLBACK_URL),
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
        const ready = await services();
        built = ready;
        if (job.endpoint !== undefined && ownEndpoint(job.endpoint) !== ready.endpoint) {
          // Not ours to deliver, now or on any retry: dropped (the stack's own functions never name another).
          ready.log.error('fan-out job refused: it names another endpoint', { messageId: record.messageId, kind: job.kind });
          return;
        }
        const report = await runFanoutJob(ready, job);
        ready.log.info('fan-out batch done', { messageId: record.messageId, ...report });
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

/** An endpoint as the routes name it (no trailing slash), so the stage's compares equal however it was written. */
function ownEndpoint(url: string): string {
  return url.replace(/\/+$/, '');
}

export const handler = lambdaHandler(route);

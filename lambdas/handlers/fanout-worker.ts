import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import * as z from 'zod/mini';
import '../zod.js';
import { getContext } from '../context.js';
import { bootLog } from '../adapters/log.js';
import { errorSummary, runFanoutJob } from '../domain/delivery.js';
import { conversationIdSchema } from '../protocol.js';

/** API Gateway connection ids are base64-like (`L0SM9cOFvHcCIhw=`); anything else in a job is poison. */
const connectionIds = z
  .array(z.string().check(z.minLength(1), z.maxLength(128), z.regex(/^[A-Za-z0-9+/=_-]+$/)))
  .check(z.minLength(1), z.maxLength(1000));
const fanoutJobSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('message'),
    endpoint: z.url(),
    conversationId: conversationIdSchema,
    messageId: z.string().check(z.minLength(1), z.maxLength(128)),
    connectionIds,
  }),
  z.object({ kind: z.literal('frame'), endpoint: z.url(), frame: z.string().check(z.minLength(2)), connectionIds }),
]);

export class PoisonRecordError extends Error {
  override readonly name = 'PoisonRecordError';
}

const processor = new BatchProcessor(EventType.SQS);

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

async function processRecord(record: SQSRecord): Promise<void> {
  const receiveCount = record.attributes.ApproximateReceiveCount;
  try {
    const job = parseJob(record);
    const context = await getContext();
    const report = await runFanoutJob(context, job);
    context.log.info('fan-out batch done', { messageId: record.messageId, ...report });
  } catch (error) {
    // Reported back to SQS as this record's failure; after maxReceiveCount it moves to the DLQ.
    bootLog.error('fan-out record failed', { messageId: record.messageId, receiveCount, error: errorSummary(error) });
    throw error;
  }
}

/**
 * SQS fan-out worker: posts each batch; a record that fails (poison, or the store unavailable) is reported
 * alone through ReportBatchItemFailures, so its batch-mates are not redelivered.
 */
export async function handler(event: SQSEvent): Promise<SQSBatchResponse> {
  return processPartialResponse(event, processRecord, processor, { throwOnFullBatchFailure: false });
}

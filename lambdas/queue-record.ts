import type { SQSRecord } from 'aws-lambda';
import * as z from 'zod/mini';
import { PoisonRecordError } from './errors.js';

/**
 * A queued job read from its SQS record: JSON matching `schema`, or a PoisonRecordError (never retried into
 * success: it goes to the DLQ after maxReceiveCount). `what` names the job in the error ("a fan-out job").
 */
export function parseQueueRecord<T extends z.ZodMiniType>(record: SQSRecord, schema: T, what: string): z.output<T> {
  let body: unknown;
  try {
    body = JSON.parse(record.body);
  } catch (error) {
    throw new PoisonRecordError('record body is not JSON', { cause: error });
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new PoisonRecordError(`record is not ${what}`);
  return parsed.data;
}

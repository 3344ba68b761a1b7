import { UnavailableError } from '../errors.js';

const TRANSIENT_NAMES = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'LimitExceededException',
  'InternalServerError',
  'InternalFailure',
  'ServiceUnavailable',
  'TimeoutError',
  'RequestTimeout',
  'TooManyRequestsException',
]);

function status(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null || !('$metadata' in error)) return undefined;
  const metadata = error.$metadata;
  if (typeof metadata !== 'object' || metadata === null || !('httpStatusCode' in metadata)) return undefined;
  return typeof metadata.httpStatusCode === 'number' ? metadata.httpStatusCode : undefined;
}

/**
 * True when an AWS SDK v3 error means "the service is busy or unreachable" (after the SDK's own retries):
 * throttling, 5xx, time-outs, and network errors that never got an HTTP status.
 */
export function isTransientAwsError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (TRANSIENT_NAMES.has(error.name)) return true;
  const code = status(error);
  if (code === undefined) return true;
  return code >= 500 || code === 429;
}

/** Runs one AWS call; a transient failure becomes UnavailableError (answered `unavailable`), others pass through. */
export async function callAws<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (isTransientAwsError(error)) throw new UnavailableError(`${what} is unavailable`, { cause: error });
    throw error;
  }
}

/** A conditional write (or check) whose condition did not hold: an expected outcome, not a failure. */
export function isConditionFailure(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}

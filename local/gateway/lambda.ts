import { randomBytes, randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';
import type { LocalWebsocketEvent, RouteHandler, RouteResult } from './types.js';

/** Nominal Lambda timeout reported by `getRemainingTimeInMillis`; API Gateway itself gives up on integrations at 29 s. */
const NOMINAL_TIMEOUT_MS = 29_000;

/** Lambda function names allow only letters, digits, `-` and `_`, so `$connect` becomes `connect`. */
export function functionNameFor(routeKey: string): string {
  const cleaned = routeKey.replace(/[^A-Za-z0-9_-]/g, '');
  return `local-${cleaned === '' ? 'route' : cleaned}`;
}

function logStreamName(now: Date): string {
  const day = now.toISOString().slice(0, 10).replace(/-/g, '/');
  return `${day}/[$LATEST]${randomBytes(16).toString('hex')}`;
}

interface Settler {
  ok(result: unknown): void;
  fail(reason: unknown): void;
}

function lambdaContext(routeKey: string, settler: Settler): Context {
  const functionName = functionNameFor(routeKey);
  const started = Date.now();
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${functionName}`,
    memoryLimitInMB: '128',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: logStreamName(new Date(started)),
    getRemainingTimeInMillis: () => Math.max(0, NOMINAL_TIMEOUT_MS - (Date.now() - started)),
    // The legacy completion methods still end an invocation on the Node runtimes that keep them.
    done: (error?: Error, result?: unknown) => {
      if (error !== undefined && error !== null) settler.fail(error);
      else settler.ok(result);
    },
    fail: (error: Error | string) => settler.fail(error),
    succeed: (messageOrObject: unknown) => settler.ok(messageOrObject),
  };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    'then' in value &&
    typeof value.then === 'function'
  );
}

/** Reads a Lambda proxy result the lenient way API Gateway does; a bare string is a 200 with that body. */
export function normaliseResult(value: unknown): RouteResult | undefined {
  if (typeof value === 'string') return { statusCode: 200, body: value };
  if (typeof value !== 'object' || value === null) return undefined;
  const result: RouteResult = {};
  if ('statusCode' in value && typeof value.statusCode === 'number') result.statusCode = value.statusCode;
  if ('body' in value && typeof value.body === 'string') result.body = value.body;
  if ('headers' in value && typeof value.headers === 'object' && value.headers !== null) {
    const headers: Record<string, string> = {};
    for (const [name, v] of Object.entries(value.headers)) {
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') headers[name] = String(v);
    }
    result.headers = headers;
  }
  return result;
}

/** The error surfaced when a handler fails; keeps a non-Error rejection reason without stringifying its content. */
export class HandlerFailure extends Error {
  override readonly name = 'HandlerFailure';
  constructor(readonly reason: unknown) {
    super('handler failed');
  }
}

/**
 * Invokes a handler the way the Node Lambda runtime does: an async result, a callback, or the legacy context methods
 * settle it, whichever comes first. A handler with fewer than three parameters that returns no promise is done.
 */
export function invokeHandler(
  handler: RouteHandler,
  event: LocalWebsocketEvent,
  routeKey: string,
): Promise<RouteResult | undefined> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const settler: Settler = {
      ok(result) {
        if (settled) return;
        settled = true;
        resolve(normaliseResult(result));
      },
      fail(reason) {
        if (settled) return;
        settled = true;
        reject(reason instanceof Error ? reason : new HandlerFailure(reason));
      },
    };
    const context = lambdaContext(routeKey, settler);
    let returned: unknown;
    try {
      returned = handler(event, context, (error, result) => {
        if (error !== undefined && error !== null) settler.fail(error);
        else settler.ok(result);
      });
    } catch (error) {
      settler.fail(error);
      return;
    }
    if (isThenable(returned)) {
      returned.then(
        (result) => settler.ok(result),
        (error: unknown) => settler.fail(error),
      );
    } else if (handler.length < 3) {
      settler.ok(returned);
    }
  });
}

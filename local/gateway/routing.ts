import type { RouteTable } from './types.js';

const BODY_PREFIX = '$request.body.';
const SEGMENT = /^[A-Za-z0-9_-]+$/;

/** Route keys a client can never select through the message body. */
const RESERVED = new Set(['$connect', '$disconnect', '$default']);

/**
 * Compiles a `$request.body.<dotted.path>` route selection expression into the path to follow in the JSON body.
 * Other API Gateway forms (such as `${...}` templates or header selection) are rejected so a typo fails loudly.
 */
export function compileSelectionExpression(expression: string): string[] {
  if (!expression.startsWith(BODY_PREFIX)) {
    throw new Error(`unsupported routeSelectionExpression ${JSON.stringify(expression)}; use $request.body.<path>`);
  }
  const path = expression.slice(BODY_PREFIX.length).split('.');
  if (path.length === 0 || !path.every((segment) => SEGMENT.test(segment))) {
    throw new Error(`invalid routeSelectionExpression ${JSON.stringify(expression)}`);
  }
  return path;
}

/** The selection value of a text frame: the string at `path` in its JSON body, if there is one. */
export function selectionValue(body: string, path: readonly string[]): string | undefined {
  let current: unknown;
  try {
    current = JSON.parse(body);
  } catch {
    return undefined;
  }
  for (const segment of path) {
    if (typeof current !== 'object' || current === null || Array.isArray(current)) return undefined;
    if (!Object.prototype.hasOwnProperty.call(current, segment)) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return typeof current === 'string' ? current : undefined;
}

/** The route key for a message, `$default` as the fallback, or undefined when neither exists (a Forbidden reply). */
export function selectRoute(routes: RouteTable, body: string, path: readonly string[]): string | undefined {
  const value = selectionValue(body, path);
  if (value !== undefined && !RESERVED.has(value) && Object.prototype.hasOwnProperty.call(routes, value)) return value;
  return Object.prototype.hasOwnProperty.call(routes, '$default') ? '$default' : undefined;
}

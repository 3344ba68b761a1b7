import * as z from 'zod/mini';
import './zod.js';
import type { ServerFrame } from './protocol.js';

/**
 * The parts of API Gateway's WebSocket proxy event the handlers read. Events are parsed, not trusted: a
 * malformed one is answered, never thrown on.
 */
const upTo = (max: number) => z.optional(z.string().check(z.maxLength(max)));
const requestContextSchema = z.object({
  // API Gateway's ids never hold `#`, which the registry's keys use for what is not a connection (`user#…`).
  connectionId: z.string().check(z.minLength(1), z.maxLength(128), z.regex(/^[^#]+$/)),
  requestId: upTo(128),
  routeKey: upTo(128),
  domainName: upTo(253),
  stage: upTo(128),
});

export const proxyEventSchema = z.object({
  requestContext: requestContextSchema,
  body: z.nullish(z.string()),
  isBase64Encoded: z.optional(z.boolean()),
  queryStringParameters: z.nullish(z.record(z.string(), z.optional(z.string()))),
  headers: z.nullish(z.record(z.string(), z.optional(z.string()))),
});
/** API Gateway's WebSocket Lambda proxy event, as far as the handlers read it. */
export type ProxyEvent = z.infer<typeof proxyEventSchema>;

export interface RouteResponse {
  statusCode: number;
  body?: string;
  headers?: Record<string, string>;
}

export function parseProxyEvent(event: unknown): ProxyEvent | undefined {
  const parsed = proxyEventSchema.safeParse(event);
  return parsed.success ? parsed.data : undefined;
}

/** The frame text: API Gateway base64-encodes binary frames. */
export function bodyText(event: ProxyEvent): string {
  const body = event.body ?? '';
  return event.isBase64Encoded === true ? Buffer.from(body, 'base64').toString('utf8') : body;
}

/** Management API endpoint for this event: the configured callback URL, else https://{domainName}/{stage}. */
export function callbackEndpoint(config: { CALLBACK_URL: string | undefined }, event: ProxyEvent): string {
  if (config.CALLBACK_URL !== undefined) return config.CALLBACK_URL.replace(/\/+$/, '');
  const { domainName, stage } = event.requestContext;
  return `https://${domainName ?? 'localhost'}/${stage ?? ''}`.replace(/\/+$/, '');
}

/** Case-insensitive header lookup. */
export function header(event: ProxyEvent, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(event.headers ?? {})) {
    if (key.toLowerCase() === wanted) return value;
  }
  return undefined;
}

export function answer(frame: ServerFrame | undefined): RouteResponse {
  return frame === undefined ? { statusCode: 200 } : { statusCode: 200, body: JSON.stringify(frame) };
}

/** A short action name from the client, safe to put back in an error frame. */
export function safeAction(value: unknown): string | undefined {
  return typeof value === 'string' && /^[A-Za-z0-9_$-]{1,32}$/.test(value) ? value : undefined;
}

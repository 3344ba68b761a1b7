import { STATUS_CODES, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';

/** A JSON answer in the style of AWS REST-JSON services: the SDK reads the error name from `x-amzn-ErrorType`. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  errorType?: string,
  extraHeaders: Record<string, string> = {},
): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  const headers: Record<string, string | number> = {
    'x-amzn-RequestId': randomUUID(),
    ...extraHeaders,
  };
  if (text !== '') {
    headers['Content-Type'] = 'application/json';
    headers['Content-Length'] = Buffer.byteLength(text);
  }
  if (errorType !== undefined) headers['x-amzn-ErrorType'] = errorType;
  res.writeHead(status, headers);
  res.end(text);
}

export function sendError(
  res: ServerResponse,
  status: number,
  errorType: string,
  message: string,
  extraHeaders: Record<string, string> = {},
): void {
  sendJson(res, status, { message }, errorType, extraHeaders);
}

/** Answers an upgrade request with a plain HTTP response on the raw socket, then closes it. */
export function rejectUpgrade(socket: Duplex, status: number, message: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ message });
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'Connection: close',
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `x-amzn-RequestId: ${randomUUID()}`,
  ];
  socket.once('finish', () => socket.destroy());
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}

/** Splits a request target into its path and its raw query string (without `?`, empty when absent). */
export function splitTarget(target: string): { pathname: string; rawQuery: string } {
  const q = target.indexOf('?');
  return q === -1 ? { pathname: target, rawQuery: '' } : { pathname: target.slice(0, q), rawQuery: target.slice(q + 1) };
}

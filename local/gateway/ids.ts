import { randomBytes, randomInt } from 'node:crypto';

/**
 * AWS WebSocket connection ids (and request/message ids) are 16 characters of standard base64 ending in `=`, such as
 * `L0SM9cOFvHcCIhw=`. Eleven random bytes encode to exactly that shape, and the `+`, `/` and `=` it can contain make
 * URL-encoding mistakes in `@connections/{id}` show up locally instead of in production.
 */
export function newAwsStyleId(): string {
  return randomBytes(11).toString('base64');
}

const API_ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** API ids are 10 lowercase alphanumerics, like `a1b2c3d4e5`. */
export function newApiId(): string {
  let id = '';
  for (let i = 0; i < 10; i += 1) id += API_ID_ALPHABET.charAt(randomInt(API_ID_ALPHABET.length));
  return id;
}

/** An X-Ray style trace header value: `Root=1-<epoch seconds hex>-<24 hex>`. */
export function newTraceId(nowMs: number): string {
  return `Root=1-${Math.floor(nowMs / 1000).toString(16)}-${randomBytes(12).toString('hex')}`;
}

import type { Delivered } from './sockets.js';

/** Messages between the bench and its client child process (bench/lib/client-child.ts), over Node IPC. */

export type PoolRequest =
  | { id: number; op: 'open'; urls: string[]; concurrency: number }
  | { id: number; op: 'reset' }
  | { id: number; op: 'wait'; total: number; timeoutMs: number }
  | { id: number; op: 'drop' }
  | { id: number; op: 'close' };

export type PoolReply =
  | { kind: 'ready' }
  | { kind: 'progress'; count: number }
  | { kind: 'done'; id: number; delivered: Delivered }
  | { kind: 'failed'; id: number; message: string };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function isDelivered(value: unknown): value is Delivered {
  return isRecord(value) && typeof value.received === 'number' && typeof value.firstAt === 'number' && typeof value.lastAt === 'number';
}

export function isPoolReply(value: unknown): value is PoolReply {
  if (!isRecord(value)) return false;
  switch (value.kind) {
    case 'ready':
      return true;
    case 'progress':
      return typeof value.count === 'number';
    case 'done':
      return typeof value.id === 'number' && isDelivered(value.delivered);
    case 'failed':
      return typeof value.id === 'number' && typeof value.message === 'string';
    default:
      return false;
  }
}

export function isPoolRequest(value: unknown): value is PoolRequest {
  if (!isRecord(value) || typeof value.id !== 'number') return false;
  switch (value.op) {
    case 'open':
      return Array.isArray(value.urls) && value.urls.every((u) => typeof u === 'string') && typeof value.concurrency === 'number';
    case 'reset':
    case 'drop':
    case 'close':
      return true;
    case 'wait':
      return typeof value.total === 'number' && typeof value.timeoutMs === 'number';
    default:
      return false;
  }
}

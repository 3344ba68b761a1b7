import type { Device, DevicePosition, LogEntry } from '../ports.js';

/** Out-of-order acks kept above `ackedThrough` at most; beyond it the lowest are kept (they compact first). */
export const MAX_OUT_OF_ORDER_ACKS = 1000;

/**
 * The position after acking `seqs` and everything through `upToSeq`: `ackedThrough` moves up over every seq
 * now acked, what stays out of order is kept sorted and bounded. Pure: the caller saves it (versioned).
 */
export function withAcks(position: DevicePosition, seqs: readonly number[], upToSeq: number | undefined): DevicePosition {
  let through = Math.max(position.ackedThrough, upToSeq ?? 0);
  const above = new Set([...position.acked, ...seqs].filter((seq) => seq > through));
  while (above.delete(through + 1)) through += 1;
  const acked = [...above].sort((a, b) => a - b).slice(0, MAX_OUT_OF_ORDER_ACKS);
  return { ...position, ackedThrough: through, acked, version: position.version + 1 };
}

/** True when a log entry is this device's own message: it is never pending for it. */
export function isOwn(entry: Pick<LogEntry, 'senderId' | 'senderDevice'>, device: Device): boolean {
  return entry.senderId === device.userId && entry.senderDevice === device.deviceId;
}

/**
 * Moves `ackedThrough` over the device's own messages that sit right above it (they are never acked, so they
 * would hold the out-of-order acks above them forever). `entries` ascend from `ackedThrough + 1`.
 */
export function overOwn(position: DevicePosition, entries: readonly LogEntry[], device: Device): DevicePosition {
  let through = position.ackedThrough;
  const acked = new Set(position.acked);
  for (const entry of entries) {
    if (entry.seq !== through + 1) break;
    if (!isOwn(entry, device) && !acked.has(entry.seq)) break;
    through = entry.seq;
    acked.delete(entry.seq);
  }
  if (through === position.ackedThrough) return position;
  return { ...position, ackedThrough: through, acked: [...acked].filter((seq) => seq > through) };
}

/** True when nothing a reader can see changed. */
export function samePosition(a: DevicePosition, b: DevicePosition): boolean {
  return a.ackedThrough === b.ackedThrough && a.acked.length === b.acked.length && a.acked.every((seq, i) => seq === b.acked[i]);
}

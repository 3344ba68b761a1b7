import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_OUT_OF_ORDER_ACKS, isOwn, overOwn, samePosition, withAcks } from '../../../lambdas/domain/positions.js';
import type { Device, DevicePosition, LogEntry } from '../../../lambdas/ports.js';

const phone: Device = { userId: 'alice', deviceId: 'phone' };

function position(ackedThrough: number, acked: number[] = [], version = 1): DevicePosition {
  return { conversationId: 'conv', userId: 'alice', deviceId: 'phone', ackedThrough, acked, lastSeenAt: 0, version };
}

function entry(seq: number, senderId: string, senderDevice = 'phone'): LogEntry {
  return { conversationId: 'conv', seq, messageId: `m${seq}`, senderId, senderDevice, clientMessageId: `c${seq}`, sentAt: seq, sealed: 'x' };
}

/** What acking every seq of `seqs` from nothing must give: the longest run from 1, and the rest sorted. */
function expectedFrom(seqs: readonly number[]): { ackedThrough: number; acked: number[] } {
  const all = new Set(seqs);
  let through = 0;
  while (all.has(through + 1)) through += 1;
  return { ackedThrough: through, acked: [...all].filter((s) => s > through).sort((a, b) => a - b) };
}

describe('withAcks', () => {
  it('compacts in-order acks into ackedThrough', () => {
    // Prepare
    const start = position(2);
    // Act
    const next = withAcks(start, [3, 4], undefined);
    // Assess
    expect(next).toMatchObject({ ackedThrough: 4, acked: [] });
  });

  it('keeps out-of-order acks sorted, without repeats, and compacts them once the gap fills', () => {
    // Prepare
    const start = position(0);
    // Act
    const gapped = withAcks(start, [7, 3, 5, 3], undefined);
    const filled = withAcks(gapped, [1, 2], undefined);
    // Assess
    expect(gapped).toMatchObject({ ackedThrough: 0, acked: [3, 5, 7] });
    expect(filled).toMatchObject({ ackedThrough: 3, acked: [5, 7] });
  });

  it('moves up to upToSeq and compacts the acks just above it', () => {
    // Prepare
    const start = position(1, [4, 6]);
    // Act
    const next = withAcks(start, [], 3);
    // Assess
    expect(next).toMatchObject({ ackedThrough: 4, acked: [6] });
  });

  it('never moves backwards, and drops acks at or below the position', () => {
    // Prepare
    const start = position(5, [8]);
    // Act
    const next = withAcks(start, [2, 5], 3);
    // Assess
    expect(next).toMatchObject({ ackedThrough: 5, acked: [8] });
    expect(samePosition(start, next)).toBe(true);
  });

  it('bumps the version and leaves its input alone', () => {
    // Prepare
    const start = position(0, [2], 7);
    // Act
    const next = withAcks(start, [1], undefined);
    // Assess
    expect(next.version).toBe(8);
    expect(start).toEqual(position(0, [2], 7));
  });

  it('keeps at most MAX_OUT_OF_ORDER_ACKS, the lowest (they compact first)', () => {
    // Prepare
    const seqs = Array.from({ length: MAX_OUT_OF_ORDER_ACKS + 5 }, (_, i) => 2 * i + 3);
    // Act
    const next = withAcks(position(0), seqs, undefined);
    // Assess
    expect(next.acked).toHaveLength(MAX_OUT_OF_ORDER_ACKS);
    expect(next.acked[0]).toBe(3);
    expect(next.acked.at(-1)).toBe(seqs[MAX_OUT_OF_ORDER_ACKS - 1]);
  });

  it('ends at the same position whatever order and batching the acks come in', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 60 }),
        fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 10 }),
        (seqs, sizes) => {
          // Prepare: split the acks into batches of the given sizes.
          const batches: number[][] = [];
          let at = 0;
          for (let i = 0; at < seqs.length; i += 1) {
            const size = sizes[i % sizes.length] ?? 1;
            batches.push(seqs.slice(at, at + size));
            at += size;
          }
          // Act
          const batched = batches.reduce((p, batch) => withAcks(p, batch, undefined), position(0));
          const once = withAcks(position(0), [...seqs].reverse(), undefined);
          // Assess
          expect({ ackedThrough: batched.ackedThrough, acked: batched.acked }).toEqual(expectedFrom(seqs));
          expect(samePosition(batched, once)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('overOwn', () => {
  it('walks over own messages and acked seqs right above the position', () => {
    // Prepare
    const start = position(1, [3, 6]);
    const entries = [entry(2, 'alice'), entry(3, 'bob'), entry(4, 'alice'), entry(5, 'bob'), entry(6, 'bob')];
    // Act
    const next = overOwn(start, entries, phone);
    // Assess
    expect(next).toMatchObject({ ackedThrough: 4, acked: [6] });
  });

  it('stops at another device\'s message, even the same user\'s', () => {
    // Prepare
    const start = position(0, [3]);
    const entries = [entry(1, 'alice', 'laptop'), entry(2, 'alice'), entry(3, 'bob')];
    // Act
    const next = overOwn(start, entries, phone);
    // Assess
    expect(next).toBe(start);
  });

  it('stops at a hole in the entries (a seq it did not read)', () => {
    // Prepare
    const start = position(0, [5]);
    const entries = [entry(1, 'alice'), entry(3, 'alice'), entry(5, 'bob')];
    // Act
    const next = overOwn(start, entries, phone);
    // Assess
    expect(next).toMatchObject({ ackedThrough: 1, acked: [5] });
  });

  it('returns the position itself when nothing moves', () => {
    // Prepare
    const start = position(2, [4]);
    // Act
    const next = overOwn(start, [entry(3, 'bob'), entry(4, 'bob')], phone);
    // Assess
    expect(next).toBe(start);
  });
});

describe('isOwn and samePosition', () => {
  it('isOwn needs both the user and the device', () => {
    // Act / Assess
    expect(isOwn({ senderId: 'alice', senderDevice: 'phone' }, phone)).toBe(true);
    expect(isOwn({ senderId: 'alice', senderDevice: 'laptop' }, phone)).toBe(false);
    expect(isOwn({ senderId: 'bob', senderDevice: 'phone' }, phone)).toBe(false);
  });

  it('samePosition compares what a reader sees, not the version or lastSeenAt', () => {
    // Prepare
    const a = position(3, [5, 7], 1);
    // Act / Assess
    expect(samePosition(a, { ...position(3, [5, 7], 9), lastSeenAt: 42 })).toBe(true);
    expect(samePosition(a, position(4, [5, 7]))).toBe(false);
    expect(samePosition(a, position(3, [5]))).toBe(false);
    expect(samePosition(a, position(3, [5, 8]))).toBe(false);
  });
});

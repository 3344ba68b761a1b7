import type { Delivered } from './sockets.js';
import { now } from './limit.js';
import { round } from './stats.js';

export interface Throughput {
  deliveries: number;
  expected: number;
  seconds: number;
  perSecond: number;
  /** False when the run hit its time limit before every delivery arrived. */
  complete: boolean;
  /** Frames beyond the expected ones (a retried post that had been delivered): not counted in the rate. */
  extra: number;
  /** Each round's rate when this is the mean of several rounds. */
  runs?: number[];
}

/** Deliveries per second from the start of sending to the last frame received. */
export function throughput(delivered: Delivered, expected: number, startedAt: number): Throughput {
  const complete = delivered.received >= expected;
  const end = complete && delivered.lastAt > 0 ? delivered.lastAt : now();
  const seconds = Math.max(1e-6, (end - startedAt) / 1000);
  const counted = Math.min(delivered.received, expected);
  return {
    deliveries: counted,
    expected,
    seconds: round(seconds, 3),
    perSecond: round(counted / seconds, 0),
    complete,
    extra: Math.max(0, delivered.received - expected),
  };
}

import { EmfMetrics, NoMetrics } from '../adapters/metrics.js';
import type { Log, Metrics } from '../ports.js';

/** The container's counters: EMF lines on stdout with `METRICS=emf` (the stack sets it), none otherwise. */
export function metricsOf(config: { METRICS: 'off' | 'emf'; METRICS_STAGE: string }, log: Log): Metrics {
  return config.METRICS === 'emf' ? new EmfMetrics(config.METRICS_STAGE, log) : new NoMetrics();
}

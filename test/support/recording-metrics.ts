import type { MetricName, Metrics } from '../../lambdas/ports.js';

/**
 * The metrics port's twin for tests: what was counted since the last flush (`pending`), and each flush as it
 * would have been emitted (`flushed`, one entry per EMF line, empty flushes left out as EmfMetrics does).
 */
export class RecordingMetrics implements Metrics {
  readonly pending = new Map<MetricName, number>();
  readonly flushed: Partial<Record<MetricName, number>>[] = [];

  count(name: MetricName, value = 1): void {
    if (!Number.isFinite(value) || value <= 0) return;
    this.pending.set(name, (this.pending.get(name) ?? 0) + value);
  }

  flush(): void {
    if (this.pending.size === 0) return;
    this.flushed.push(Object.fromEntries(this.pending));
    this.pending.clear();
  }

  /** Everything counted, flushed or not. */
  totals(): Partial<Record<MetricName, number>> {
    const totals: Partial<Record<MetricName, number>> = {};
    for (const entry of [...this.flushed, Object.fromEntries(this.pending)]) {
      for (const [name, value] of Object.entries(entry) as [MetricName, number][]) totals[name] = (totals[name] ?? 0) + value;
    }
    return totals;
  }
}

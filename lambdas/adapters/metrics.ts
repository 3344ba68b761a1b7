import { Metrics as PowertoolsMetrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { errorSummary, type ErrorCode } from '../errors.js';
import type { ConnectionPoster, Log, MetricName, Metrics, PostOutcome } from '../ports.js';
import { bootLog } from './log.js';

/** Where the alarms and the dashboard (lib/alarms.ts) look for the counters. */
export const METRICS_NAMESPACE = 'RelayWs';
/** Powertools adds a `service` dimension to every metric; the stage is the other one. */
export const METRICS_SERVICE = 'relay-ws';

/**
 * Counters as CloudWatch embedded metric format (EMF) through Powertools Metrics: summed in the container, then
 * one JSON line on stdout per flush, which CloudWatch Logs turns into metrics (no API call, no added latency).
 * Summing first keeps a worker's thousand posts one value, not a thousand. Counting and flushing never throw: a
 * metric that cannot be written is logged and dropped, never a frame's failure.
 */
export class EmfMetrics implements Metrics {
  private readonly counts = new Map<MetricName, number>();
  private readonly emf: PowertoolsMetrics;

  constructor(
    stage: string,
    private readonly log: Log,
  ) {
    this.emf = new PowertoolsMetrics({
      namespace: METRICS_NAMESPACE,
      serviceName: METRICS_SERVICE,
      defaultDimensions: { stage },
      // Powertools' own warnings (an invalid metric) go to the structured log, not to a bare console line.
      logger: {
        debug: () => undefined,
        info: () => undefined,
        warn: (...content: unknown[]) => log.warn('metrics warning', { detail: String(content[0]) }),
        error: (...content: unknown[]) => log.warn('metrics error', { detail: String(content[0]) }),
      },
    });
  }

  count(name: MetricName, value = 1): void {
    if (!Number.isFinite(value) || value <= 0) return;
    this.counts.set(name, (this.counts.get(name) ?? 0) + value);
  }

  flush(): void {
    if (this.counts.size === 0) return;
    try {
      for (const [name, value] of this.counts) this.emf.addMetric(name, MetricUnit.Count, value);
      this.emf.publishStoredMetrics();
    } catch (error) {
      this.log.warn('metrics not published', { error: errorSummary(error) });
    } finally {
      this.counts.clear();
    }
  }
}

/** No metrics: the local backend and tests, unless `METRICS=emf`. */
export class NoMetrics implements Metrics {
  count(): void {}
  flush(): void {}
}

/**
 * For the moments before a route's services exist (or when they cannot be built), as `bootLog` is for logs:
 * from process.env, so only a Lambda with `METRICS=emf` emits anything.
 */
export const bootMetrics: Metrics =
  process.env.METRICS === 'emf' ? new EmfMetrics(process.env.METRICS_STAGE ?? 'local', bootLog) : new NoMetrics();

/**
 * Counts a request that reached its services, and its answer when it is one the alarms watch; then flushes:
 * one EMF line per frame, whatever the domain counted on the way (posts, fan-out jobs) included.
 */
export function countAnswer(metrics: Metrics, code: ErrorCode | undefined): void {
  metrics.count('requests');
  if (code === 'unavailable' || code === 'rate_limited') metrics.count(code);
  metrics.flush();
}

/** The counter of each post outcome. */
const POST_METRICS: Record<PostOutcome, MetricName> = { delivered: 'deliveries', gone: 'gone', failed: 'failed' };

/** A poster whose every post is counted by its outcome: live deliveries, receipts, notices and replays alike. */
export function countedPoster(poster: ConnectionPoster, metrics: Metrics): ConnectionPoster {
  return {
    post: async (connectionId, data) => {
      const outcome = await poster.post(connectionId, data);
      metrics.count(POST_METRICS[outcome]);
      return outcome;
    },
  };
}

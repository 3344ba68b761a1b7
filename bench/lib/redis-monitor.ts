import { Redis } from 'ioredis';
import { pollUntil } from './limit.js';

export interface RedisCounts {
  /** Commands sent by clients (each a request on the wire; a script call is one). */
  roundTrips: number;
  byCommand: Record<string, number>;
  /** Commands run inside scripts (no network round trip of their own). */
  scriptCommands: number;
}

const MARKER = 'relay-bench-marker';

/**
 * Counts what reaches a dedicated redis-server through MONITOR. `settle()` sends a marker from another connection
 * and waits until MONITOR has shown it, so every command issued before is counted.
 */
export class RedisCommandCounter {
  counting = false;
  private counts: RedisCounts = { roundTrips: 0, byCommand: {}, scriptCommands: 0 };
  private markersSeen = 0;

  private constructor(
    private readonly monitor: Redis,
    private readonly marker: Redis,
  ) {
    monitor.on('monitor', (_time: string, args: unknown, source: unknown) => {
      const list = Array.isArray(args) ? args.map(String) : [];
      const command = (list[0] ?? '').toLowerCase();
      if (command === 'echo' && list[1]?.startsWith(MARKER) === true) {
        this.markersSeen += 1;
        return;
      }
      if (!this.counting) return;
      if (source === 'lua') {
        this.counts.scriptCommands += 1;
        return;
      }
      this.counts.roundTrips += 1;
      this.counts.byCommand[command] = (this.counts.byCommand[command] ?? 0) + 1;
    });
  }

  static async start(url: string): Promise<RedisCommandCounter> {
    // The connection `redis.monitor()` would make, built here so that its error listener is on before it connects:
    // on a busy server (the presence sweeper runs every few seconds) MONITOR's first lines can arrive in the same
    // packet as its OK, before ioredis has switched to monitor mode, and it reports each as an 'error' ("Command
    // queue state error") and drops it. Nothing is counted before the first settle(), so those lines do not matter;
    // unheard, the event would end the process. A real failure still shows: settle() times out.
    const monitor = new Redis(url, { monitor: true, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    monitor.on('error', () => undefined);
    const monitoring = new Promise<void>((resolve) => monitor.once('monitoring', () => resolve()));
    await monitor.connect();
    await monitoring;
    const marker = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => null });
    return new RedisCommandCounter(monitor, marker);
  }

  reset(): void {
    this.counts = { roundTrips: 0, byCommand: {}, scriptCommands: 0 };
  }

  async settle(): Promise<RedisCounts> {
    const target = this.markersSeen + 1;
    await this.marker.echo(`${MARKER}-${target}`);
    await pollUntil(() => this.markersSeen >= target, 5_000, 2);
    return { roundTrips: this.counts.roundTrips, byCommand: { ...this.counts.byCommand }, scriptCommands: this.counts.scriptCommands };
  }

  close(): void {
    this.monitor.disconnect();
    this.marker.disconnect();
  }
}

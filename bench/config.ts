import { connectionsSettings, type ConnectionsSettings } from './scenarios/connections.js';
import { readsSettings, type ReadsSettings } from './scenarios/reads.js';
import { sentSettings, type SentSettings } from './scenarios/sent.js';

/** What one `npm run bench` (or `bench:quick`, BENCH_QUICK=1) measures, and how long each part may take. */

export type ClientPlacement = 'inproc' | 'child';

export interface BenchConfig {
  quick: boolean;
  /** Scenarios to run (BENCH_ONLY=fanout,typing,… narrows it; all by default). */
  only: ReadonlySet<ScenarioName>;
  fanout: {
    /** Receiving connections per conversation (the sender is one more connection). */
    sizes: readonly number[];
    /** Messages per run at each size. */
    messages(n: number): number;
    /** Interleaved rounds of ours and naive (A/B/A/B), so drift in the machine's load hits both alike. */
    rounds: number;
    /** The raw ceiling sends at least this many deliveries (it is fast; a short run is mostly noise). */
    rawDeliveries: number;
    /** sendMessage frames (or naive invocations) in flight at once. */
    window: number;
    /** Where the receiving sockets live for the headline figures. */
    clients: ClientPlacement;
    /** Size at which both placements are measured, to show which one the single event loop distorts. */
    placementCheckAt: number | undefined;
    /** Sizes at which the what-if (the prototype poster in the handlers' context) runs. */
    whatIfSizes: readonly number[];
    /** Sizes at which one extra run of ours is CPU-profiled (not counted in the figures). */
    profileSizes: readonly number[];
    /** Posts per poster in the poster micro-benchmark. */
    posterPosts: number;
    runTimeoutMs: number;
  };
  typing: {
    members: number;
    samples: number;
    spacingMs: number;
    timeoutMs: number;
    /** Posts per typing frame: `sockets` devices of one user, `framesPerSocket` starts each within `spreadMs`, to each size of `recipients`. */
    burst: { sockets: number; framesPerSocket: number; spreadMs: number; recipients: readonly number[] };
  };
  cold: { samples: number; timeoutMs: number };
  ops: {
    sizes: readonly number[];
    repeats: number;
    /** Messages pending for the device whose getUnacked frames are counted. */
    pending: number;
    scanTableRows: number;
    /** sendMessage invocations at once into one conversation (the seq is contended), `rounds` times that many. */
    contention: { inFlight: number; rounds: number };
  };
  /** Time to `sent` (scenarios/sent.ts). */
  sent: SentSettings;
  /** $connect, subscribe and $disconnect of protocol v2 (scenarios/connections.ts). */
  connections: ConnectionsSettings;
  /** getConversations and markRead (scenarios/reads.ts). */
  reads: ReadsSettings;
}

export const SCENARIOS = ['fanout', 'typing', 'cold', 'sent', 'ops', 'connections', 'reads'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

function isScenario(name: string): name is ScenarioName {
  return (SCENARIOS as readonly string[]).includes(name);
}

export function loadBenchConfig(env: NodeJS.ProcessEnv = process.env): BenchConfig {
  const quick = env.BENCH_QUICK === '1' || env.BENCH_QUICK === 'true';
  const only = new Set<ScenarioName>(
    (env.BENCH_ONLY ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(isScenario),
  );
  return {
    quick,
    only: only.size === 0 ? new Set(SCENARIOS) : only,
    fanout: {
      sizes: quick ? [10, 100] : [10, 100, 1000],
      messages: (n) => (n <= 10 ? (quick ? 60 : 400) : n <= 100 ? (quick ? 40 : 100) : 20),
      rounds: quick ? 1 : 2,
      rawDeliveries: quick ? 50_000 : 200_000,
      window: 8,
      clients: 'child',
      placementCheckAt: quick ? undefined : 100,
      whatIfSizes: quick ? [100] : [10, 100, 1000],
      profileSizes: quick ? [] : [10, 100, 1000],
      posterPosts: quick ? 2_000 : 6_000,
      runTimeoutMs: 60_000,
    },
    typing: {
      members: 10,
      samples: quick ? 200 : 400,
      spacingMs: 3,
      timeoutMs: 2_000,
      // 99 recipients: 100 members, at the size limit (coalesced); 100 recipients: 101 members, above it (nothing).
      burst: { sockets: 5, framesPerSocket: 20, spreadMs: 1_000, recipients: quick ? [99, 100] : [10, 99, 100] },
    },
    cold: { samples: quick ? 3 : 9, timeoutMs: 20_000 },
    ops: { sizes: [2, 10, 100], repeats: quick ? 3 : 10, pending: quick ? 300 : 1_000, scanTableRows: 10_000, contention: { inFlight: 8, rounds: quick ? 2 : 4 } },
    sent: sentSettings(quick),
    connections: connectionsSettings(quick),
    reads: readsSettings(quick),
  };
}

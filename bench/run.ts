import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadBenchConfig, type ScenarioName } from './config.js';
import { BenchBackend } from './lib/backend.js';
import { fanoutChart, type Series } from './lib/chart.js';
import { loadNow, machine } from './lib/machine.js';
import { BENCH_DIR, resultsPath } from './lib/paths.js';
import { Progress } from './lib/progress.js';
import { renderReport } from './lib/report.js';
import type { BenchResults } from './lib/results.js';
import { startServiceProcess } from './lib/services.js';
import { evaluateTargets } from './lib/targets.js';
import { SDK_POSTER } from './lib/whatif.js';
import { runColdStart } from './scenarios/coldstart.js';
import { runConnections } from './scenarios/connections.js';
import { runFanout } from './scenarios/fanout.js';
import { runOps } from './scenarios/ops.js';
import { runReads } from './scenarios/reads.js';
import { runSent } from './scenarios/sent.js';
import { runTyping } from './scenarios/typing.js';

/**
 * `npm run bench` (BENCH_QUICK=1: `npm run bench:quick`; BENCH_ONLY=fanout,typing,cold,sent,ops,connections,reads
 * for a part): fan-out throughput against a raw `ws` ceiling and the naive SDK fan-out, typing latency, cold start, time to
 * `sent` (with and without a modelled Management API delay), operations and cost per event, and the work of
 * `$connect` / `subscribe` / `$disconnect` (one socket per device against v1's one per conversation). Progress on stderr; tables on stdout; bench/results/latest.json (+ latest.md) and bench/fanout.svg.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const config = loadBenchConfig();
const progress = new Progress();
const started = Date.now();
const results: BenchResults = {
  date: new Date().toISOString(),
  quick: config.quick,
  wallSeconds: 0,
  machine: machine(),
  setup: {
    clients: config.fanout.clients === 'child' ? 'a child process (fan-out), the bench process (typing)' : 'the bench process',
    services: 'gateway emulator + real handlers in the bench process; dynalite + fauxqs in a child process; redis-server',
    window: config.fanout.window,
    fanoutThreshold: undefined,
    memoryMb: undefined,
  },
  errors: [],
  targets: [],
};

async function attempt(scenario: ScenarioName, work: () => Promise<void>): Promise<void> {
  if (!config.only.has(scenario)) return;
  try {
    await work();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    results.errors.push({ scenario, message });
    progress.note(`${scenario} failed: ${message}`);
  }
}

const services = await startServiceProcess();
try {
  if (config.only.has('fanout') || config.only.has('typing') || config.only.has('cold')) {
    const bench = await BenchBackend.start({ dynamodbEndpoint: services.dynamodbEndpoint, sqsEndpoint: services.sqsEndpoint });
    results.setup.fanoutThreshold = Number(bench.backend.env.FANOUT_THRESHOLD ?? '100');
    try {
      await attempt('fanout', async () => {
        results.fanout = await runFanout(config, bench, progress);
      });
      await attempt('typing', async () => {
        results.typing = await runTyping(config, bench, progress, !config.quick);
      });
      await attempt('cold', async () => {
        results.cold = await runColdStart(config, bench, progress);
      });
    } finally {
      await bench.close();
    }
  }
  await attempt('sent', async () => {
    results.sent = await runSent(config.sent, services, progress);
  });
  await attempt('ops', async () => {
    results.ops = await runOps(config, services, progress);
    results.setup.memoryMb = results.ops.memoryMb;
  });
  await attempt('connections', async () => {
    results.connections = await runConnections(config.connections, services, progress);
  });
  await attempt('reads', async () => {
    results.reads = await runReads(config.reads, services, progress);
  });
} finally {
  await services.stop();
}

results.wallSeconds = (Date.now() - started) / 1000;
results.machine.loadEnd = loadNow();
results.targets = evaluateTargets(results);
const report = renderReport(results);
process.stdout.write(`\n${report}`);
await writeFile(resultsPath('latest.json'), `${JSON.stringify(results, null, 2)}\n`);
await writeFile(resultsPath('latest.md'), report);
if (results.fanout !== undefined && results.fanout.rows.length > 0) {
  const rows = results.fanout.rows;
  const series: Series[] = [
    { name: 'raw ws broadcast (ceiling)', color: '#7a7a7a', dashed: true, points: rows.map((r) => ({ x: r.n, y: r.raw.perSecond })) },
    { name: 'ours (handlers, emulator)', color: '#1f6feb', points: rows.map((r) => ({ x: r.n, y: r.ours.perSecond })) },
    { name: 'naive SDK Promise.all', color: '#d1242f', points: rows.map((r) => ({ x: r.n, y: r.naive.perSecond })) },
  ];
  const poster = results.fanout.whatIf.filter((w) => w.variant === SDK_POSTER);
  if (poster.length > 0) series.push({ name: 'ours with the SDK client poster (before)', color: '#bf8700', points: poster.map((w) => ({ x: w.n, y: w.ours.perSecond })) });
  const m = results.machine;
  const svg = fanoutChart(
    series,
    'Fan-out: deliveries per second through the local gateway',
    `${results.date.slice(0, 10)} · ${m.cpus} cores, Node ${m.node} · npm run bench${results.quick ? ':quick' : ''} · ${results.fanout.window} messages in flight`,
  );
  // Only a full run replaces the committed chart; the quick run (CI) writes its own beside its results.
  const chartPath = results.quick ? resultsPath('fanout.svg') : join(BENCH_DIR, 'fanout.svg');
  await mkdir(BENCH_DIR, { recursive: true });
  await writeFile(chartPath, svg);
}
progress.note(
  `bench: ${results.wallSeconds.toFixed(0)} s; results in bench/results/latest.json and latest.md${results.fanout === undefined ? '' : `, chart in ${results.quick ? 'bench/results/fanout.svg' : 'bench/fanout.svg'}`}`,
);
// Everything was closed above; exit now rather than wait on any socket a library keeps open.
process.exit(results.errors.length === 0 ? 0 : 1);

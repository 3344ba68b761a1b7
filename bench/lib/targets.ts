import type { BenchResults, Target } from './results.js';
import { median, round } from './stats.js';
import { RECIPIENTS_CACHE, SDK_POSTER } from './whatif.js';

const BUNDLE_LIMIT_BYTES = 400_000;
/** Cold start (import + first call) ÷ the document client sending one GetItem, bundled and timed the same way. */
const DISCONNECT_RATIO = 1.1;
const MEDIAN_RATIO = 1.2;
const MAX_RATIO = 1.4;

/** The issue's targets, checked against what was measured (reported, never asserted). */
export function evaluateTargets(results: BenchResults): Target[] {
  const targets: Target[] = [];
  const fanout = results.fanout;
  const row = fanout?.rows.find((r) => r.n === 100);
  const poster = fanout?.whatIf.find((w) => w.n === 100 && w.variant === SDK_POSTER);
  targets.push({
    name: 'fan-out vs raw ws ceiling, N=100',
    target: '≥ 0.10 × raw',
    measured: row === undefined ? 'not measured' : `${row.oursOverRaw.toFixed(3)} × (${row.ours.perSecond.toLocaleString('en-US')} vs ${row.raw.perSecond.toLocaleString('en-US')}/s)`,
    met: row === undefined ? undefined : row.oursOverRaw >= 0.1,
    ...(poster === undefined || row === undefined ? {} : { withPrototype: `${(poster.ours.perSecond / row.raw.perSecond).toFixed(3)} × with the SDK client poster (before)` }),
  });
  targets.push({
    name: 'fan-out vs naive SDK Promise.all, N=100',
    target: '≥ 3 × naive',
    measured: row === undefined ? 'not measured' : `${row.oursOverNaive.toFixed(2)} × (${row.naive.perSecond.toLocaleString('en-US')}/s naive)`,
    met: row === undefined ? undefined : row.oursOverNaive >= 3,
    ...(poster === undefined || row === undefined ? {} : { withPrototype: `${(poster.ours.perSecond / row.naive.perSecond).toFixed(2)} × with the SDK client poster (before)` }),
  });
  const typing = results.typing;
  const typingPoster = typing?.whatIf.find((w) => w.variant === SDK_POSTER);
  const typingCache = typing?.whatIf.find((w) => w.variant === RECIPIENTS_CACHE);
  targets.push({
    name: `typing p99, ${typing?.members ?? 10} members`,
    target: '≤ 10 ms',
    measured: typing === undefined ? 'not measured' : `${typing.latency.p99} ms (p50 ${typing.latency.p50}, p95 ${typing.latency.p95})`,
    met: typing === undefined ? undefined : typing.latency.p99 <= 10,
    ...(typingPoster === undefined
      ? {}
      : {
          withPrototype: `${typingPoster.latency.p99} ms with the SDK client poster (before)${typingCache === undefined ? '' : `; ${typingCache.latency.p99} ms adding a 2 s recipients cache`}`,
        }),
  });
  const cold = results.cold;
  if (cold === undefined) {
    targets.push({ name: 'cold start ÷ the document client + 1 GetItem', target: `$disconnect ≤ ${DISCONNECT_RATIO}×, median ≤ ${MEDIAN_RATIO}×, none > ${MAX_RATIO}×`, measured: 'not measured', met: undefined });
    targets.push({ name: 'bundle size', target: '≤ 400 kB', measured: 'not measured', met: undefined });
  } else {
    const ratios = cold.rows.map((r) => r.overReference);
    const disconnect = cold.rows.find((r) => r.name === 'disconnect');
    const middle = round(median(ratios), 2);
    const over = cold.rows.filter((r) => r.overReference > MAX_RATIO);
    const reference = `reference ${cold.reference.totalMs} ms`;
    targets.push({
      name: 'cold start of $disconnect ÷ the document client + 1 GetItem',
      target: `≤ ${DISCONNECT_RATIO}×`,
      measured: disconnect === undefined ? 'not measured' : `${disconnect.overReference}× (${disconnect.totalMs} ms; ${reference})`,
      met: disconnect === undefined ? undefined : disconnect.overReference <= DISCONNECT_RATIO,
    });
    targets.push({
      name: `cold start of the median function (of ${cold.rows.length}) ÷ the same`,
      target: `≤ ${MEDIAN_RATIO}×`,
      measured: `${middle}×`,
      met: middle <= MEDIAN_RATIO,
    });
    targets.push({
      name: 'cold start of every function ÷ the same',
      target: `none > ${MAX_RATIO}×`,
      measured: `highest ${Math.max(...ratios)}×; above: ${over.length === 0 ? 'none' : over.map((r) => `${r.name} ${r.overReference}×`).join(', ')}`,
      met: over.length === 0,
    });
    const big = cold.rows.filter((r) => r.bytes > BUNDLE_LIMIT_BYTES);
    const largest = [...cold.rows].sort((a, b) => b.bytes - a.bytes)[0];
    targets.push({
      name: 'bundle size (minified ESM, as the stack bundles)',
      target: 'each ≤ 400 kB',
      measured: `largest ${largest?.name ?? '–'} ${((largest?.bytes ?? 0) / 1000).toFixed(0)} kB; over: ${big.length === 0 ? 'none' : big.map((r) => r.name).join(', ')}`,
      met: big.length === 0,
    });
  }
  const ops = results.ops;
  const typingRows = ops?.rows.filter((r) => r.route === 'typing') ?? [];
  targets.push({
    name: 'typing: registry queries and scans per frame',
    target: '1 query, 0 scans',
    measured: typingRows.length === 0 ? 'not measured' : typingRows.map((r) => `N=${r.members}: ${r.registryQueries} query, ${r.scans} scans`).join('; '),
    met: typingRows.length === 0 ? undefined : typingRows.every((r) => r.registryQueries === 1 && r.scans === 0),
  });
  const unacked = ops?.getUnacked;
  targets.push({
    // The rate limit and the presence refresh (a frame is activity in its conversation); the page itself none.
    name: `getUnacked of ${unacked?.pending ?? 1000} pending: Redis round trips per frame (rate limit + presence refresh)`,
    target: '≤ 2',
    measured:
      unacked === undefined
        ? 'not measured'
        : `${unacked.roundTrips} (${Object.keys(unacked.byCommand).join(', ') || 'none'}); the page itself: ${Object.entries(unacked.dynamo.calls).map(([k, v]) => `${v} ${k}`).join(', ')} in DynamoDB`,
    met: unacked === undefined ? undefined : unacked.roundTrips <= 2,
  });
  return targets;
}

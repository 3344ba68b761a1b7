import { writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { Progress } from '../lib/progress.js';
import { startServiceProcess } from '../lib/services.js';
import { runSent, sentSettings } from './sent.js';

/**
 * The time-to-`sent` scenario by itself, so the same file can run in another checkout of the project (the "before"
 * figures of BENCHMARKS.md): `npx tsx bench/scenarios/sent-standalone.ts`. BENCH_QUICK=1 for the small version;
 * SENT_DELAYS=0,20 picks the modelled Management API delays; SENT_OUT=file.json also writes the result there.
 * Prints one JSON object on stdout.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const quick = process.env.BENCH_QUICK === '1' || process.env.BENCH_QUICK === 'true';
const base = sentSettings(quick);
const delays = (process.env.SENT_DELAYS ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter((s) => s !== '')
  .map(Number)
  .filter((d) => Number.isFinite(d) && d >= 0);
const settings = delays.length === 0 ? base : { ...base, delaysMs: delays };
const load = () => Math.round((loadavg()[0] ?? 0) * 100) / 100;
const loadStart = load();
const started = Date.now();
const services = await startServiceProcess();
let code = 0;
try {
  const result = await runSent(settings, services, new Progress());
  const record = { date: new Date(started).toISOString(), cwd: process.cwd(), quick, loadStart, loadEnd: load(), wallSeconds: (Date.now() - started) / 1000, ...result };
  const text = `${JSON.stringify(record, null, 2)}\n`;
  process.stdout.write(text);
  if (process.env.SENT_OUT !== undefined && process.env.SENT_OUT !== '') await writeFile(process.env.SENT_OUT, text);
} catch (error) {
  process.stderr.write(`sent scenario failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  code = 1;
} finally {
  await services.stop();
}
process.exit(code);

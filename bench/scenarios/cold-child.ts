import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { pathToFileURL } from 'node:url';

/**
 * One cold-start sample, run by plain `node` in a fresh process (bundled by the bench, see coldstart.ts): import
 * the handler bundle, invoke it once, print the timings as one JSON line, exit. With BENCH_PROFILE set, the same
 * is CPU-profiled into that file (such a sample is only used for the profile, not for the timings).
 */
type Handler = (event: unknown, context: unknown) => unknown;

const isHandler = (value: unknown): value is Handler => typeof value === 'function';

const started = performance.now();
const bundle = process.env.BENCH_BUNDLE ?? '';
const profileFile = process.env.BENCH_PROFILE;
const event: unknown = JSON.parse(process.env.BENCH_EVENT ?? '{}');
const context = {
  functionName: 'cold-start-bench',
  functionVersion: '$LATEST',
  awsRequestId: 'cold-start-bench',
  memoryLimitInMB: '512',
  callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => 10_000,
};

function finish(line: Record<string, unknown>, code: number): void {
  process.stdout.write(`${JSON.stringify(line)}\n`, () => process.exit(code));
}

const session = profileFile === undefined ? undefined : new Session();
try {
  if (session !== undefined) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    await session.post('Profiler.start');
  }
  const begin = performance.now();
  const module: unknown = await import(pathToFileURL(bundle).href);
  const loaded = performance.now();
  const handler = typeof module === 'object' && module !== null && 'handler' in module ? module.handler : undefined;
  if (!isHandler(handler)) throw new TypeError('the bundle exports no handler');
  const result: unknown = await handler(event, context);
  const invoked = performance.now();
  if (session !== undefined && profileFile !== undefined) {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(profileFile, JSON.stringify(profile));
  }
  finish({ bootMs: started, loadMs: loaded - begin, firstMs: invoked - loaded, result }, 0);
} catch (error) {
  finish({ error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) }, 1);
}

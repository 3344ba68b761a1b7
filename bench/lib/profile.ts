import { readFile, writeFile } from 'node:fs/promises';
import { SourceMap, type SourceMapPayload } from 'node:module';
import { basename } from 'node:path';
import { Session } from 'node:inspector/promises';
import type { Profiler } from 'node:inspector';

export interface ProfileShare {
  /** A package (`ioredis`, `@smithy/core`), an app folder (`lambdas/domain`), or a V8 category (`(garbage collector)`). */
  name: string;
  /** Share of all sampled time, 0–1. */
  share: number;
  ms: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Share of the time the process was busy (everything but `(idle)`). */
  busy: number;
  byPackage: ProfileShare[];
  topFunctions: ProfileShare[];
  file: string | undefined;
}

/** Samples this process's CPU (V8's profiler, like `node --cpu-prof`) while `work` runs. */
export async function profile<T>(work: () => Promise<T>, file: string | undefined): Promise<{ result: T; summary: ProfileSummary }> {
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 500 });
    await session.post('Profiler.start');
    const outcome = await work().then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    const stopped = await session.post('Profiler.stop');
    if (file !== undefined) await writeFile(file, JSON.stringify(stopped.profile));
    if (!outcome.ok) throw outcome.error;
    return { result: outcome.value, summary: summarize(stopped.profile, file) };
  } finally {
    session.disconnect();
  }
}

/** Maps a position in generated code (0-based line and column) to its original source file, if known. */
export type SourceMapper = (url: string, line: number, column: number) => string | undefined;

/** A mapper for one bundle, from its `.map` file: a minified bundle's samples are attributed to their packages. */
export async function bundleSourceMapper(bundleFile: string): Promise<SourceMapper> {
  const payload = JSON.parse(await readFile(`${bundleFile}.map`, 'utf8')) as SourceMapPayload;
  const map = new SourceMap(payload);
  const name = basename(bundleFile);
  return (url, line, column) => {
    if (!url.endsWith(name)) return undefined;
    const entry = map.findEntry(line, column);
    return 'originalSource' in entry ? entry.originalSource : undefined;
  };
}

/** Reads a `.cpuprofile` written by `node --cpu-prof` or the inspector. */
export async function readProfile(file: string): Promise<Profiler.Profile> {
  return JSON.parse(await readFile(file, 'utf8')) as Profiler.Profile;
}

/** Groups a profile's self time by where the code comes from. */
export function summarize(profile: Profiler.Profile, file: string | undefined, mapper?: SourceMapper): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfSamples = new Map<number, number>();
  for (const id of profile.samples ?? []) selfSamples.set(id, (selfSamples.get(id) ?? 0) + 1);
  const deltas = profile.timeDeltas ?? [];
  const totalMs = deltas.reduce((sum, d) => sum + d, 0) / 1000;
  const sampleCount = Math.max(1, profile.samples?.length ?? 0);
  const msPerSample = totalMs / sampleCount;
  const packages = new Map<string, number>();
  const functions = new Map<string, number>();
  let idle = 0;
  for (const [id, count] of selfSamples) {
    const node = byId.get(id);
    if (node === undefined) continue;
    const { url, functionName, lineNumber, columnNumber } = node.callFrame;
    const mapped = mapper?.(url, lineNumber, columnNumber);
    const unmapped = mapper !== undefined && mapped === undefined && url.endsWith('.mjs') && url.includes('/bundles/');
    const where = unmapped ? '(bundle code without a mapping: module top level)' : origin(mapped ?? url, functionName);
    if (where === '(idle)') idle += count;
    packages.set(where, (packages.get(where) ?? 0) + count);
    const fn = mapped === undefined ? `${functionName || '(anonymous)'} ${shortUrl(url)}:${lineNumber + 1}` : shortUrl(mapped);
    functions.set(fn, (functions.get(fn) ?? 0) + count);
  }
  const busySamples = Math.max(1, sampleCount - idle);
  const shares = (map: Map<string, number>, limit: number): ProfileShare[] =>
    [...map]
      .filter(([name]) => name !== '(idle)' && !name.startsWith('(idle)'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([name, count]) => ({ name, share: count / busySamples, ms: count * msPerSample }));
  return {
    totalMs,
    busy: busySamples / sampleCount,
    byPackage: shares(packages, 14),
    topFunctions: shares(functions, 12),
    file,
  };
}

function origin(url: string, functionName: string): string {
  if (url === '') {
    if (functionName === '(idle)' || functionName === '(program)' || functionName === '(garbage collector)') return `(${functionName.replace(/[()]/g, '')})`;
    return '(native)';
  }
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg?.[1] !== undefined) return pkg[1];
  if (url.startsWith('node:')) return 'node: (core)';
  const app = /(?:^|\/)((?:lambdas|local|bench)(?:\/[^/]+)?)\//.exec(url);
  if (app?.[1] !== undefined) return app[1].replace(/\.ts$/, '');
  return shortUrl(url);
}

function shortUrl(url: string): string {
  return url.replace(/^file:\/\//, '').replace(/.*node_modules\//, '').replace(/^.*\/(lambdas|local|bench)\//, '$1/');
}

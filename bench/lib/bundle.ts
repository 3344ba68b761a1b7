import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { build, type Metafile } from 'esbuild';
import { BUNDLING, RUNTIME } from '../../lib/functions.js';
import { REPOSITORY_ROOT } from './paths.js';

/** esbuild's target for the stack's runtime, as the CDK derives it (`nodejs22.x` → `node22`). */
export const STACK_TARGET = `node${/nodejs(\d+)/.exec(RUNTIME.name)?.[1] ?? '22'}`;

export interface PackageShare {
  name: string;
  bytes: number;
}

export interface Bundle {
  name: string;
  file: string;
  target: string;
  bytes: number;
  gzipBytes: number;
  /** Largest contributors to the output, by package (or app folder), from esbuild's metafile. */
  top: PackageShare[];
}

export type BundleSource = { entry: string } | { contents: string };

/**
 * Bundles one entry exactly as the stack's NodejsFunction does (lib/functions.ts BUNDLING: ESM, minify, source
 * map without sources, main fields, the createRequire banner, nothing external; platform node, the runtime's
 * target), plus a metafile for the size breakdown.
 */
export async function bundleLikeTheStack(name: string, source: BundleSource, outdir: string, target = STACK_TARGET): Promise<Bundle> {
  const file = join(outdir, name, 'index.mjs');
  const result = await build({
    ...('entry' in source
      ? { entryPoints: [join(REPOSITORY_ROOT, source.entry)] }
      : { stdin: { contents: source.contents, loader: 'ts', resolveDir: REPOSITORY_ROOT, sourcefile: `${name}.ts` } }),
    bundle: true,
    platform: 'node',
    target,
    format: BUNDLING.format === OutputFormat.ESM ? 'esm' : 'cjs',
    outfile: file,
    minify: BUNDLING.minify,
    sourcemap: BUNDLING.sourceMap,
    sourcesContent: BUNDLING.sourcesContent,
    mainFields: BUNDLING.mainFields,
    banner: { js: BUNDLING.banner },
    external: BUNDLING.externalModules,
    metafile: true,
    logLevel: 'error',
    absWorkingDir: REPOSITORY_ROOT,
  });
  const code = await readFile(file);
  return { name, file, target, bytes: code.length, gzipBytes: gzipSync(code).length, top: topContributors(result.metafile, 6) };
}

function topContributors(metafile: Metafile, limit: number): PackageShare[] {
  const output = Object.values(metafile.outputs).find((o) => o.entryPoint !== undefined) ?? Object.values(metafile.outputs)[0];
  const shares = new Map<string, number>();
  for (const [input, { bytesInOutput }] of Object.entries(output?.inputs ?? {})) {
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input)?.[1];
    const name = pkg ?? (/^(lambdas(?:\/[^/]+)?)\//.exec(input)?.[1] ?? input);
    shares.set(name, (shares.get(name) ?? 0) + bytesInOutput);
  }
  return [...shares]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([name, bytes]) => ({ name, bytes }));
}

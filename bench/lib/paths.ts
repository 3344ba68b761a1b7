import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** bench/ and its git-ignored results folder. */
export const BENCH_DIR = fileURLToPath(new URL('..', import.meta.url));
export const RESULTS_DIR = join(BENCH_DIR, 'results');
export const REPOSITORY_ROOT = join(BENCH_DIR, '..');

export function resultsPath(...parts: string[]): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  return join(RESULTS_DIR, ...parts);
}

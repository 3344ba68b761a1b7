import { vi } from 'vitest';

export interface Capture {
  /** Everything written to stdout and stderr since the capture started. */
  text(): string;
  /** The non-empty lines of that text. */
  lines(): string[];
  stop(): void;
}

/**
 * Captures what the process writes to stdout and stderr (Powertools Logger writes its JSON lines there through
 * its own Console) without passing it through.
 */
export function captureOutput(): Capture {
  const chunks: string[] = [];
  const keep = (chunk: unknown): boolean => {
    chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk instanceof Uint8Array ? chunk : String(chunk)).toString('utf8'));
    return true;
  };
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(keep);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(keep);
  return {
    text: () => chunks.join(''),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((line) => line.trim() !== ''),
    stop: () => {
      out.mockRestore();
      err.mockRestore();
    },
  };
}

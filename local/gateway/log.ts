import type { GatewayLogEntry } from './types.js';

/** A `log` option that writes each entry as one JSON line (entries never hold tokens or message bodies). */
export function jsonLineLog(
  write: (line: string) => void = (line) => {
    process.stderr.write(line);
  },
): (entry: GatewayLogEntry) => void {
  return (entry) => write(`${JSON.stringify({ time: new Date().toISOString(), source: 'local-gateway', ...entry })}\n`);
}

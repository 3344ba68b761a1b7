/** Markdown pipe tables: readable in a terminal and pasteable into BENCHMARKS.md. */
export type Cell = string | number;

export function table(headers: readonly string[], rows: readonly (readonly Cell[])[], numericRight = true): string {
  const text = rows.map((row) => row.map((cell) => (typeof cell === 'number' ? formatNumber(cell) : cell)));
  const widths = headers.map((h, i) => Math.max(h.length, ...text.map((row) => (row[i] ?? '').length)));
  const numeric = (cell: Cell | undefined) => typeof cell === 'number' || (typeof cell === 'string' && /^[-+$]?[\d,.]+(\s?(×|%|ms|kB))?( \(.*\))?$/.test(cell));
  const right = headers.map((_, i) => numericRight && rows.length > 0 && rows.every((row) => numeric(row[i])));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((cell, i) => (right[i] === true ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (right[i] === true ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [line(headers), rule, ...text.map(line)].join('\n');
}

export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return '–';
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export const kB = (bytes: number): string => `${(bytes / 1000).toFixed(0)} kB`;
export const dollars = (value: number): string => `$${value < 1 ? value.toFixed(3) : value.toFixed(2)}`;
export const ratio = (value: number): string => `${value.toFixed(value < 1 ? 3 : 2)}×`;

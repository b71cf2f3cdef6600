import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** One line of the table: a figure, the limit it is held against (measured in the same run), and the verdict. */
export interface Row {
  figure: string;
  value: string;
  limit: string;
  /** value ÷ limit in the direction the target is written (higher is better for rates, lower for times). */
  ratio: number | undefined;
  target: string;
  pass: boolean | undefined;
}

export const ms = (n: number) => (Number.isFinite(n) ? (n < 10 ? n.toFixed(2) : n.toFixed(1)) : '–');
export const rate = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–');

export function errorRow(figure: string, target: string, error: unknown): Row {
  return {
    figure,
    value: `error: ${String(error instanceof Error ? error.message : error).split('\n')[0]}`,
    limit: '–',
    ratio: undefined,
    target,
    pass: undefined,
  };
}

export function renderTable(rows: readonly Row[]): string {
  const head = ['figure', 'measured', 'limit (same run)', 'ratio', 'target', 'result'];
  const body = rows.map((r) => [
    r.figure,
    r.value,
    r.limit,
    // Three decimals below 10, so that a ratio just under its target never prints as equal to it.
    r.ratio === undefined ? '–' : r.ratio < 10 ? r.ratio.toFixed(3) : r.ratio.toFixed(1),
    r.target,
    r.pass === undefined ? '–' : r.pass ? 'pass' : 'FAIL',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

export function writeResults(dir: string, content: unknown): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'latest.json');
  writeFileSync(file, `${JSON.stringify(content, null, 2)}\n`);
  return file;
}

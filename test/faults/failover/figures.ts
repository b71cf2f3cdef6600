import type { ClientFindings } from './verify.js';
import type { FailoverClient } from './ws-client.js';

interface LogLine {
  level?: number;
  msg?: string;
  err?: { message?: string; code?: string };
  error?: { message?: string; code?: string };
  [field: string]: unknown;
}

/** The service's warnings and errors, one line per message with its count and first occurrence (no stack, time or pid). */
export function notableLogLines(output: string): string {
  const byMessage = new Map<string, { n: number; line: string }>();
  for (const text of output.split('\n')) {
    let parsed: LogLine;
    try {
      parsed = JSON.parse(text) as LogLine;
    } catch {
      continue;
    }
    const { level = 0, msg = '', err, error, time: _t, pid: _p, hostname: _h, request_id: _r, ...rest } = parsed;
    if (level < 40) continue;
    const cause = err ?? error;
    const seen = byMessage.get(msg) ?? { n: 0, line: JSON.stringify({ level, msg, ...(cause ? { err: cause.message, code: cause.code } : {}), ...rest }).slice(0, 500) };
    seen.n++;
    byMessage.set(msg, seen);
  }
  return [...byMessage.values()].map(({ n, line }) => `  ${n} × ${line}`).join('\n') || '  (none)';
}

/** One line per WebSocket client: what it received, how its sockets ended, and what it lacked. */
export function clientFigures(clients: readonly FailoverClient[], findings: readonly ClientFindings[]): string {
  return findings
    .map((f, i) => {
      const c = clients[i]!;
      const closes = [...new Set(c.closes.map((x) => x.code))].join('/');
      const refusals = [...new Set(c.refusals.map((r) => `${r.status} ${r.code ?? ''}`.trim()))].join('/');
      return (
        `client ${i}: ${f.received} events (${f.unknown} of lost orders), ${c.resumes} resumes, ${c.reloads} reloads, closes [${closes}], ` +
        `refusals [${refusals}], missed ${f.missed.length}, duplicates ${f.duplicates}, out of order ${f.outOfOrder.length}`
      );
    })
    .join('\n  ');
}

/** One line of the service's JSON log. */
export interface LogEntry {
  readonly level: number;
  readonly msg: string;
  readonly episode?: string;
  readonly line: string;
}

const WARN = 40;

/** The service's output as log entries; lines that are not JSON are skipped. */
export function logEntries(output: string): LogEntry[] {
  return output.split('\n').flatMap((line) => {
    try {
      const entry = JSON.parse(line) as { level: number; msg: string; episode?: string };
      return typeof entry.level === 'number' ? [{ level: entry.level, msg: entry.msg, ...(entry.episode ? { episode: entry.episode } : {}), line }] : [];
    } catch {
      return [];
    }
  });
}

/** Lines at warn or above. */
export const warnings = (entries: LogEntry[]) => entries.filter((e) => e.level >= WARN);

/** Lines that opened an episode of `kind` (e.g. "database disk_full"). */
export const episodeLines = (entries: LogEntry[], kind: string) => entries.filter((e) => e.episode === kind && e.level >= WARN);

/** Lines that carry any of `secrets` (a name, an address, or its local part): personal data a log must not hold. */
export const linesWith = (output: string, secrets: string[]) => output.split('\n').filter((line) => secrets.some((s) => line.includes(s)));

/** `n× "msg"` per distinct message, for figures and failure messages. */
export function tally(entries: LogEntry[]): string {
  const byMessage = new Map<string, number>();
  for (const { msg } of entries) byMessage.set(msg, (byMessage.get(msg) ?? 0) + 1);
  return [...byMessage].map(([m, n]) => `${n}× "${m}"`).join(', ') || 'none';
}

import type { Logger } from '../../src/logger.js';

export interface LogLine {
  readonly level: 'info' | 'warn' | 'error';
  readonly obj: Record<string, unknown>;
  readonly msg: string;
}

/** A logger that keeps every line, so tests can check what an operator would read. */
export function recordingLogger(): Pick<Logger, 'info' | 'warn' | 'error'> & { lines: LogLine[]; withMessage(msg: string): LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (obj: object, msg: string) => void lines.push({ level, obj: obj as Record<string, unknown>, msg });
  return { lines, info: at('info'), warn: at('warn'), error: at('error'), withMessage: (msg) => lines.filter((line) => line.msg === msg) };
}

import type { BenchOptions } from './options.js';
import type { Row } from './report.js';

export interface BenchContext {
  readonly options: BenchOptions;
  /** Where server processes write CPU profiles, when profiling. */
  readonly profileDir: string | undefined;
}

/** What a section hands back: its rows, its raw figures, and anything that was not correct. */
export interface SectionResult {
  rows: Row[];
  details: Record<string, unknown>;
  problems: string[];
}

export function expect(problems: string[], ok: boolean, message: string): void {
  if (!ok) problems.push(message);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

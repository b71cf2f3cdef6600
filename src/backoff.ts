export interface BackoffOptions {
  /** The first delay after a success (or a reset). */
  readonly minMs: number;
  /** No delay is longer than this. */
  readonly maxMs: number;
}

/** Exponential back-off between attempts: `minMs`, then doubling per failed attempt up to `maxMs`, until reset. */
export class Backoff {
  private failed = 0;

  constructor(private readonly options: BackoffOptions) {}

  /** Attempts failed since the last reset. */
  get failures(): number {
    return this.failed;
  }

  /** Counts a failed attempt and returns how long to wait before the next. */
  next(): number {
    const { minMs, maxMs } = this.options;
    const delay = Math.min(maxMs, minMs * 2 ** Math.min(this.failed, 30));
    this.failed++;
    return delay;
  }

  /** An attempt succeeded: the next failure waits `minMs` again. */
  reset(): void {
    this.failed = 0;
  }
}

/** Somewhere in the upper half of `delay`, so that many instances do not retry in lockstep after an outage. */
export function jittered(delay: number, random: () => number = Math.random): number {
  return delay / 2 + (random() * delay) / 2;
}

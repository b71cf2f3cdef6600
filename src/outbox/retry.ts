import { Backoff } from '../backoff.js';
import type { Logger } from '../logger.js';
import { BrokerUnavailable, DatabaseFailure } from './failures.js';

export interface RetryMetrics {
  /** A pass failed and will be retried after a back-off. */
  failed(dependency: 'broker' | 'database'): void;
}

export interface RetryOptions {
  readonly logger: Pick<Logger, 'info' | 'warn'>;
  readonly metrics?: RetryMetrics;
  /** Longest wait between attempts; the first is 100 ms. */
  readonly maxBackoffMs: number;
}

/** What happens between the relay's failed passes: a back-off, and a line when trouble starts and when it ends. */
export interface Retry {
  /** A pass succeeded. */
  recovered(): void;
  /** A pass failed: waits out the back-off, which only retryNow() ends early (new events do not). */
  failed(error: unknown): Promise<void>;
  /** The broker came back, or the relay stops. */
  retryNow(): void;
}

export function createRetry(options: RetryOptions): Retry {
  const { logger, metrics } = options;
  const backoff = new Backoff({ minMs: 100, maxMs: options.maxBackoffMs });
  /** What is wrong right now, so each change is logged once rather than each attempt. */
  let trouble: string | undefined;
  let retryNow: (() => void) | undefined;

  function recovered(): void {
    backoff.reset();
    if (trouble === undefined) return;
    trouble = undefined;
    logger.info({}, 'outbox relay shipping again');
  }

  function delayAfter(error: unknown): number {
    const kind = error instanceof DatabaseFailure ? 'database' : 'broker';
    metrics?.failed(kind);
    if (trouble !== kind) {
      trouble = kind;
      // A blocked broker answers, but refuses publishes until its alarm clears.
      const blocked = error instanceof BrokerUnavailable && error.state === 'blocked';
      const what = blocked ? 'cannot publish: RabbitMQ blocks publishers (a memory or disk alarm)' : `cannot reach the ${kind}`;
      logger.warn({ err: error }, `outbox relay ${what}; events wait in the outbox and go out when it recovers`);
    }
    return backoff.next();
  }

  async function failed(error: unknown): Promise<void> {
    const delay = delayAfter(error);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        retryNow = undefined;
        resolve();
      }, delay);
      retryNow = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  return {
    recovered,
    failed,
    retryNow() {
      retryNow?.();
      retryNow = undefined;
    },
  };
}

import type { Database } from '../db/client.js';
import type { Broker } from '../messaging/broker.js';
import { claimBatch, markSent, releaseClaim } from './store.js';

export interface RelayLogger {
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export interface RelayOptions {
  db: Database;
  broker: Broker;
  logger: RelayLogger;
  /** Sweep for events written by other processes or left by a failed attempt. */
  sweepMs: number;
  batchSize?: number;
}

export interface OutboxRelay {
  /** Asks for a drain soon; calls made while one runs fold into one more pass. */
  wake(): void;
  /** Resolves once nothing is left to ship (for tests and shutdown). */
  drained(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Ships outbox events to the broker: claim a batch, publish with confirms, mark sent. A crash
 * between publish and mark re-sends the batch later, which the idempotent consumers absorb.
 */
export function startOutboxRelay({ db, broker, logger, sweepMs, batchSize = 500 }: RelayOptions): OutboxRelay {
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  let failures = 0;
  let retryTimer: NodeJS.Timeout | undefined;

  async function drain(): Promise<void> {
    // An order's later event is claimable only once its earlier one is sent, so loop until empty.
    while (!stopped) {
      const batch = await claimBatch(db, batchSize);
      if (batch.length === 0) return;
      const positions = batch.map((b) => b.position);
      try {
        await broker.publish(batch.map((b) => b.event));
      } catch (error) {
        await releaseClaim(db, positions).catch(() => undefined);
        throw error;
      }
      await markSent(db, positions);
    }
  }

  function wake(): void {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    again = false;
    running = drain()
      .then(() => {
        failures = 0;
      })
      .catch((error: unknown) => {
        failures++;
        const delay = Math.min(sweepMs, 50 * 2 ** Math.min(failures, 10));
        logger.warn({ err: error, retryInMs: delay }, 'outbox relay could not ship events; will retry');
        clearTimeout(retryTimer);
        retryTimer = setTimeout(wake, delay);
      })
      .finally(() => {
        running = undefined;
        if (again) wake();
      });
  }

  const sweep = setInterval(wake, sweepMs);
  sweep.unref();
  wake();

  return {
    wake,
    async drained() {
      while (running) await running;
    },
    async stop() {
      stopped = true;
      clearInterval(sweep);
      clearTimeout(retryTimer);
      while (running) await running;
    },
  };
}

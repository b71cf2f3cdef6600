import type { Database } from '../db/client.js';
import type { Logger } from '../logger.js';
import type { Broker } from '../messaging/broker.js';
import { ReadDemand } from './demand.js';
import { DatabaseFailure } from './failures.js';
import { createLeadership } from './leadership.js';
import { createRetry, type RetryMetrics } from './retry.js';
import { createShipping, type ShippingMetrics } from './shipping.js';
import { backlog, oldestUnsentAge } from './store.js';

export { WAKE_CHANNEL } from './leadership.js';

export interface RelayOptions {
  db: Database;
  broker: Broker;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** Sweep for events written by other processes, and try to take over from a relay that died. */
  sweepMs: number;
  batchSize?: number;
  /** Batches published and awaiting their confirms at once. */
  maxInFlight?: number;
  /** Longest wait between attempts while the broker or the database fails (default 5 s). */
  maxBackoffMs?: number;
  /** How long stop() waits for batches in flight to be confirmed; the rest go out again later (default 3 s). */
  stopGraceMs?: number;
  metrics?: RelayMetrics;
  /** Told when the database's checkpoint is behind one this relay saved: it lost committed writes (a failover). */
  onRewind?: () => void;
}

/** What the relay reports as it works, for the process's metrics. */
export interface RelayMetrics extends ShippingMetrics, RetryMetrics {}

export interface OutboxRelay {
  /** Events were written: ship them soon (or tell the active relay, in a process that is not it). */
  wake(): void;
  /** True while this process's relay is the one shipping the log. */
  isActive(): boolean;
  /** Events written and not yet shipped, read from the database: every process reports the same log. */
  backlog(): Promise<number>;
  /** Seconds since the first event after the checkpoint was written; 0 when nothing waits. */
  oldestUnsentAge(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Ships the outbox in log order from a checkpoint (shipping.ts). One relay is active per database, the one
 * holding a session advisory lock; the others stand by and take over within a sweep when its connection ends
 * (leadership.ts). A crash after a publish and before the checkpoint ships that batch again, which the
 * idempotent consumers absorb.
 */
export function startOutboxRelay(options: RelayOptions): OutboxRelay {
  const { db, broker, logger, sweepMs, metrics } = options;
  const stopGraceMs = options.stopGraceMs ?? 3000;
  const demand = new ReadDemand();
  let stopped = false;
  const stopping = () => stopped;

  const shipping = createShipping({
    broker,
    logger,
    batchSize: options.batchSize ?? 500,
    maxInFlight: options.maxInFlight ?? 4,
    metrics,
    onRewind: options.onRewind,
    demand,
    stopping,
  });
  const leadership = createLeadership({
    db,
    logger,
    onWake: wake,
    onTakeOver: shipping.takeOver,
    onDropped: () => (demand.wanted = true),
    stopping,
  });
  const retry = createRetry({ logger, metrics, maxBackoffMs: options.maxBackoffMs ?? 5000 });

  const interrupt = (): void => {
    demand.signal();
    retry.retryNow();
  };

  function wake(): void {
    if (stopped) return;
    if (leadership.leading() || db.kind === 'pglite') {
      demand.ask();
    } else {
      leadership.notifyLeader();
    }
  }

  broker.onStateChange((state) => {
    if (state === 'up') interrupt();
  });

  async function pass(): Promise<void> {
    // A standby asks whether the lead is free again at the next sweep (or wake, or the broker coming back),
    // not at once: cleared before asking, so that a sweep arriving meanwhile is not lost. An active relay's
    // drain reads at least once whatever it says, and clears it before each read.
    demand.wanted = false;
    const active = await leadership.lead();
    if (!active) return;
    try {
      await shipping.drain(active);
    } catch (error) {
      if (error instanceof DatabaseFailure) leadership.drop(active, error);
      throw error;
    }
  }

  async function run(): Promise<void> {
    while (!stopped) {
      if (!demand.wanted) await demand.idle();
      if (stopped) break;
      try {
        await pass();
        retry.recovered();
      } catch (error) {
        if (stopped) break;
        await retry.failed(error);
        demand.wanted = true;
      }
    }
  }

  // stop() clears it in the same synchronous step that sets stopped.
  const sweep = setInterval(() => demand.ask(), sweepMs);
  sweep.unref();
  const running = run();

  return {
    wake,
    isActive: () => leadership.leading(),
    backlog: () => backlog(db),
    oldestUnsentAge: () => oldestUnsentAge(db),
    async stop() {
      stopped = true;
      clearInterval(sweep);
      interrupt();
      let grace: NodeJS.Timeout | undefined;
      await Promise.race([running, new Promise((resolve) => (grace = setTimeout(resolve, stopGraceMs)))]);
      clearTimeout(grace);
      await leadership.close();
    },
  };
}

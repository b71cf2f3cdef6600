import type { Database } from '../db/client.js';
import type { Broker } from '../messaging/broker.js';
import { claimBatch, markSent, releaseClaim, type ClaimedEvent } from './store.js';

export interface RelayLogger {
  warn(obj: object, msg: string): void;
}

export interface RelayOptions {
  db: Database;
  broker: Broker;
  logger: RelayLogger;
  /** Sweep for events written by other processes or left by a failed attempt. */
  sweepMs: number;
  batchSize?: number;
  /** Batches published and awaiting their confirms at once. */
  maxInFlight?: number;
}

export interface OutboxRelay {
  /** Asks for a drain soon; calls made while one runs fold into one more pass. */
  wake(): void;
  stop(): Promise<void>;
}

/**
 * Ships outbox events to the broker: claim a batch, publish it, and once confirmed mark it sent.
 * Claims and publishes happen one batch at a time, in order; confirms overlap, so the broker's
 * confirm latency does not hold back the next batch. A crash between publish and mark re-sends
 * the batch later, which the idempotent consumers absorb.
 */
export function startOutboxRelay({ db, broker, logger, sweepMs, batchSize = 500, maxInFlight = 4 }: RelayOptions): OutboxRelay {
  const shipping = new Set<Promise<void>>();
  let claiming: Promise<void> | undefined;
  let wanted = false;
  let stopped = false;
  let failures = 0;
  let retryTimer: NodeJS.Timeout | undefined;

  function failed(error: unknown): void {
    failures++;
    const delay = Math.min(sweepMs, 50 * 2 ** Math.min(failures, 10));
    logger.warn({ err: error, retryInMs: delay }, 'outbox relay could not ship events; will retry');
    clearTimeout(retryTimer);
    retryTimer = setTimeout(wake, delay);
  }

  async function ship(batch: ClaimedEvent[]): Promise<void> {
    const positions = batch.map((b) => b.position);
    try {
      // Called synchronously from the claim loop, so batches reach the broker in claim order.
      await broker.publish(batch.map((b) => b.event));
    } catch (error) {
      await releaseClaim(db, positions).catch(() => undefined);
      throw error;
    }
    await markSent(db, positions);
    failures = 0;
  }

  async function claimLoop(): Promise<void> {
    while (!stopped && wanted && shipping.size < maxInFlight) {
      wanted = false;
      const batch = await claimBatch(db, batchSize);
      if (batch.length === 0) continue;
      // An order's later event becomes claimable once its earlier one is sent: look again then.
      const shipment = ship(batch)
        .catch(failed)
        .finally(() => {
          shipping.delete(shipment);
          wake();
        });
      shipping.add(shipment);
      wanted = true;
    }
  }

  function wake(): void {
    if (stopped) return;
    wanted = true;
    if (claiming) return;
    claiming = claimLoop()
      .catch(failed)
      .finally(() => {
        claiming = undefined;
        if (wanted && shipping.size < maxInFlight) wake();
      });
  }

  const sweep = setInterval(wake, sweepMs);
  sweep.unref();
  wake();

  async function settled(): Promise<void> {
    while (claiming || shipping.size > 0) await Promise.all([claiming, ...shipping]);
  }

  return {
    wake,
    async stop() {
      stopped = true;
      clearInterval(sweep);
      clearTimeout(retryTimer);
      await settled();
    },
  };
}

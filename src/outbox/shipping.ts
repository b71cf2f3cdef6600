import type { Session } from '../db/client.js';
import { comparePositions, formatPosition } from '../events/log-position.js';
import type { Logger } from '../logger.js';
import type { Broker } from '../messaging/broker.js';
import type { ReadDemand } from './demand.js';
import { BrokerUnavailable, onDatabase } from './failures.js';
import { readAfter, readCheckpoint, saveCheckpoint, type LogPosition } from './store.js';

export interface ShippingMetrics {
  /** The broker confirmed a batch of `events`, `seconds` after it was handed to it. */
  confirmed(events: number, seconds: number): void;
}

export interface ShippingOptions {
  readonly broker: Broker;
  readonly logger: Pick<Logger, 'error'>;
  readonly batchSize: number;
  /** Batches published and awaiting their confirms at once. */
  readonly maxInFlight: number;
  readonly metrics?: ShippingMetrics;
  /** Told when the database's checkpoint is behind one this relay saved: it lost committed writes (a failover). */
  readonly onRewind?: () => void;
  /** Each read takes the request for it. */
  readonly demand: ReadDemand;
  /** True once the relay is stopping: no batch is read again. */
  readonly stopping: () => boolean;
}

/** The relay's shipping, on whatever session leads: the leadership hands it each new one. */
export interface Shipping {
  /** On a session that just took the lead: reads the checkpoint shipping resumes from, and notices a rewind. */
  takeOver(session: Session): Promise<LogPosition>;
  /** Ships everything readable; returns when caught up. Throws on the first failure, with nothing lost. */
  drain(session: Session): Promise<void>;
}

interface InFlight {
  readonly at: LogPosition;
  readonly confirmed: Promise<void>;
  settled: boolean;
}

/**
 * Ships the outbox in log order from a checkpoint: read the next batch after it, publish, and once the broker
 * confirmed a prefix of batches, move the checkpoint past it (one write per batch, none per event).
 */
export function createShipping(options: ShippingOptions): Shipping {
  const { broker, logger, batchSize, maxInFlight, metrics, demand, stopping } = options;
  let checkpoint: LogPosition | undefined;
  /** The furthest checkpoint this process saw committed, and the highest order id it shipped: what a rewind would lose. */
  let committed: LogPosition | undefined;
  let highestOrderId = 0;
  /** After a rewind, the order id sequence must move past this before orders get ids the lost ones had. */
  let idsToSkip = 0;

  async function takeOver(candidate: Session): Promise<LogPosition> {
    checkpoint = await readCheckpoint(candidate);
    if (committed && comparePositions(checkpoint, committed) < 0) rewound(checkpoint, committed);
    // Retried at each take-over until it succeeds: a database just promoted may refuse it for a moment.
    if (idsToSkip > 0) {
      await candidate.query(
        `SELECT setval(seq, greatest($1::bigint, coalesce(pg_sequence_last_value(seq), 1)))
         FROM (SELECT pg_get_serial_sequence('orders', 'id')::regclass AS seq) s`,
        [idsToSkip],
      );
      idsToSkip = 0;
    }
    return checkpoint;
  }

  /**
   * The database lost transactions it had committed (an asynchronous standby promoted without them). Their order ids
   * would be handed out again; the sequence is moved past every id this relay shipped, so later orders get new ones.
   */
  function rewound(found: LogPosition, saved: LogPosition): void {
    logger.error(
      { checkpoint: formatPosition(found), committed_checkpoint: formatPosition(saved), highest_order_id_shipped: highestOrderId },
      'event log rewound: the database lost committed events this relay had shipped (a failover to a standby that lacked them)',
    );
    committed = found;
    idsToSkip = highestOrderId;
    options.onRewind?.();
  }

  async function drain(active: Session): Promise<void> {
    let cursor = checkpoint!;
    let more = true;
    const window: InFlight[] = [];
    try {
      for (;;) {
        while (!stopping() && window.length < maxInFlight && (more || demand.wanted)) {
          demand.wanted = false;
          const batch = await onDatabase(readAfter(active, cursor, batchSize));
          more = batch.length === batchSize;
          if (batch.length === 0) break;
          // Checked per batch: a broker that is away fails at once, nothing is read in vain.
          if (broker.state() !== 'up') throw new BrokerUnavailable(broker.state());
          cursor = batch.at(-1)!.at;
          for (const b of batch) highestOrderId = Math.max(highestOrderId, b.orderId);
          const started = performance.now();
          const confirmed = broker.publish(
            batch.map((b) => ({
              id: b.id,
              type: b.type,
              body: Buffer.from(b.json),
              logPosition: formatPosition(b.at),
              requestId: b.requestId,
            })),
          );
          const entry: InFlight = { at: cursor, confirmed, settled: false };
          entry.confirmed.then(
            () => {
              entry.settled = true;
              metrics?.confirmed(batch.length, (performance.now() - started) / 1000);
            },
            () => undefined,
          );
          window.push(entry);
        }
        let head = window.shift();
        if (!head) return;
        await head.confirmed;
        // Batches confirm in publish order on one channel; skip to the last one already confirmed.
        while (window[0]?.settled) head = window.shift()!;
        await onDatabase(saveCheckpoint(active, head.at));
        checkpoint = head.at;
        committed = head.at;
      }
    } finally /* Stryker disable next-line BlockStatement: every confirm has its rejection handler already (above) */ {
      // Whatever is still in flight is shipped again from the checkpoint next time.
      for (const entry of window) entry.confirmed.catch(() => undefined);
    }
  }

  return { takeOver, drain };
}

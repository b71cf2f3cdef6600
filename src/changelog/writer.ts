import { loggableError } from '../db/faults.js';
import { createEpisodes } from '../episodes.js';
import type { Logger } from '../logger.js';
import type { Broker, Delivery } from '../messaging/broker.js';
import type { ChangeLog } from './changelog.js';

export interface ChangeLogWriterStats {
  /** Deliveries taken from the queue, redeliveries included. */
  consumed: number;
  /** Events written for the first time, and redeliveries that found their event already logged. */
  written: number;
  duplicates: number;
  /** Batches whose write failed and whose events were handed back for redelivery. */
  failures: number;
}

export interface ChangeLogWriter {
  readonly stats: Readonly<ChangeLogWriterStats>;
}

const WRITE_FAILED = 'change log writes failing';

/**
 * Consumes the durable change-log queue and writes each event once in effect: deliveries that
 * arrive together are written in one batch and acknowledged only after the write.
 */
export async function startChangeLogWriter(options: {
  broker: Broker;
  changeLog: ChangeLog;
  logger: Pick<Logger, 'info' | 'warn'>;
  queue: string;
  prefetch?: number;
}): Promise<ChangeLogWriter> {
  const { changeLog, logger } = options;
  const stats: ChangeLogWriterStats = { consumed: 0, written: 0, duplicates: 0, failures: 0 };
  let pending: Delivery[] = [];
  let scheduled = false;
  // A change log away for a while fails every batch until it is back: one line for the outage, not one per batch.
  const episodes = createEpisodes(logger);

  async function flush(): Promise<void> {
    scheduled = false;
    const batch = pending;
    pending = [];
    try {
      const written = await changeLog.append(batch.map((d) => ({ event: d.event, body: d.body.toString() })));
      stats.written += written;
      stats.duplicates += batch.length - written;
      for (const d of batch) d.ack();
      episodes.recovered(WRITE_FAILED);
      // One line per event, with the request that wrote it: an order can be followed from its POST to here.
      for (const { event, requestId } of batch) {
        logger.info(
          { event_id: event.id, order_id: event.order_id, sequence: event.sequence, request_id: requestId },
          'order change logged',
        );
      }
    } catch (error) {
      stats.failures += 1;
      episodes.failed(
        WRITE_FAILED,
        { error: loggableError(error), events: batch.length },
        'change log write failed; events will be redelivered',
        'warn',
      );
      for (const d of batch) d.nack();
    }
  }

  await options.broker.consume({ durable: true, queue: options.queue, prefetch: options.prefetch ?? 256 }, (delivery) => {
    stats.consumed += 1;
    pending.push(delivery);
    // Stryker disable next-line ConditionalExpression: an extra flush finds an empty batch and does nothing
    if (!scheduled) {
      // Stryker disable next-line BooleanLiteral: an extra flush finds an empty batch and does nothing
      scheduled = true;
      setImmediate(() => void flush());
    }
  });
  return { stats };
}

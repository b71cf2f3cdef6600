import type { Broker, Delivery } from '../messaging/broker.js';
import type { ChangeLog } from './changelog.js';

export interface WriterLogger {
  warn(obj: object, msg: string): void;
}

export interface ChangeLogWriter {
  /** Events written for the first time, and redeliveries that found their event already logged. */
  readonly stats: { written: number; duplicates: number };
}

/**
 * Consumes the durable change-log queue and writes each event once in effect: deliveries that
 * arrive together are written in one batch and acknowledged only after the write.
 */
export async function startChangeLogWriter(options: {
  broker: Broker;
  changeLog: ChangeLog;
  logger: WriterLogger;
  queue: string;
  prefetch?: number;
}): Promise<ChangeLogWriter> {
  const { changeLog, logger } = options;
  const stats = { written: 0, duplicates: 0 };
  let pending: Delivery[] = [];
  let scheduled = false;

  async function flush(): Promise<void> {
    scheduled = false;
    const batch = pending;
    pending = [];
    try {
      const written = await changeLog.append(batch.map((d) => d.event));
      stats.written += written;
      stats.duplicates += batch.length - written;
      for (const d of batch) d.ack();
    } catch (error) {
      logger.warn({ err: error, events: batch.length }, 'change log write failed; events will be redelivered');
      for (const d of batch) d.nack();
    }
  }

  await options.broker.consume(
    { durable: true, queue: options.queue, prefetch: options.prefetch ?? 256 },
    (delivery) => {
      pending.push(delivery);
      if (!scheduled) {
        scheduled = true;
        setImmediate(() => void flush());
      }
    },
  );
  return { stats };
}

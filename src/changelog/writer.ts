import type { Broker, Delivery } from '../messaging/broker.js';
import type { ChangeLog } from './changelog.js';

export const CHANGE_LOG_QUEUE = 'orders.changelog';

export interface WriterLogger {
  warn(obj: object, msg: string): void;
}

/**
 * Consumes the durable change-log queue and writes each event once in effect: deliveries that
 * arrive together are written in one batch and acknowledged only after the write.
 */
export async function startChangeLogWriter(options: {
  broker: Broker;
  changeLog: ChangeLog;
  logger: WriterLogger;
  queue?: string;
  prefetch?: number;
}): Promise<void> {
  const { changeLog, logger } = options;
  let pending: Delivery[] = [];
  let scheduled = false;

  async function flush(): Promise<void> {
    scheduled = false;
    const batch = pending;
    pending = [];
    try {
      await changeLog.append(batch.map((d) => d.event));
      for (const d of batch) d.ack();
    } catch (error) {
      logger.warn({ err: error, events: batch.length }, 'change log write failed; events will be redelivered');
      for (const d of batch) d.nack();
    }
  }

  await options.broker.consume(
    { durable: true, queue: options.queue ?? CHANGE_LOG_QUEUE, prefetch: options.prefetch ?? 256 },
    (delivery) => {
      pending.push(delivery);
      if (!scheduled) {
        scheduled = true;
        setImmediate(() => void flush());
      }
    },
  );
}

import { Writable } from 'node:stream';
import { MongoNetworkError, type AnyBulkWriteOperation } from 'mongodb';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { changeLogOn, type ChangeCollection, type ChangeDocument } from '../../src/changelog/mongodb.js';
import { startChangeLogWriter } from '../../src/changelog/writer.js';
import type { Broker } from '../../src/messaging/broker.js';
import { createInProcessBroker } from '../../src/messaging/in-process.js';
import { makeEvent, publications } from '../helpers/events.js';
import { bulkWriteFailure, bulkWriteSuccess, updateReply } from './driver-errors.js';

/**
 * A collection that keeps upserted ids in memory and answers as the driver does, the first
 * `drops` writes failing as a connection dropped mid-write (MongoDB itself cannot run here).
 */
function collectionDropping(drops: number) {
  const stored = new Set<string>();
  let writes = 0;
  const collection: ChangeCollection = {
    async bulkWrite(operations: readonly AnyBulkWriteOperation<ChangeDocument>[]) {
      if (writes++ < drops) throw bulkWriteFailure(operations.length, { thrown: new MongoNetworkError('connection 7 to 127.0.0.1:27017 closed') });
      const upserted: number[] = [];
      operations.forEach((op, index) => {
        const id = 'updateOne' in op ? (op.updateOne.filter._id as string) : '';
        if (!stored.has(id)) upserted.push(index);
        stored.add(id);
      });
      return bulkWriteSuccess(operations.length, updateReply({ upserted, matched: operations.length - upserted.length }));
    },
    createIndex: async () => 'order_id_sequence',
    find: () => {
      throw new Error('not read here');
    },
  };
  return { collection, stored };
}

function recordingLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'warn' }, stream), lines };
}

let broker: Broker | undefined;
afterEach(() => broker?.close());

describe('change-log writer', () => {
  it('when the connection to MongoDB drops during a write, then the batch is nacked with a warning naming its size, and redelivery writes every event once', async () => {
    broker = createInProcessBroker({ redeliveryDelayMs: 20 });
    const { collection, stored } = collectionDropping(1);
    const { logger, lines } = recordingLogger();
    const changeLog = changeLogOn({ collection, connect: async () => undefined, ping: async () => undefined, close: async () => undefined });
    const writer = await startChangeLogWriter({ broker, changeLog, logger, queue: 'orders.changelog' });
    const events = Array.from({ length: 5 }, (_, i) => makeEvent({ orderId: 42, sequence: i + 1 }));

    // Resolves only once the durable consumer has acked every event.
    await broker.publish(publications(events));
    expect(lines).toEqual([expect.objectContaining({ level: 40, events: 5, msg: expect.stringMatching(/redelivered/) })]);
    expect(writer.stats).toEqual({ consumed: 10, written: 5, duplicates: 0, failures: 1 });
    expect([...stored].sort()).toEqual(events.map((e) => e.id).sort());

    await broker.publish(publications(events));
    expect(writer.stats).toEqual({ consumed: 15, written: 5, duplicates: 5, failures: 1 });
  });
});

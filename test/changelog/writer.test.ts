import { Writable } from 'node:stream';
import { MongoNetworkError, type AnyBulkWriteOperation } from 'mongodb';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { changeLogOn, type ChangeCollection, type ChangeDocument } from '../../src/changelog/mongodb.js';
import { startChangeLogWriter } from '../../src/changelog/writer.js';
import type { Broker } from '../../src/messaging/broker.js';
import { createInProcessBroker } from '../../src/messaging/in-process.js';
import { publicationOf } from '../../src/messaging/broker.js';
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

function recordingLogger(level = 'warn') {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level }, stream), lines };
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

  it('when events are written, then each gets one info line naming its event, order, sequence and the request that wrote it', async () => {
    broker = createInProcessBroker();
    const { collection } = collectionDropping(0);
    const { logger, lines } = recordingLogger('info');
    const changeLog = changeLogOn({ collection, connect: async () => undefined, ping: async () => undefined, close: async () => undefined });
    await startChangeLogWriter({ broker, changeLog, logger, queue: 'orders.changelog' });
    const events = [makeEvent({ orderId: 9, sequence: 1 }), makeEvent({ orderId: 9, sequence: 2 })];

    await broker.publish(events.map((event) => ({ ...publicationOf(event), requestId: 'req-42' })));
    expect(lines).toEqual(
      events.map((e) => expect.objectContaining({ level: 30, msg: 'order change logged', event_id: e.id, order_id: 9, sequence: e.sequence, request_id: 'req-42' })),
    );
  });

  it('when MongoDB is slow, then at most `prefetch` deliveries (256 unless told) wait unacknowledged in the writer', async () => {
    for (const prefetch of [undefined, 10]) {
      broker = createInProcessBroker({ confirmTimeoutMs: 60_000 });
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      const { collection } = collectionDropping(0);
      const inner = changeLogOn({ collection, connect: async () => undefined, ping: async () => undefined, close: async () => undefined });
      const changeLog = { ...inner, append: async (events: Parameters<typeof inner.append>[0]) => (await released, inner.append(events)) };
      const writer = await startChangeLogWriter({ broker, changeLog, logger: recordingLogger().logger, queue: 'orders.changelog', ...(prefetch ? { prefetch } : {}) });
      const events = Array.from({ length: 300 }, (_, i) => makeEvent({ orderId: 5, sequence: i + 1 }));

      const published = broker.publish(publications(events));
      await expect.poll(() => writer.stats.consumed).toBe(prefetch ?? 256);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(writer.stats.consumed).toBe(prefetch ?? 256);
      release();
      await published;
      expect(writer.stats).toMatchObject({ consumed: 300, written: 300, failures: 0 });
      await broker.close();
    }
  });

  it('when writes keep failing, then the outage is one warning, its end one line with how many failed, and a later outage warns again', async () => {
    broker = createInProcessBroker({ redeliveryDelayMs: 10 });
    const { collection } = collectionDropping(0);
    const inner = changeLogOn({ collection, connect: async () => undefined, ping: async () => undefined, close: async () => undefined });
    let failNext = 0;
    const changeLog = {
      ...inner,
      append: async (events: Parameters<typeof inner.append>[0]) => {
        if (failNext > 0) {
          failNext -= 1;
          throw new Error('MongoDB is away');
        }
        return inner.append(events);
      },
    };
    const { logger, lines } = recordingLogger('info');
    await startChangeLogWriter({ broker, changeLog, logger, queue: 'orders.changelog' });
    const outage = (failures: number) => [
      expect.objectContaining({
        level: 40,
        episode: 'change log writes failing',
        events: 1,
        error: expect.objectContaining({ type: 'Error', message: 'MongoDB is away' }),
        msg: 'change log write failed; events will be redelivered (further failures of this kind are counted, not logged, until it ends)',
      }),
      expect.objectContaining({ level: 30, episode: 'change log writes failing', failures, msg: 'change log writes failing: recovered' }),
    ];

    failNext = 3;
    await broker.publish(publications([makeEvent({ orderId: 3 })]));
    failNext = 1;
    await broker.publish(publications([makeEvent({ orderId: 4 })]));

    expect(lines.filter((line) => line.msg !== 'order change logged')).toEqual([...outage(3), ...outage(1)]);
  });
});

import { MongoNetworkError, MongoNetworkTimeoutError, MongoServerSelectionError, MongoTopologyClosedError, MongoWriteConcernError } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { changeLogOn, createMongoChangeLog, type ChangeCollection } from '../../src/changelog/mongodb.js';
import { DependencyUnavailableError } from '../../src/errors.js';
import { logged, makeEvent } from '../helpers/events.js';
import { bulkWriteFailure, updateReply } from './driver-errors.js';

const events = (n: number) => logged(Array.from({ length: n }, (_, i) => makeEvent({ orderId: 1, sequence: i + 1 })));

/** The change log over a collection whose bulk write and reads fail as the driver's do. */
function logFailingWith(failure: Error) {
  const collection: ChangeCollection = {
    bulkWrite: async () => {
      throw failure;
    },
    createIndex: async () => 'order_id_sequence',
    find: () => {
      throw failure;
    },
  };
  return changeLogOn({ collection, connect: async () => undefined, ping: async () => undefined, close: async () => undefined });
}

describe('MongoDB change log: a failed bulk write', () => {
  it.each([
    ['the connection drops mid-write', () => bulkWriteFailure(3, { thrown: new MongoNetworkError('connection 4 to 127.0.0.1:27017 closed') })],
    ['the socket times out mid-write', () => bulkWriteFailure(3, { thrown: new MongoNetworkTimeoutError('connection 4 to 127.0.0.1:27017 timed out') })],
    [
      'the write concern is not met',
      () =>
        bulkWriteFailure(3, {
          thrown: new MongoWriteConcernError({ ok: 1, n: 3, writeConcernError: { code: 64, errmsg: 'waiting for replication timed out' } }),
        }),
    ],
    [
      'duplicates come with a write-concern error',
      () => bulkWriteFailure(3, { reply: updateReply({ upserted: [0, 1], failed: [{ index: 2, code: 11000 }], writeConcernError: { code: 64, errmsg: 'timed out' } }) }),
    ],
    ['the result does not account for every event', () => bulkWriteFailure(3, { reply: updateReply({ upserted: [0], failed: [{ index: 1, code: 11000 }] }) })],
  ])('when %s, then append rejects with the driver error, so the writer nacks and nothing is counted', async (_case, failure) => {
    const error = failure();
    await expect(logFailingWith(error).append(events(3))).rejects.toBe(error);
  });

  it('when a batch fails only on duplicates and the result accounts for every event, then the new ones count as written; another failure beside them is thrown', async () => {
    const duplicates = bulkWriteFailure(3, { reply: updateReply({ upserted: [0], matched: 1, failed: [{ index: 2, code: 11000 }] }) });
    expect(await logFailingWith(duplicates).append(events(3))).toBe(1);
    const mixed = bulkWriteFailure(3, { reply: updateReply({ upserted: [0], failed: [{ index: 1, code: 11000 }, { index: 2, code: 121 }] }) });
    await expect(logFailingWith(mixed).append(events(3))).rejects.toBe(mixed);
    const incomplete = bulkWriteFailure(4, { reply: updateReply({ upserted: [0], matched: 1, failed: [{ index: 2, code: 11000 }] }) });
    await expect(logFailingWith(incomplete).append(events(4))).rejects.toBe(incomplete);
  });
});

describe('MongoDB change log: reads while MongoDB is away', () => {
  it('when a history read loses its connection or times out, then it fails as "change log unavailable" (503), not as a server error', async () => {
    for (const failure of [new MongoNetworkError('connection 2 closed'), new MongoNetworkTimeoutError('connection 2 timed out'), new MongoTopologyClosedError()]) {
      const error = await logFailingWith(failure).history(1).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DependencyUnavailableError);
      expect((error as Error).cause).toBe(failure);
    }
  });

  it('when MongoDB was unreachable at the first write, then later writes connect again instead of failing at once on a closed topology', async () => {
    const log = createMongoChangeLog({ url: 'mongodb://127.0.0.1:9/none', database: 'x', timeoutMs: 200 });
    try {
      for (let attempt = 0; attempt < 2; attempt++) {
        const started = Date.now();
        const error = await log.append(events(1)).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(MongoServerSelectionError);
        expect(Date.now() - started).toBeGreaterThanOrEqual(150);
        expect(Date.now() - started).toBeLessThan(1000);
      }
      expect(await log.state()).toMatch(/^down: /);
    } finally {
      await log.close();
    }
  });
});

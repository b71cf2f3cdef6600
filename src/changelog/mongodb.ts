import { MongoBulkWriteError, MongoClient, type AnyBulkWriteOperation } from 'mongodb';
import type { OrderEvent } from '../events/envelope.js';
import { CHANGE_LOG_COLLECTION, type ChangeLog } from './changelog.js';

type ChangeDocument = Omit<OrderEvent, 'id'> & { _id: string };

const DUPLICATE_KEY = 11000;

/**
 * The change log in MongoDB: one document per event, `_id` = event id, so a redelivery changes
 * nothing. It connects lazily, so a MongoDB that is down delays the log, not the service's start.
 */
export function createMongoChangeLog(options: { url: string; database: string; timeoutMs?: number }): ChangeLog {
  const client = new MongoClient(options.url, { serverSelectionTimeoutMS: options.timeoutMs ?? 10_000 });
  const collection = client.db(options.database).collection<ChangeDocument>(CHANGE_LOG_COLLECTION);
  let indexed: Promise<unknown> | undefined;
  const ensureIndex = () => {
    indexed ??= collection.createIndex({ order_id: 1, sequence: 1 }, { name: 'order_id_sequence' }).catch((error: unknown) => {
      indexed = undefined;
      throw error;
    });
    return indexed;
  };

  return {
    async append(events) {
      if (events.length === 0) return 0;
      await ensureIndex();
      const operations: AnyBulkWriteOperation<ChangeDocument>[] = events.map(({ id, ...rest }) => ({
        updateOne: { filter: { _id: id }, update: { $setOnInsert: rest }, upsert: true },
      }));
      try {
        return (await collection.bulkWrite(operations, { ordered: false })).upsertedCount;
      } catch (error) {
        // Two writers upserting one new id at once: one wins, the other's duplicate is the same event.
        const onlyDuplicates =
          error instanceof MongoBulkWriteError && [error.writeErrors].flat().every((e) => e.code === DUPLICATE_KEY);
        if (!onlyDuplicates) throw error;
        return error.result.upsertedCount;
      }
    },
    async history(orderId) {
      const documents = await collection.find({ order_id: orderId }).sort({ sequence: 1 }).toArray();
      return documents.map(({ _id, ...rest }) => ({ id: _id, ...rest }) as OrderEvent);
    },
    close: () => client.close(),
  };
}

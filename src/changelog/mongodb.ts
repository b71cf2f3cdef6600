import {
  MongoBulkWriteError,
  MongoClient,
  MongoClientClosedError,
  MongoNetworkError,
  MongoNotConnectedError,
  MongoOperationTimeoutError,
  MongoServerError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
  type AnyBulkWriteOperation,
  type Collection,
} from 'mongodb';
import { DependencyUnavailableError } from '../errors.js';
import { envelopeJson, type OrderEvent } from '../events/envelope.js';
import { CHANGE_LOG_COLLECTION, type ChangeLog } from './changelog.js';

export type ChangeDocument = Omit<OrderEvent, 'id'> & { _id: string };

/** What the change log uses of its collection; tests hand in one whose writes fail as the driver's do. */
export type ChangeCollection = Pick<Collection<ChangeDocument>, 'bulkWrite' | 'createIndex' | 'find'>;

export interface ChangeStore {
  readonly collection: ChangeCollection;
  /** Resolves once the client can run operations; may be called again after it failed. */
  connect(): Promise<unknown>;
  ping(): Promise<unknown>;
  close(): Promise<void>;
}

const DUPLICATE_KEY = 11000;
/** Long enough for a healthy server, short enough that a reader gets its 503 within about 2 s. */
const DEFAULT_TIMEOUT_MS = 1500;
/** A batch write may take longer than a read; past this the writer gives the batch back to be redelivered. */
const DEFAULT_WRITE_TIMEOUT_MS = 10_000;
// Server answers that mean "not now" rather than "never": the retryable-read codes of the driver specs.
const UNAVAILABLE_CODES = new Set([6, 7, 50, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436]);

/**
 * The change log in MongoDB: one document per event, `_id` = event id, so a redelivery changes
 * nothing. It connects lazily, so a MongoDB that is down delays the log, not the service's start.
 */
export function createMongoChangeLog(options: { url: string; database: string; timeoutMs?: number; writeTimeoutMs?: number }): ChangeLog {
  const timeoutMS = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const writeTimeoutMs = options.writeTimeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS;
  // The socket timeout closes a connection whose server stopped answering mid-operation, so it is not held for good.
  const client = new MongoClient(options.url, {
    serverSelectionTimeoutMS: timeoutMS,
    connectTimeoutMS: timeoutMS,
    socketTimeoutMS: writeTimeoutMs,
  });
  const db = client.db(options.database);
  let connecting: Promise<unknown> | undefined;
  const store: ChangeStore = {
    collection: db.collection<ChangeDocument>(CHANGE_LOG_COLLECTION),
    // After a failed first connect the driver keeps a closed topology and fails every later
    // operation at once; connecting again opens a new one.
    connect: () =>
      (connecting ??= client.connect().catch((error: unknown) => {
        connecting = undefined;
        throw error;
      })),
    ping: () => db.command({ ping: 1 }),
    close: () => client.close(),
  };
  return changeLogOn(store, timeoutMS, writeTimeoutMs);
}

/** The change log over a store; `readTimeoutMs` bounds a history read from start to answer, `writeTimeoutMs` an append. */
export function changeLogOn(store: ChangeStore, readTimeoutMs = DEFAULT_TIMEOUT_MS, writeTimeoutMs = DEFAULT_WRITE_TIMEOUT_MS): ChangeLog {
  const { collection } = store;
  let indexed: Promise<unknown> | undefined;
  const ensureIndex = () => {
    indexed ??= collection.createIndex({ order_id: 1, sequence: 1 }, { name: 'order_id_sequence' }).catch((error: unknown) => {
      indexed = undefined;
      throw error;
    });
    return indexed;
  };

  const write = async (events: Parameters<ChangeLog['append']>[0]) => {
    await store.connect();
    await ensureIndex();
    // Documents keep the envelope's fields, queryable; history writes their money with two decimals again.
    const operations: AnyBulkWriteOperation<ChangeDocument>[] = events.map(({ event: { id, ...rest } }) => ({
      updateOne: { filter: { _id: id }, update: { $setOnInsert: rest }, upsert: true },
    }));
    try {
      return (await collection.bulkWrite(operations, { ordered: false })).upsertedCount;
    } catch (error) {
      const written = writtenDespiteDuplicates(error, operations.length);
      if (written === undefined) throw error;
      return written;
    }
  };

  return {
    async append(events) {
      if (events.length === 0) return 0;
      // A write cut off by the deadline may still land: the redelivered batch then finds its ids and writes nothing twice.
      return withDeadline(write(events), writeTimeoutMs);
    },
    async history(orderId, createdAt) {
      try {
        // The driver takes a `timeoutMS` but does not enforce it: a server that stops answering after the
        // handshake would hold the read for good.
        const documents = await withDeadline(
          store.connect().then(() =>
            collection
              .find({ order_id: orderId, ...(createdAt === undefined ? {} : { 'order.created_at': createdAt }) })
              .sort({ sequence: 1 })
              .toArray(),
          ),
          readTimeoutMs,
        );
        return envelopeJson(documents.map(({ _id, ...rest }) => ({ id: _id, ...rest })));
      } catch (error) {
        throw isUnavailable(error) ? new DependencyUnavailableError('change log (MongoDB)', { cause: error }) : error;
      }
    },
    async state() {
      try {
        await withDeadline(
          store.connect().then(() => store.ping()),
          readTimeoutMs,
        );
        return 'up';
      } catch (error) {
        return `down: ${error instanceof Error ? error.message : String(error)}`;
      }
    },
    close: () => store.close(),
  };
}

/**
 * How many events a failed bulk write stored, when it failed only because two writers upserted
 * one new id at once (the loser's duplicate is the same event); undefined for any other failure.
 * A dropped connection is a MongoBulkWriteError too, with no write errors and a result that
 * accounts for nothing: it must not pass for "only duplicates" (an empty list passes `every`, and the
 * count refuses it).
 */
export function writtenDespiteDuplicates(error: unknown, batchSize: number): number | undefined {
  if (!(error instanceof MongoBulkWriteError)) return undefined;
  const failures = [error.writeErrors].flat();
  if (!failures.every((e) => e.code === DUPLICATE_KEY)) return undefined;
  if (error.result.getWriteConcernError()) return undefined;
  const { upsertedCount, matchedCount } = error.result;
  return upsertedCount + matchedCount + failures.length === batchSize ? upsertedCount : undefined;
}

/** Errors that mean MongoDB cannot answer now, as opposed to a request it refuses or a bug. */
export function isUnavailable(error: unknown): boolean {
  if (error instanceof DeadlineError) return true;
  if (error instanceof MongoNetworkError || error instanceof MongoServerSelectionError || error instanceof MongoOperationTimeoutError)
    return true;
  // The client closed under the request, at shutdown.
  if (error instanceof MongoTopologyClosedError || error instanceof MongoClientClosedError || error instanceof MongoNotConnectedError)
    return true;
  return error instanceof MongoServerError && typeof error.code === 'number' && UNAVAILABLE_CODES.has(error.code);
}

class DeadlineError extends Error {
  override name = 'DeadlineError';
}

/** Waits for `promise` at most `ms`; the connect attempt itself goes on for the next caller. */
function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`MongoDB did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

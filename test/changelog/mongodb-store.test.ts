import { createRequire } from 'node:module';
import {
  MongoClientClosedError,
  MongoNetworkError,
  MongoNotConnectedError,
  MongoOperationTimeoutError,
  MongoServerError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
  type AnyBulkWriteOperation,
  type BulkWriteOptions,
  type Document,
} from 'mongodb';
import { describe, expect, it, vi } from 'vitest';
import { changeLogOn, isUnavailable, type ChangeCollection, type ChangeDocument, type ChangeStore } from '../../src/changelog/mongodb.js';
import { DependencyUnavailableError } from '../../src/errors.js';
import { logged, makeEvent } from '../helpers/events.js';
import { bulkWriteFailure, bulkWriteSuccess, updateReply } from './driver-errors.js';

// The topology a failed server selection reports; the driver's index exports only its type.
const { TopologyDescription } = createRequire(import.meta.url)('mongodb/lib/sdam/topology_description.js') as {
  TopologyDescription: new (type: string) => ConstructorParameters<typeof MongoServerSelectionError>[1];
};

/** A filter's fields, dotted paths included ('order.created_at'), each equal to its value. */
const matches = (document: Document, filter: Document) =>
  Object.entries(filter).every(([key, value]) => key.split('.').reduce<unknown>((at, part) => (at as Document | undefined)?.[part], document) === value);

/**
 * A collection kept in memory that answers as the driver does (MongoDB itself cannot run here): upserts
 * by `_id`, unordered or ordered bulk writes, `find` with a filter and a sort, indexes by name. Ids in
 * `racing` are upserted by another writer at the same moment, so their upsert fails as a duplicate key.
 * A `find` or a bulk write under `stalled` never answers: the driver takes a `timeoutMS` but does not enforce it.
 */
function memoryCollection(options: { racing?: string[]; indexFailures?: Error[] } = {}) {
  const documents: ChangeDocument[] = [];
  const indexes: Document[] = [];
  const racing = new Set(options.racing);
  const indexFailures = [...(options.indexFailures ?? [])];
  const state = { stalled: false };
  const collection = {
    async bulkWrite(operations: readonly AnyBulkWriteOperation<ChangeDocument>[], writeOptions?: BulkWriteOptions) {
      if (state.stalled) return new Promise<never>(() => undefined);
      const upserted: number[] = [];
      const failed: { index: number; code: number }[] = [];
      let matched = 0;
      for (const [index, operation] of operations.entries()) {
        if (!('updateOne' in operation)) throw new Error('only updateOne is expected');
        const { filter, update, upsert } = operation.updateOne;
        const id = filter._id as string | undefined;
        if (id !== undefined && racing.delete(id)) {
          documents.push({ _id: id, ...(update as { $setOnInsert: Omit<ChangeDocument, '_id'> }).$setOnInsert });
          failed.push({ index, code: 11000 });
          if (writeOptions?.ordered !== false) break;
          continue;
        }
        if (documents.some((d) => matches(d, filter))) matched += 1;
        else if (upsert) {
          documents.push({ _id: id ?? `generated-${documents.length}`, ...(update as { $setOnInsert: Omit<ChangeDocument, '_id'> }).$setOnInsert });
          upserted.push(index);
        }
      }
      const reply = updateReply({ upserted, matched, failed });
      if (failed.length > 0) throw bulkWriteFailure(operations.length, { reply });
      return bulkWriteSuccess(operations.length, reply);
    },
    async createIndex(keys: Document, indexOptions?: { name?: string }) {
      const failure = indexFailures.shift();
      if (failure) throw failure;
      indexes.push({ keys, name: indexOptions?.name });
      return indexOptions?.name ?? 'index';
    },
    find(filter: Document) {
      return {
        sort: (spec: Record<string, 1 | -1>) => ({
          async toArray() {
            if (state.stalled) return new Promise<never>(() => undefined);
            const found = documents.filter((d) => matches(d, filter)).map((d) => structuredClone(d));
            for (const [key, direction] of Object.entries(spec).reverse()) {
              found.sort((a, b) => direction * ((a as Document)[key] - (b as Document)[key]));
            }
            return found;
          },
        }),
      };
    },
  };
  return { collection: collection as unknown as ChangeCollection, documents, indexes, state };
}

function storeOver(collection: ChangeCollection, overrides: Partial<ChangeStore> = {}): ChangeStore {
  return { collection, connect: async () => undefined, ping: async () => undefined, close: async () => undefined, ...overrides };
}

const never = () => new Promise<never>(() => undefined);

describe('MongoDB change log over its collection', () => {
  it('when events are appended, then each is upserted under its id with its fields, and history returns them oldest first as published', async () => {
    const { collection, documents } = memoryCollection();
    const log = changeLogOn(storeOver(collection));
    const events = [makeEvent({ orderId: 7, sequence: 1 }), makeEvent({ orderId: 7, sequence: 2 }), makeEvent({ orderId: 7, sequence: 3 })];
    const other = makeEvent({ orderId: 8, sequence: 1 });

    expect(await log.append(logged([events[2]!, other, events[0]!, events[1]!]))).toBe(4);
    expect(await log.append(logged([events[1]!]))).toBe(0);

    const { id, ...fields } = events[0]!;
    expect(documents).toContainEqual({ _id: id, ...fields });
    expect(await log.history(7)).toBe(`[${logged(events).map((e) => e.body).join(',')}]`);
    expect(await log.history(9)).toBe('[]');
  });

  it('when history names when the order was created, then only the events of the order created then are returned: a failover can hand an id out twice', async () => {
    const { collection } = memoryCollection();
    const log = changeLogOn(storeOver(collection));
    const createdAt = (event: ReturnType<typeof makeEvent>, at: string) => ({ ...event, order: { ...event.order, created_at: at } });
    const lost = [createdAt(makeEvent({ orderId: 7, sequence: 1 }), '2026-11-25T12:00:01.000Z'), createdAt(makeEvent({ orderId: 7, sequence: 2 }), '2026-11-25T12:00:01.000Z')];
    const reused = createdAt(makeEvent({ orderId: 7, sequence: 1 }), '2026-11-26T09:30:00.123Z');
    await log.append(logged([...lost, reused]));

    expect(JSON.parse(await log.history(7, reused.order.created_at))).toEqual([reused]);
    expect(JSON.parse(await log.history(7, lost[0]!.order.created_at))).toEqual(lost);
    expect(JSON.parse(await log.history(7))).toHaveLength(3);
  });

  it('when nothing is to be appended, then nothing is asked of MongoDB, not even a connection', async () => {
    const { collection } = memoryCollection();
    const log = changeLogOn(storeOver(collection, { connect: () => Promise.reject(new MongoNetworkError('connect ECONNREFUSED 127.0.0.1:27017')) }));
    expect(await log.append([])).toBe(0);
  });

  it('when a first append writes, then the (order_id, sequence) index that history reads by exists', async () => {
    const { collection, indexes } = memoryCollection();
    await changeLogOn(storeOver(collection)).append(logged([makeEvent()]));
    expect(indexes).toEqual([{ keys: { order_id: 1, sequence: 1 }, name: 'order_id_sequence' }]);
  });

  it('when creating the index fails, then the append is refused with that error and the next append creates it and writes', async () => {
    const failure = new MongoNetworkError('connection 3 to 127.0.0.1:27017 closed');
    const { collection, indexes, documents } = memoryCollection({ indexFailures: [failure] });
    const log = changeLogOn(storeOver(collection));
    const event = makeEvent();

    await expect(log.append(logged([event]))).rejects.toBe(failure);
    expect(documents).toEqual([]);
    expect(await log.append(logged([event]))).toBe(1);
    expect(indexes).toHaveLength(1);
  });

  it('when another writer stores one of the events at the same moment, then the rest of the batch is still written and counted', async () => {
    const events = [makeEvent({ sequence: 1 }), makeEvent({ sequence: 2 }), makeEvent({ sequence: 3 })];
    const { collection, documents } = memoryCollection({ racing: [events[0]!.id] });
    expect(await changeLogOn(storeOver(collection)).append(logged(events))).toBe(2);
    expect(documents.map((d) => d._id).sort()).toEqual(events.map((e) => e.id).sort());
  });
});

describe('MongoDB change log: bounded writes', () => {
  it('when a write never answers, then the append fails as unavailable after the write timeout, so the writer gives the batch back', async () => {
    const { collection, state } = memoryCollection();
    state.stalled = true;
    const started = Date.now();
    const error = await changeLogOn(storeOver(collection), 100, 300).append(logged([makeEvent()])).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'DeadlineError', message: 'MongoDB did not answer within 300 ms' });
    expect(isUnavailable(error)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('when no write timeout is given, then a stalled write is given up after 10 s', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { collection, state } = memoryCollection();
      state.stalled = true;
      let settled: unknown;
      changeLogOn(storeOver(collection)).append(logged([makeEvent()])).catch((e: unknown) => (settled = e));
      await vi.advanceTimersByTimeAsync(9_999);
      expect(settled).toBeUndefined();
      await vi.advanceTimersByTimeAsync(1);
      expect(settled).toMatchObject({ message: 'MongoDB did not answer within 10000 ms' });
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('MongoDB change log: bounded reads', () => {
  it('when a read, a write or a ping answers in time, then its deadline timer is cleared at once, not left to run out', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const log = changeLogOn(storeOver(memoryCollection().collection));
      expect(await log.state()).toBe('up');
      await log.append(logged([makeEvent()]));
      await log.history(1);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('when connecting does not finish, then a history read fails as "change log unavailable" after the read timeout', async () => {
    const log = changeLogOn(storeOver(memoryCollection().collection, { connect: never }), 200);
    const started = Date.now();
    const error = await log.history(1).catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(DependencyUnavailableError);
    expect(error).toMatchObject({ dependency: 'change log (MongoDB)', cause: { name: 'DeadlineError', message: 'MongoDB did not answer within 200 ms' } });
    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(elapsed).toBeLessThan(1000);
  });

  it('when the read itself never answers, then it is ended by the read timeout and fails as "change log unavailable"', async () => {
    const { collection, state } = memoryCollection();
    state.stalled = true;
    const started = Date.now();
    const error = await changeLogOn(storeOver(collection), 200)
      .history(1)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DependencyUnavailableError);
    expect(error).toMatchObject({ cause: { message: 'MongoDB did not answer within 200 ms' } });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('when no read timeout is given, then a read that cannot connect gives up after 1.5 s, in time for a 2 s answer', async () => {
    const log = changeLogOn(storeOver(memoryCollection().collection, { connect: never }));
    const started = Date.now();
    await expect(log.history(1)).rejects.toMatchObject({ cause: { message: 'MongoDB did not answer within 1500 ms' } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1450);
  });

  it.each([
    ['the connection is lost', () => new MongoNetworkError('connection 2 to 127.0.0.1:27017 closed')],
    ['no server can be selected', () => new MongoServerSelectionError('Server selection timed out after 1500 ms', new TopologyDescription('Unknown'))],
    ['the operation times out', () => new MongoOperationTimeoutError('Timed out during socket read')],
    ['the topology is closed', () => new MongoTopologyClosedError()],
    ['the client is closed', () => new MongoClientClosedError()],
    ['the client is not connected', () => new MongoNotConnectedError('Client must be connected before running operations')],
    ['the primary stepped down', () => new MongoServerError({ message: 'Primary stepped down while waiting for replication', code: 189 })],
    ['the server is shutting down', () => new MongoServerError({ message: 'interrupted at shutdown', code: 11600 })],
  ])('when a read fails because %s, then it fails as "change log unavailable" (503) with the driver error as its cause', async (_case, failure) => {
    const error = failure();
    const { collection } = memoryCollection();
    const log = changeLogOn(storeOver({ ...collection, find: () => { throw error; } } as ChangeCollection));
    await expect(log.history(1)).rejects.toSatisfy((e: unknown) => e instanceof DependencyUnavailableError && e.cause === error);
  });

  it.each([
    ['MongoDB refuses the request', () => new MongoServerError({ message: 'not authorized on orders to execute command', code: 13 })],
    ['the code has a bug', () => new TypeError('documents.map is not a function')],
  ])('when a read fails because %s, then the error is passed on as it is, not as "unavailable"', async (_case, failure) => {
    const error = failure();
    const { collection } = memoryCollection();
    const log = changeLogOn(storeOver({ ...collection, find: () => { throw error; } } as ChangeCollection));
    await expect(log.history(1)).rejects.toBe(error);
  });
});

describe('MongoDB change log: state for /readyz', () => {
  it('when MongoDB connects and answers a ping, then the state is up', async () => {
    expect(await changeLogOn(storeOver(memoryCollection().collection)).state()).toBe('up');
  });

  it('when a ping fails, then the state is "down" with the reason', async () => {
    const ping = () => Promise.reject(new MongoServerError({ message: 'node is recovering', code: 91 }));
    expect(await changeLogOn(storeOver(memoryCollection().collection, { ping })).state()).toBe('down: node is recovering');
    const odd = () => Promise.reject('socket hang up');
    expect(await changeLogOn(storeOver(memoryCollection().collection, { ping: odd })).state()).toBe('down: socket hang up');
  });

  it('when connecting does not finish, then the state is down within the read timeout', async () => {
    const started = Date.now();
    expect(await changeLogOn(storeOver(memoryCollection().collection, { connect: never }), 100).state()).toBe('down: MongoDB did not answer within 100 ms');
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('when the log is closed, then its store is closed', async () => {
    let closed = false;
    await changeLogOn(storeOver(memoryCollection().collection, { close: async () => void (closed = true) })).close();
    expect(closed).toBe(true);
  });
});

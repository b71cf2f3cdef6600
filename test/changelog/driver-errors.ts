import { createRequire } from 'node:module';
import { MongoBulkWriteError, MongoWriteConcernError, type BulkWriteResult, type Document } from 'mongodb';

// The driver's own result and error classes; its index exports only their types.
const bulk = createRequire(import.meta.url)('mongodb/lib/bulk/common.js') as {
  BulkWriteResult: new (bulkResult: Document, isOrdered: boolean) => BulkWriteResult;
  Batch: new (batchType: number, originalZeroIndex: number) => { operations: Document[]; originalIndexes: number[] };
  BatchType: { UPDATE: number };
  mergeBatchResults(batch: unknown, bulkResult: Document, err: unknown, result: Document | undefined): void;
};

/** One batch of `size` upserts as the driver's unordered bulk operation keeps it. */
function updateBatch(size: number) {
  const batch = new bulk.Batch(bulk.BatchType.UPDATE, 0);
  for (let i = 0; i < size; i++) {
    batch.operations.push({ q: { _id: `e${i}` }, u: { $setOnInsert: {} }, upsert: true });
    batch.originalIndexes.push(i);
  }
  return batch;
}

const emptyBulkResult = (): Document => ({
  ok: 1,
  writeErrors: [],
  writeConcernErrors: [],
  insertedIds: [],
  nInserted: 0,
  nUpserted: 0,
  nMatched: 0,
  nModified: 0,
  nRemoved: 0,
  upserted: [],
});

/**
 * The error `collection.bulkWrite` throws for a batch of `size` upserts, built the way
 * `executeCommands` in mongodb/lib/bulk/common.js builds it:
 * - `thrown`: the command itself failed (connection closed, timeout, server selection), so
 *   nothing is merged and the error is wrapped with an empty result;
 * - `reply`: the server answered; its counts and write errors are merged, then the first write
 *   error (or else the write-concern error) is thrown with the merged result.
 */
export function bulkWriteFailure(size: number, outcome: { thrown: Error } | { reply: Document }): MongoBulkWriteError {
  const bulkResult = emptyBulkResult();
  if ('thrown' in outcome) {
    if (outcome.thrown instanceof MongoWriteConcernError) {
      bulk.mergeBatchResults(updateBatch(size), bulkResult, outcome.thrown, undefined);
      const { errmsg, code } = outcome.thrown.result.writeConcernError as { errmsg: string; code: number };
      return new MongoBulkWriteError({ message: errmsg, code }, new bulk.BulkWriteResult(bulkResult, false));
    }
    return new MongoBulkWriteError(outcome.thrown, new bulk.BulkWriteResult(bulkResult, false));
  }
  bulk.mergeBatchResults(updateBatch(size), bulkResult, undefined, outcome.reply);
  const result = new bulk.BulkWriteResult(bulkResult, false);
  const writeErrors = result.getWriteErrors();
  if (writeErrors.length > 0) {
    return new MongoBulkWriteError({ message: writeErrors[0]!.errmsg ?? 'write operation failed', code: writeErrors[0]!.code, writeErrors }, result);
  }
  const concern = result.getWriteConcernError();
  if (!concern) throw new Error('this reply is a success: bulkWrite would not throw');
  return new MongoBulkWriteError(concern, result);
}

/** What `collection.bulkWrite` resolves with when the server's reply has no errors. */
export function bulkWriteSuccess(size: number, reply: Document): BulkWriteResult {
  const bulkResult = emptyBulkResult();
  bulk.mergeBatchResults(updateBatch(size), bulkResult, undefined, reply);
  return new bulk.BulkWriteResult(bulkResult, false);
}

/** A server reply to an `update` command of upserts: which indexes were inserted, matched, or failed with `code`. */
export function updateReply(spec: { upserted?: number[]; matched?: number; failed?: { index: number; code: number }[]; writeConcernError?: Document }): Document {
  const upserted = (spec.upserted ?? []).map((index) => ({ index, _id: `e${index}` }));
  return {
    n: upserted.length + (spec.matched ?? 0),
    nModified: 0,
    ...(upserted.length ? { upserted } : {}),
    ...(spec.failed?.length ? { writeErrors: spec.failed.map((f) => ({ ...f, errmsg: f.code === 11000 ? 'E11000 duplicate key error collection: order_changes index: _id_' : `error ${f.code}` })) } : {}),
    ...(spec.writeConcernError ? { writeConcernError: spec.writeConcernError } : {}),
    ok: 1,
  };
}

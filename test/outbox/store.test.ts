import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type Database, type Queryable } from '../../src/db/client.js';
import { migrate } from '../../src/db/migrate.js';
import { backlog, deleteShippedBefore, eventsAfter, holdsEvent, LOG_START, logHead, oldestUnsentAge, readAfter, readCheckpoint, saveCheckpoint, type LogPosition } from '../../src/outbox/store.js';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../helpers/databases.js';

for (const { kind, skip } of databaseKinds()) {
  describe.skipIf(skip)(`the outbox log on ${kind}`, () => {
    let database: TestDatabase;
    let db: Database;
    beforeAll(async () => {
      database = await createTestDatabase(kind);
      db = await openDatabase({ url: database.url });
      await migrate(db);
    });
    afterAll(async () => {
      await db?.close();
      await database?.drop();
    });
    beforeEach(async () => {
      await db.query('DELETE FROM outbox');
      await db.query(`UPDATE outbox_checkpoint SET xid = '0', position = 0`);
    });

    /** Writes an event row as the order statements do, returning its id. */
    const write = async (orderId: number, sequence: number, on: Queryable = db) => {
      const id = randomUUID();
      const payload = JSON.stringify({ id, type: 'order.created', schema_version: 1, order_id: orderId, sequence });
      await on.query('INSERT INTO outbox (event_id, order_id, sequence, type, payload) VALUES ($1, $2, $3, $4, $5)', [id, orderId, sequence, 'order.created', payload]);
      return id;
    };
    const ids = (batch: { id: string }[]) => batch.map((b) => b.id);
    /**
     * Waits until the log reads `count` events after `after`. A write transaction open anywhere on the
     * server (another test's CREATE DATABASE, say) holds readability back for its duration: by design.
     */
    const readableAfter = async (after: LogPosition, count: number) => {
      await expect.poll(async () => (await readAfter(db, after, count + 1)).length, { timeout: 10_000, interval: 20 }).toBe(count);
      return readAfter(db, after, count);
    };

    it('when a fresh database is migrated, then the checkpoint is at the start of the log and nothing is pending', async () => {
      expect(await readCheckpoint(db)).toEqual(LOG_START);
      expect(await backlog(db)).toBe(0);
    });

    it('when events are written, then they are read in commit order, a batch at a time, from any place', async () => {
      const written = [await write(1, 1), await write(2, 1), await write(1, 2), await write(3, 1)];
      await readableAfter(LOG_START, 4);
      const first = await readAfter(db, LOG_START, 3);
      expect(ids(first)).toEqual(written.slice(0, 3));
      const rest = await readAfter(db, first.at(-1)!.at, 3);
      expect(ids(rest)).toEqual(written.slice(3));
      expect(await readAfter(db, rest.at(-1)!.at, 3)).toEqual([]);
    });

    it('when one transaction writes several events, then they keep their order within it', async () => {
      const inOne = await db.transaction(async (tx) => [await write(5, 1, tx), await write(5, 2, tx), await write(6, 1, tx)]);
      const after = await write(5, 3);
      expect(ids(await readableAfter(LOG_START, 4))).toEqual([...inOne, after]);
    });

    it('when the checkpoint moves, then the backlog counts only what is after it, and it never moves back', async () => {
      await write(1, 1);
      await write(2, 1);
      await write(3, 1);
      await readableAfter(LOG_START, 3);
      const [a, b] = await readAfter(db, LOG_START, 2);
      expect(await backlog(db)).toBe(3);
      await saveCheckpoint(db, b!.at);
      expect(await backlog(db)).toBe(1);
      await saveCheckpoint(db, a!.at);
      expect(await readCheckpoint(db)).toEqual(b!.at);
      expect(await backlog(db)).toBe(1);
    });

    it('when a client resumes after an event, then it gets every later event, shipped or not, in order', async () => {
      const before = await write(1, 1);
      const anchor = await write(2, 1);
      const later = [await write(1, 2), await write(3, 1)];
      await readableAfter(LOG_START, 4);
      const [, anchorRow] = await readAfter(db, LOG_START, 2);
      await saveCheckpoint(db, anchorRow!.at);
      expect((await eventsAfter(db, anchor, 100))!.events.map((e) => e.id)).toEqual(later);
      expect((await eventsAfter(db, before, 100))!.events.map((e) => e.id)).toEqual([anchor, ...later]);
      expect((await eventsAfter(db, later[1]!, 100))!.events).toEqual([]);
      expect((await eventsAfter(db, anchor, 100))!.from).toEqual(anchorRow!.at);
    });

    it('when the resume id is unknown, or more events were missed than the limit, then there is no replay', async () => {
      const first = await write(1, 1);
      for (let s = 2; s <= 5; s++) await write(1, s);
      await readableAfter(LOG_START, 5);
      expect(await eventsAfter(db, randomUUID(), 100)).toBeUndefined();
      expect(await eventsAfter(db, first, 3)).toBeUndefined();
      expect((await eventsAfter(db, first, 4))!.events).toHaveLength(4);
    });

    it('when retention runs, then only shipped events older than it are removed', async () => {
      await write(1, 1);
      await write(2, 1);
      await write(3, 1);
      await readableAfter(LOG_START, 3);
      const [, second] = await readAfter(db, LOG_START, 2);
      await saveCheckpoint(db, second!.at);
      await db.query("UPDATE outbox SET created_at = now() - interval '100 hours'");
      // A batch of one per statement still removes them all.
      expect(await deleteShippedBefore(db, 72, 1)).toBe(2);
      expect(await backlog(db)).toBe(1);
      expect(await deleteShippedBefore(db, 72)).toBe(0);
      const [left] = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox');
      expect(left!.n).toBe(1);
    });

    it('when an event is read, then it comes with its id, type, order, JSON as stored and the request that wrote it, if any', async () => {
      const id = randomUUID();
      const payload = JSON.stringify({ id, type: 'order.status_changed', schema_version: 1, order_id: 42, sequence: 2 });
      await db.query('INSERT INTO outbox (event_id, order_id, sequence, type, payload, request_id) VALUES ($1, $2, $3, $4, $5, $6)', [
        id, 42, 2, 'order.status_changed', payload, 'req-7',
      ]);
      const without = await write(43, 1);
      const [event, other] = await readableAfter(LOG_START, 2);
      expect(event).toStrictEqual({ at: event!.at, id, type: 'order.status_changed', orderId: 42, json: JSON.stringify(JSON.parse(payload)), requestId: 'req-7' });
      expect(typeof event!.at.xid).toBe('string');
      expect(event!.at.position).toBeGreaterThan(0);
      expect(other!.id).toBe(without);
      expect(other!.requestId).toBeUndefined();
      expect(other!.orderId).toBe(43);
    });

    it('when a batch is read, then it holds at most the limit, the first ones in log order, and the next batch starts right after it', async () => {
      const written: string[] = [];
      for (let order = 1; order <= 5; order++) written.push(await write(order, 1));
      await readableAfter(LOG_START, 5);
      const batches: string[][] = [];
      let at = LOG_START;
      for (;;) {
        const batch = await readAfter(db, at, 2);
        if (batch.length === 0) break;
        expect(batch.length).toBeLessThanOrEqual(2);
        batches.push(ids(batch));
        at = batch.at(-1)!.at;
      }
      expect(batches).toEqual([written.slice(0, 2), written.slice(2, 4), written.slice(4)]);
    });

    it('when events wait after the checkpoint, then the oldest unsent age is that of the first of them; 0 when none waits', async () => {
      expect(await oldestUnsentAge(db)).toBe(0);
      await write(1, 1);
      await write(2, 1);
      await readableAfter(LOG_START, 2);
      await db.query("UPDATE outbox SET created_at = now() - interval '30 seconds' WHERE order_id = 1");
      await db.query("UPDATE outbox SET created_at = now() - interval '10 seconds' WHERE order_id = 2");
      expect(await oldestUnsentAge(db)).toBeCloseTo(30, 0);
      const [first] = await readAfter(db, LOG_START, 1);
      await saveCheckpoint(db, first!.at);
      expect(await oldestUnsentAge(db)).toBeCloseTo(10, 0);
      // A clock that stepped back makes no negative age.
      await db.query("UPDATE outbox SET created_at = now() + interval '1 hour'");
      expect(await oldestUnsentAge(db)).toBe(0);
    });

    it('when the log is read for its head, then it is the last readable event with its place; none while the log is empty', async () => {
      expect(await logHead(db)).toBeUndefined();
      await write(1, 1);
      await db.transaction(async (tx) => [await write(2, 1, tx), await write(2, 2, tx)]);
      const last = await write(3, 1);
      const all = await readableAfter(LOG_START, 4);

      expect(await logHead(db)).toStrictEqual({ at: all.at(-1)!.at, id: last });
      // Within one transaction too, the last written is the head.
      expect(all[2]!.at.xid).toBe(all[1]!.at.xid);
      await db.query('DELETE FROM outbox WHERE event_id = $1', [last]);
      expect(await logHead(db)).toStrictEqual({ at: all[2]!.at, id: all[2]!.id });
    });

    it('when asked whether the log holds an event, then it is true while its row is kept, shipped or not, and false once removed or never written', async () => {
      const kept = await write(1, 1);
      const removed = await write(2, 1);
      await readableAfter(LOG_START, 2);
      const [first] = await readAfter(db, LOG_START, 1);
      await saveCheckpoint(db, first!.at);
      await db.query('DELETE FROM outbox WHERE event_id = $1', [removed]);

      expect(await holdsEvent(db, kept)).toBe(true);
      expect(await holdsEvent(db, removed)).toBe(false);
      expect(await holdsEvent(db, randomUUID())).toBe(false);
    });

    // Two transactions at once need two connections: PGlite runs one at a time, so this is PostgreSQL's.
    it.skipIf(kind === 'pglite')(
      'when a transaction that began first commits last, then nothing after it is readable until it commits, and then it comes first',
      async () => {
        const early = new pg.Client({ connectionString: database.url });
        await early.connect();
        try {
          await early.query('BEGIN');
          const slow = await write(10, 1, { query: async (text, params) => (await early.query(text, params as unknown[])).rows });
          const quick = await write(11, 1);
          // The quick one committed, but a transaction older than it is still open: neither is readable.
          expect(await readAfter(db, LOG_START, 10)).toEqual([]);
          const resumedEarly = await write(12, 1);
          expect(await readAfter(db, LOG_START, 10)).toEqual([]);
          await early.query('COMMIT');
          expect(ids(await readableAfter(LOG_START, 3))).toEqual([slow, quick, resumedEarly]);
          // A client that saw `slow` lacks exactly the two that follow it, though they committed before it.
          expect((await eventsAfter(db, slow, 10))!.events.map((e) => e.id)).toEqual([quick, resumedEarly]);
        } finally {
          await early.query('ROLLBACK').catch(() => undefined);
          await early.end();
        }
      },
    );
  });
}

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/client.js';
import { migrate } from '../../src/db/migrate.js';
import { claimBatch, deleteShippedBefore, eventsAfter, markSent, releaseClaim } from '../../src/outbox/store.js';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../helpers/databases.js';

for (const { kind, skip } of databaseKinds()) {
  describe.skipIf(skip)(`the outbox on ${kind}`, () => {
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
    beforeEach(() => db.query('DELETE FROM outbox'));

    /** Writes an event row as the order statements do, returning its id. */
    const write = async (orderId: number, sequence: number) => {
      const id = randomUUID();
      const payload = JSON.stringify({ id, type: 'order.created', schema_version: 1, order_id: orderId, sequence });
      await db.query('INSERT INTO outbox (event_id, order_id, sequence, type, payload) VALUES ($1, $2, $3, $4, $5)', [id, orderId, sequence, 'order.created', payload]);
      return id;
    };
    const ids = (batch: { event: { id: string } }[]) => batch.map((b) => b.event.id);

    it("when an order has several unsent events, then only its earliest is claimable until that one is sent", async () => {
      const a1 = await write(1, 1);
      const a2 = await write(1, 2);
      const b1 = await write(2, 1);
      const first = await claimBatch(db, 100);
      expect(ids(first)).toEqual([a1, b1]);
      expect(await claimBatch(db, 100)).toEqual([]);
      await markSent(db, first.map((b) => b.position));
      expect(ids(await claimBatch(db, 100))).toEqual([a2]);
    });

    it('when two relays claim at once, then no event is claimed twice', async () => {
      for (let order = 1; order <= 60; order++) await write(order, 1);
      const [x, y, z] = await Promise.all([claimBatch(db, 25), claimBatch(db, 25), claimBatch(db, 25)]);
      const all = [...ids(x!), ...ids(y!), ...ids(z!)];
      expect(new Set(all).size).toBe(all.length);
      expect(all.length).toBe(60);
    });

    it('when a claim is released after a failed publish, then the events are claimable again', async () => {
      const a = await write(1, 1);
      const claimed = await claimBatch(db, 10);
      await releaseClaim(db, claimed.map((c) => c.position));
      expect(ids(await claimBatch(db, 10))).toEqual([a]);
    });

    it('when a relay died holding a claim, then another takes the events over once the lease expires', async () => {
      const a = await write(1, 1);
      await claimBatch(db, 10);
      await db.query("UPDATE outbox SET claimed_at = now() - interval '16 seconds'");
      expect(ids(await claimBatch(db, 10))).toEqual([a]);
    });

    it('when an earlier-written event went out after the one a client last saw, then resuming includes it', async () => {
      const before = await write(1, 1);
      const early = await write(2, 1);
      const anchor = await write(3, 1);
      const pending = await write(4, 1);
      const at = (id: string, claimed: string | null, sent: string | null) =>
        db.query(`UPDATE outbox SET claimed_at = $2::timestamptz, sent_at = $3::timestamptz WHERE event_id = $1`, [id, claimed, sent]);
      await at(before, '2026-01-01T00:00:00Z', '2026-01-01T00:00:01Z');
      await at(anchor, '2026-01-01T00:00:05Z', '2026-01-01T00:00:06Z');
      // Written before the anchor but committed late, so it was published after the anchor.
      await at(early, '2026-01-01T00:00:06Z', '2026-01-01T00:00:07Z');
      expect((await eventsAfter(db, anchor, 100))!.map((x) => x.id)).toEqual([early, pending]);
      expect((await eventsAfter(db, before, 100))!.map((x) => x.id)).toEqual([early, anchor, pending]);
    });

    it('when the last seen event is still being confirmed, then everything not yet confirmed is replayed', async () => {
      const anchor = await write(1, 1);
      const next = await write(2, 1);
      await claimBatch(db, 10);
      expect((await eventsAfter(db, anchor, 100))!.map((x) => x.id)).toEqual([next]);
    });

    it('when the resume point is unknown or too far behind, then there is no partial replay', async () => {
      expect(await eventsAfter(db, randomUUID(), 100)).toBeUndefined();
      const first = await write(1, 1);
      for (let order = 2; order <= 5; order++) await write(order, 1);
      expect(await eventsAfter(db, first, 3)).toBeUndefined();
      expect(await eventsAfter(db, first, 4)).toHaveLength(4);
    });

    it('when shipped events pass the retention, then they are removed and unsent ones stay', async () => {
      await write(1, 1);
      await write(2, 1);
      const [old] = await claimBatch(db, 1);
      await markSent(db, [old!.position]);
      await db.query("UPDATE outbox SET sent_at = now() - interval '100 hours' WHERE position = $1", [old!.position]);
      expect(await deleteShippedBefore(db, 72)).toBe(1);
      const [left] = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox');
      expect(left!.n).toBe(1);
    });
  });
}

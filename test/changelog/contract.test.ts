import { randomUUID } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ChangeLog } from '../../src/changelog/changelog.js';
import type { OrderEvent } from '../../src/events/envelope.js';
import { createEmbeddedChangeLog } from '../../src/changelog/embedded.js';
import { createMongoChangeLog } from '../../src/changelog/mongodb.js';
import { openDatabase } from '../../src/db/client.js';
import { migrate } from '../../src/db/migrate.js';
import { createTestDatabase } from '../helpers/databases.js';
import { logged, makeEvent } from '../helpers/events.js';

let nextOrder = Math.floor(Math.random() * 1e9);

const event = (orderId: number, sequence: number) => makeEvent({ orderId, sequence });
const history = async (log: ChangeLog, orderId: number, createdAt?: string) => JSON.parse(await log.history(orderId, createdAt)) as OrderEvent[];

/** What every change log promises, whichever store is behind it. */
function changeLogContract(name: string, open: () => Promise<{ log: ChangeLog; cleanup: () => Promise<void> }>, skip = false) {
  describe.skipIf(skip)(`change log: ${name}`, () => {
    let log: ChangeLog;
    let cleanup: () => Promise<void>;
    beforeAll(async () => {
      ({ log, cleanup } = await open());
    });
    afterAll(async () => {
      await log?.close();
      await cleanup?.();
    });

    it('when events are appended, then history returns them oldest first, exactly as given', async () => {
      const orderId = ++nextOrder;
      const events = [event(orderId, 1), event(orderId, 2)];
      expect(await log.append(logged([events[1]!, events[0]!]))).toBe(2);
      expect(await history(log, orderId)).toEqual(events);
    });

    it('when events are appended, then history writes them as received, money with two decimals (200.00, not 200)', async () => {
      const orderId = ++nextOrder;
      const created = event(orderId, 1);
      const events = [{ ...created, order: { ...created.order, quantity: 3, unit_price: 164017.89, total_price: 492053.67 } }, event(orderId, 2)];
      const received = logged(events);
      expect(received[0]!.body).toContain('"total_price":492053.67,"unit_price":164017.89');
      expect(received[1]!.body).toContain('"total_price":200.00,"unit_price":100.00');
      await log.append(received);
      expect(await log.history(orderId)).toBe(`[${received.map((e) => e.body).join(',')}]`);
    });

    it('when an event is delivered again, then nothing changes and it is counted as not new', async () => {
      const orderId = ++nextOrder;
      const first = event(orderId, 1);
      await log.append(logged([first]));
      expect(await log.append(logged([first, first]))).toBe(0);
      expect(await log.append(logged([{ ...first, order: { ...first.order, client_name: 'Changed' } }]))).toBe(0);
      expect(await history(log, orderId)).toEqual([first]);
    });

    it('when an order has no events, then history is empty; other orders are not mixed in', async () => {
      const a = ++nextOrder;
      const b = ++nextOrder;
      await log.append(logged([event(a, 1)]));
      expect(await log.history(b)).toBe('[]');
      expect((await history(log, a)).map((e) => e.order_id)).toEqual([a]);
    });

    it('when a failover handed an order id out twice, then history with the order\'s created_at returns only that order\'s events', async () => {
      const orderId = ++nextOrder;
      // The lost order: created, then confirmed; the new one reuses the id, created a day later.
      const lost = [event(orderId, 1), event(orderId, 2)].map((e) => ({ ...e, order: { ...e.order, created_at: '2026-11-25T12:00:01.000Z' } }));
      const created = event(orderId, 1);
      const reused = { ...created, order: { ...created.order, created_at: '2026-11-26T09:30:00.123Z' } };
      await log.append(logged([...lost, reused]));

      expect(await history(log, orderId, reused.order.created_at)).toEqual([reused]);
      expect(await history(log, orderId, lost[0]!.order.created_at)).toEqual(lost);
      expect(await history(log, orderId, '2026-11-27T00:00:00.000Z')).toEqual([]);
      // Without it, every event filed under the id, as before.
      expect((await history(log, orderId)).map((e) => e.id).sort()).toEqual([...lost, reused].map((e) => e.id).sort());
    });

    it('when many writers append overlapping batches at once, then each event is stored once', async () => {
      const orderId = ++nextOrder;
      const events = Array.from({ length: 50 }, (_, i) => event(orderId, i + 1));
      const counts = await Promise.all(Array.from({ length: 5 }, () => log.append(logged(events))));
      expect(counts.reduce((a, b) => a + b, 0)).toBe(50);
      expect((await history(log, orderId)).map((e) => e.sequence)).toEqual(events.map((e) => e.sequence));
    });
  });
}

for (const kind of ['pglite', 'postgres'] as const) {
  changeLogContract(
    `embedded on ${kind}`,
    async () => {
      const database = await createTestDatabase(kind);
      const db = await openDatabase({ url: database.url });
      await migrate(db);
      return { log: createEmbeddedChangeLog(db), cleanup: async () => (await db.close(), await database.drop()) };
    },
    kind === 'postgres' && !inject('postgresUrl'),
  );
}

const mongodbUrl = inject('mongodbUrl');
changeLogContract(
  'MongoDB (runs when MONGODB_URL is set)',
  async () => {
    const database = `order_service_test_${randomUUID().slice(0, 8)}`;
    const log = createMongoChangeLog({ url: mongodbUrl, database });
    return {
      log,
      cleanup: async () => {
        const client = await new MongoClient(mongodbUrl).connect();
        const indexes = await client.db(database).collection('order_changes').indexes();
        expect(indexes.map((i) => i.key)).toContainEqual({ order_id: 1, sequence: 1 });
        await client.db(database).dropDatabase();
        await client.close();
      },
    };
  },
  !mongodbUrl,
);

describe('change log: MongoDB unreachable', () => {
  it('when MongoDB does not answer, then opening does not wait for it and a write fails in bounded time instead of hanging', async () => {
    const started = Date.now();
    const log = createMongoChangeLog({ url: 'mongodb://127.0.0.1:9/none', database: 'x', timeoutMs: 300 });
    expect(Date.now() - started).toBeLessThan(200);
    await expect(log.append(logged([event(1, 1)]))).rejects.toThrow();
    await log.close();
  });
});

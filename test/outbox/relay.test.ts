import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, inject, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/client.js';
import type { Broker } from '../../src/messaging/broker.js';
import { createInProcessBroker } from '../../src/messaging/in-process.js';
import { startOutboxRelay, type OutboxRelay, type RelayMetrics } from '../../src/outbox/relay.js';
import { backlog, readCheckpoint } from '../../src/outbox/store.js';
import { databaseKinds } from '../helpers/databases.js';
import { migratedDatabase, orderEvents, proxiedRabbitMq, recordingLogger, tap, useCleanups, waitUntilReadable, writeOutboxEvents } from '../helpers/outbox.js';

const rabbitmqUrl = inject('rabbitmqUrl');

for (const { kind, skip } of databaseKinds()) {
  describe.skipIf(skip)(`the outbox relay on ${kind}`, () => {
    const cleanup = useCleanups();
    const database = () => migratedDatabase(kind, cleanup);

    function relay(
      db: Database,
      broker: Broker,
      options: { sweepMs?: number; logger?: ReturnType<typeof recordingLogger>; metrics?: RelayMetrics } = {},
    ): OutboxRelay {
      const { sweepMs = 200, logger = recordingLogger(), metrics } = options;
      const started = startOutboxRelay({ db, broker, logger, sweepMs, batchSize: 7, metrics });
      cleanup(() => started.stop());
      return started;
    }

    it('when events wait in the outbox, then it ships each once, in log order, and the checkpoint ends past the last', async () => {
      const { db } = await database();
      const broker = createInProcessBroker();
      cleanup(() => broker.close());
      const got = await tap(broker, 'relay-test');
      const events = orderEvents(10);
      await writeOutboxEvents(db, events);
      relay(db, broker);
      await expect.poll(() => got.length, { timeout: 10_000 }).toBe(events.length);
      expect(got.map((e) => e.id)).toEqual(events.map((e) => e.id));
      await expect.poll(() => backlog(db)).toBe(0);
      const [last] = await db.query<{ position: number }>('SELECT max(position)::int AS position FROM outbox');
      expect((await readCheckpoint(db)).position).toBe(last!.position);
    });

    it('when it is stopped while batches are in flight, then it waits for their confirms and records them', async () => {
      const { db } = await database();
      const broker = createInProcessBroker();
      cleanup(() => broker.close());
      const held: (() => void)[] = [];
      await broker.consume({ durable: true, queue: 'slow', prefetch: 1000 }, (d) => void held.push(() => d.ack()));
      await writeOutboxEvents(db, orderEvents(3));
      const running = relay(db, broker);
      await expect.poll(() => held.length).toBeGreaterThan(0);
      const stopping = running.stop();
      const release = setInterval(() => held.splice(0).forEach((ack) => ack()), 5);
      await stopping;
      clearInterval(release);
      expect((await readCheckpoint(db)).position).toBeGreaterThan(0);
    });

    describe.skipIf(!rabbitmqUrl)('with RabbitMQ through a proxy', () => {
      const proxiedBroker = () => proxiedRabbitMq(cleanup, { exchangePrefix: 'relay-test', reconnectMaxMs: 400 });

      it('when the broker is down, then the relay waits quietly (few passes and queries, one warning) and ships at once when it returns', async () => {
        const { db } = await database();
        const queries = { n: 0 };
        const counted: Database = { ...db, query: (...args) => (queries.n++, db.query(...args)) };
        const { broker, proxy } = await proxiedBroker();
        const got = await tap(broker, 'relay-test');
        await expect.poll(() => broker.state(), { timeout: 10_000 }).toBe('up');
        proxy.cut();
        await expect.poll(() => broker.state(), { timeout: 10_000 }).not.toBe('up');
        const logger = recordingLogger();
        const events = orderEvents(4);
        await writeOutboxEvents(db, events);
        const passes = { failed: 0 };
        const metrics: RelayMetrics = { failed: () => void passes.failed++, confirmed: () => undefined };
        const running = relay(counted, broker, { logger, sweepMs: 100, metrics });

        // Measured by the relay's own work, not the process's CPU, which other tests' leftovers share.
        const before = { queries: queries.n };
        for (let i = 0; i < 20; i++) {
          running.wake();
          await sleep(150);
        }
        // Bounded by the back-off (100, 200, 400, 800, 1600 ms…) in 3 s, not by 20 wakes and 30 sweeps.
        expect(passes.failed).toBeGreaterThanOrEqual(3);
        expect(passes.failed).toBeLessThanOrEqual(6);
        // And so are its queries (on PostgreSQL, the standby's lock checks too).
        expect(queries.n - before.queries).toBeLessThan(20);
        expect(logger.warnings()).toHaveLength(1);
        expect(got).toEqual([]);

        proxy.restore();
        await expect.poll(() => broker.state(), { timeout: 10_000 }).toBe('up');
        const upAt = performance.now();
        await expect.poll(() => got.length, { timeout: 10_000, interval: 10 }).toBe(events.length);
        // Woken by the broker coming back, not by the back-off (up to 5 s) or a sweep.
        expect(performance.now() - upAt).toBeLessThan(1_000);
        expect(got.map((e) => e.id)).toEqual(events.map((e) => e.id));
        await expect.poll(() => logger.lines.at(-1)?.msg).toMatch(/shipping again/);
        expect(logger.warnings()).toHaveLength(1);
      });
    });

    // Several relays on one database need several processes' worth of connections: PostgreSQL only.
    describe.skipIf(kind === 'pglite')('with several relays on one database', () => {
      it('when two relays run, then one is active, and an event written beside the standby is shipped at once by NOTIFY', async () => {
        const { db, test } = await database();
        const other = await openDatabase({ url: test.url });
        cleanup(() => other.close());
        const broker = createInProcessBroker();
        cleanup(() => broker.close());
        const got = await tap(broker, 'relay-test');
        const first = relay(db, broker, { sweepMs: 60_000 });
        await expect.poll(() => first.isActive()).toBe(true);
        const second = relay(other, broker, { sweepMs: 60_000 });
        await sleep(200);
        expect(second.isActive()).toBe(false);

        const [event] = orderEvents(1);
        await writeOutboxEvents(other, [event!]);
        // A transaction open anywhere on the server (another test's, beside this one) holds a new row back
        // (src/outbox/store.ts), and a wake that finds nothing readable leaves it to the next sweep.
        await waitUntilReadable(other, 1);
        second.wake();
        // Long before the active relay's sweep (a minute): only the NOTIFY can have woken it.
        await expect.poll(() => got.length, { timeout: 10_000, interval: 5 }).toBe(1);
      });

      it('when the active relay stops, then the standby takes over within a sweep and ships the rest, nothing lost', async () => {
        const { db, test } = await database();
        const other = await openDatabase({ url: test.url });
        cleanup(() => other.close());
        const broker = createInProcessBroker();
        cleanup(() => broker.close());
        const got = await tap(broker, 'relay-test');
        const events = orderEvents(6);
        await writeOutboxEvents(db, events.slice(0, 9));
        const first = relay(db, broker, { sweepMs: 100 });
        await expect.poll(() => got.length).toBe(9);
        const second = relay(other, broker, { sweepMs: 100 });
        await sleep(300);
        expect(second.isActive()).toBe(false);

        await first.stop();
        await expect.poll(() => second.isActive(), { timeout: 5_000 }).toBe(true);
        await writeOutboxEvents(other, events.slice(9));
        second.wake();
        await expect.poll(() => got.length, { timeout: 10_000 }).toBe(events.length);
        expect(got.map((e) => e.id)).toEqual(events.map((e) => e.id));
      });
    });
  });
}

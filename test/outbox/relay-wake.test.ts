import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/client.js';
import type { Broker } from '../../src/messaging/broker.js';
import { createInProcessBroker } from '../../src/messaging/in-process.js';
import { startOutboxRelay, WAKE_CHANNEL, type OutboxRelay } from '../../src/outbox/relay.js';
import { LOG_START, readAfter } from '../../src/outbox/store.js';
import { databaseKinds } from '../helpers/databases.js';
import { makeEvent } from '../helpers/events.js';
import { migratedDatabase, orderEvents, tap, useCleanups, waitUntilReadable, writeOutboxEvents } from '../helpers/outbox.js';

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

for (const { kind, skip } of databaseKinds()) {
  describe.skipIf(skip)(`waking the outbox relay on ${kind}`, () => {
    const cleanup = useCleanups();
    const database = () => migratedDatabase(kind, cleanup);

    /** A relay whose sweep never comes during a test: only a wake can make it look. */
    function relay(db: Database, broker: Broker, batchSize?: number): OutboxRelay {
      const started = startOutboxRelay({ db, broker, logger: silent, sweepMs: 600_000, batchSize });
      cleanup(() => started.stop());
      return started;
    }

    /** A write becomes readable once no older transaction is open anywhere on the server: wake until it is shipped. */
    async function wakeUntil(running: OutboxRelay, done: () => boolean): Promise<number> {
      const started = performance.now();
      await expect.poll(() => (running.wake(), done()), { timeout: 10_000, interval: 20 }).toBe(true);
      return performance.now() - started;
    }

    it('when the active relay is woken, then it ships what was written at once, without waiting for a sweep', async () => {
      const { db } = await database();
      const broker = createInProcessBroker();
      cleanup(() => broker.close());
      const got = await tap(broker, 'relay-wake-test');
      const running = relay(db, broker);
      await expect.poll(() => running.isActive(), { timeout: 10_000 }).toBe(true);
      await sleep(100);
      const events = [makeEvent({ orderId: 1 }), makeEvent({ orderId: 2 })];
      await writeOutboxEvents(db, events);
      await wakeUntil(running, () => got.length === events.length);
      expect(got.map((e) => e.id)).toEqual(events.map((e) => e.id));
    });

    it('when more than a batch waits, then one wake ships all of it', async () => {
      const { db } = await database();
      const broker = createInProcessBroker();
      cleanup(() => broker.close());
      const got = await tap(broker, 'relay-wake-test');
      const running = relay(db, broker, 5);
      await expect.poll(() => running.isActive(), { timeout: 10_000 }).toBe(true);
      await sleep(100);
      const events = orderEvents(4);
      await writeOutboxEvents(db, events);
      await expect.poll(async () => (await readAfter(db, LOG_START, 100)).length, { timeout: 10_000, interval: 20 }).toBe(events.length);
      running.wake();
      await expect.poll(() => got.length, { timeout: 5_000 }).toBe(events.length);
      expect(got.map((e) => e.id)).toEqual(events.map((e) => e.id));
    });

    it('when a stopped relay is woken, then it ships nothing', async () => {
      const { db } = await database();
      const broker = createInProcessBroker();
      cleanup(() => broker.close());
      const got = await tap(broker, 'relay-wake-test');
      const running = relay(db, broker);
      await expect.poll(() => running.isActive(), { timeout: 10_000 }).toBe(true);
      await running.stop();
      await writeOutboxEvents(db, [makeEvent()]);
      for (let i = 0; i < 10; i++) {
        running.wake();
        await sleep(30);
      }
      expect(got).toEqual([]);
      expect(running.isActive()).toBe(false);
    });

    describe.skipIf(kind === 'pglite')('beside a standby', () => {
      it('when a standby is woken many times at once, then it sends one NOTIFY and one more for what came meanwhile, takes no session, and stops sending once stopped', async () => {
        const { db, test } = await database();
        const broker = createInProcessBroker();
        cleanup(() => broker.close());
        const got = await tap(broker, 'relay-wake-test');
        const active = relay(db, broker);
        await expect.poll(() => active.isActive(), { timeout: 10_000 }).toBe(true);

        const other = await openDatabase({ url: test.url });
        cleanup(() => other.close());
        const notifies: unknown[][] = [];
        let sessions = 0;
        const counted: Database = {
          ...other,
          query: (text, params, name) => {
            if (text.includes('pg_notify')) notifies.push([...(params ?? [])]);
            return other.query(text, params, name);
          },
          session: () => (sessions++, other.session()),
        };
        const warnings: string[] = [];
        const standby = startOutboxRelay({ db: counted, broker, logger: { info: () => undefined, warn: (_obj, msg) => void warnings.push(msg), error: (_obj, msg) => void warnings.push(msg) }, sweepMs: 50 });
        cleanup(() => standby.stop());
        await sleep(300);
        expect(standby.isActive()).toBe(false);
        // The standby asks whether the lock is held on a pooled connection, each sweep, and takes no session while it is.
        expect(sessions).toBe(0);

        const events = [makeEvent({ orderId: 1 }), makeEvent({ orderId: 2 })];
        await writeOutboxEvents(other, events);
        // A transaction open anywhere on the server (another test's) holds new rows back, and a NOTIFY that
        // finds nothing readable leaves them to the active relay's sweep: wake once they can be read.
        await waitUntilReadable(other, events.length);
        for (let i = 0; i < 50; i++) standby.wake();
        await expect.poll(() => got.length, { timeout: 10_000 }).toBe(events.length);
        await sleep(200);
        expect(notifies).toEqual([[WAKE_CHANNEL], [WAKE_CHANNEL]]);

        await standby.stop();
        for (let i = 0; i < 5; i++) standby.wake();
        await sleep(200);
        expect(notifies).toHaveLength(2);
        expect(warnings).toEqual([]);
      });

      it('when a standby loses the race for the lock, then it gives its connection back, and takes over once the active relay stops', async () => {
        const { db, test } = await database();
        const broker = createInProcessBroker();
        cleanup(() => broker.close());
        const got = await tap(broker, 'relay-wake-test');
        // One connection only: a session kept after the lost race would leave the standby none.
        const other = await openDatabase({ url: test.url, poolSize: 1 });
        cleanup(() => other.close());
        let active: OutboxRelay | undefined;
        // The other relay takes the lock just after the standby saw it free.
        const racing: Database = {
          ...other,
          query: async <T,>(text: string, params?: readonly unknown[], name?: string): Promise<T[]> => {
            const rows = await other.query<T>(text, params, name);
            if (!active && text.includes('pg_locks')) {
              active = relay(db, broker);
              await expect.poll(() => active!.isActive(), { timeout: 10_000 }).toBe(true);
            }
            return rows;
          },
        };
        const warnings: string[] = [];
        const standby = startOutboxRelay({ db: racing, broker, logger: { info: () => undefined, warn: (_obj, msg) => void warnings.push(msg), error: (_obj, msg) => void warnings.push(msg) }, sweepMs: 50 });
        cleanup(() => standby.stop());
        await expect.poll(() => active?.isActive(), { timeout: 10_000 }).toBe(true);
        await sleep(500);
        expect(standby.isActive()).toBe(false);
        expect(warnings).toEqual([]);

        await active!.stop();
        await expect.poll(() => standby.isActive(), { timeout: 5_000 }).toBe(true);
        const events = [makeEvent()];
        await writeOutboxEvents(db, events);
        await wakeUntil(standby, () => got.length === events.length);
        expect(warnings).toEqual([]);
      });
    });
  });
}

import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it, vi } from 'vitest';
import { openDatabase, type Database, type Queryable } from '../../src/db/client.js';
import type { OrderEvent } from '../../src/events/envelope.js';
import type { Broker } from '../../src/messaging/broker.js';
import { createInProcessBroker } from '../../src/messaging/in-process.js';
import { startOutboxRelay, type OutboxRelay, type RelayOptions } from '../../src/outbox/relay.js';
import { LOG_START, readAfter, readCheckpoint } from '../../src/outbox/store.js';
import { databaseKinds } from '../helpers/databases.js';
import { makeEvent } from '../helpers/events.js';
import { migratedDatabase, orderEvents, proxiedRabbitMq, recordingLogger, useCleanups, waitUntilReadable, writeOutboxEvents } from '../helpers/outbox.js';

const rabbitmqUrl = inject('rabbitmqUrl');
const SWEEP_MS = 1_000;
const settled = () => new Promise((resolve) => setImmediate(resolve));
const reads = (s: { text: string }) => /\bFROM outbox\b/.test(s.text);
const checkpointWrites = (s: { text: string }) => /INSERT INTO outbox_checkpoint/.test(s.text);
const notifies = (s: { text: string }) => s.text.includes('pg_notify');

/**
 * The database as a relay sees it, with a hand on what passes between them: the statements it runs
 * (pooled and on its sessions), `onRead` run as its next read of the log answers, and, with
 * `holdNews`, the news that a session's connection ended kept from it until `tell()`, as when an end
 * is noticed late.
 */
function watched(db: Database, options: { holdNews?: boolean } = {}) {
  const statements: { text: string; answered: boolean }[] = [];
  const sessions: { ended: boolean; tell(): void }[] = [];
  const hooks: { onRead?: () => Promise<void> } = {};
  const run = async <T,>(on: Queryable, text: string, params?: readonly unknown[], name?: string): Promise<T[]> => {
    const statement = { text, answered: false };
    statements.push(statement);
    const rows = await on.query<T>(text, params, name);
    statement.answered = true;
    const onRead = hooks.onRead;
    if (onRead && reads(statement)) {
      hooks.onRead = undefined;
      await onRead();
    }
    return rows;
  };
  const relayDb: Database = {
    ...db,
    query: (text, params, name) => run(db, text, params, name),
    async session() {
      const inner = await db.session();
      let tell = (): void => undefined;
      const told = options.holdNews ? new Promise<void>((resolve) => (tell = resolve)) : undefined;
      const session = { ended: false, tell: () => tell() };
      void inner.lost.then(() => (session.ended = true));
      sessions.push(session);
      return { ...inner, query: (text, params, name) => run(inner, text, params, name), lost: Promise.all([inner.lost, told]).then(() => undefined) };
    },
  };
  return { db: relayDb, statements, sessions, hooks };
}

/** A consumer that acks only once let go: the in-process broker confirms a publish when its events are acked. */
async function consumer(broker: Broker, { hold = false } = {}) {
  const got: OrderEvent[] = [];
  const held: (() => void)[] = [];
  let holding = hold;
  await broker.consume({ durable: true, queue: `relay-passes-test-${randomUUID()}`, prefetch: 1000 }, (d) => {
    got.push(d.event);
    if (holding) held.push(() => d.ack());
    else d.ack();
  });
  return {
    got,
    held,
    letGo() {
      holding = false;
      for (const ack of held.splice(0)) ack();
    },
  };
}

for (const { kind, skip } of databaseKinds()) {
  describe.skipIf(skip)(`the outbox relay's passes on ${kind}`, () => {
    const cleanup = useCleanups();
    const database = () => migratedDatabase(kind, cleanup);

    async function inProcessBroker(): Promise<Broker> {
      const broker = createInProcessBroker();
      cleanup(() => broker.close());
      return broker;
    }

    /** Writes the events and waits until they can be read: a transaction open anywhere on the server holds them back. */
    async function write(db: Database, events: OrderEvent[]): Promise<void> {
      const before = (await readAfter(db, LOG_START, 10_000)).length;
      await writeOutboxEvents(db, events);
      await waitUntilReadable(db, before + events.length);
    }

    /** A relay whose sweep comes only when a test advances the clock (fake intervals) or never during it. */
    function relay(options: Partial<RelayOptions> & Pick<RelayOptions, 'db' | 'broker'>): OutboxRelay {
      const started = startOutboxRelay({ logger: recordingLogger(), sweepMs: 600_000, ...options });
      cleanup(() => started.stop());
      return started;
    }

    function fakeSweeps(): void {
      vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
      cleanup(async () => vi.useRealTimers());
    }

    const shipped = async (db: Database) => (await readAfter(db, LOG_START, 10_000)).at(-1)!.at;

    it.each([
      ['woken', (running: OutboxRelay) => running.wake()],
      ['swept', () => void vi.advanceTimersByTime(SWEEP_MS)],
    ])('when %s while a batch awaits its confirm, then it ships what was written meanwhile once the confirm comes', async (_, look) => {
      fakeSweeps();
      const { db } = await database();
      const broker = await inProcessBroker();
      const slow = await consumer(broker, { hold: true });
      const [first, second] = [makeEvent({ orderId: 1 }), makeEvent({ orderId: 2 })];
      await write(db, [first!]);
      const running = relay({ db, broker, sweepMs: SWEEP_MS });
      await expect.poll(() => slow.held.length, { timeout: 10_000 }).toBe(1);

      await write(db, [second!]);
      look(running);
      slow.letGo();
      await expect.poll(() => slow.got.length, { timeout: 5_000 }).toBe(2);
      expect(slow.got.map((e) => e.id)).toEqual([first!.id, second!.id]);
    });

    it('when events are written without a wake, then the next sweep ships them', async () => {
      fakeSweeps();
      const { db } = await database();
      const broker = await inProcessBroker();
      const { got } = await consumer(broker);
      const events = orderEvents(2);
      await write(db, events.slice(0, 3));
      relay({ db, broker, sweepMs: SWEEP_MS });
      await expect.poll(() => readCheckpoint(db), { timeout: 10_000 }).toEqual(await shipped(db));

      await write(db, events.slice(3));
      vi.advanceTimersByTime(SWEEP_MS);
      await expect.poll(() => got.length, { timeout: 5_000 }).toBe(events.length);
      expect(got.map((e) => e.id)).toEqual(events.map((e) => e.id));
    });

    it('when fewer events than a batch wait, then it ships them with one read of the log and one checkpoint write', async () => {
      const { db } = await database();
      const broker = await inProcessBroker();
      const { got } = await consumer(broker);
      const events = orderEvents(2);
      await write(db, events);
      const seen = watched(db);
      relay({ db: seen.db, broker, batchSize: 10 });
      await expect.poll(() => readCheckpoint(db), { timeout: 10_000 }).toEqual(await shipped(db));
      expect(got.map((e) => e.id)).toEqual(events.map((e) => e.id));
      expect(seen.statements.filter(reads)).toHaveLength(1);
      expect(seen.statements.filter(checkpointWrites)).toHaveLength(1);
    });

    it('when several batches are confirmed together, then the checkpoint passes them all in fewer writes than batches', async () => {
      const { db } = await database();
      const broker = await inProcessBroker();
      const slow = await consumer(broker, { hold: true });
      const events = orderEvents(2).slice(0, 4);
      await write(db, events);
      const seen = watched(db);
      relay({ db: seen.db, broker, batchSize: 1, maxInFlight: 4 });
      await expect.poll(() => slow.held.length, { timeout: 10_000 }).toBe(4);

      slow.letGo();
      await expect.poll(() => readCheckpoint(db), { timeout: 5_000 }).toEqual(await shipped(db));
      expect(slow.got.map((e) => e.id)).toEqual(events.map((e) => e.id));
      expect(seen.statements.filter(checkpointWrites).length).toBeLessThan(events.length);
    });

    describe.skipIf(!rabbitmqUrl)('with RabbitMQ through a proxy', () => {
      it('when the broker comes back while the relay is idle, then it ships what was written while it was away, without a wake or a sweep', async () => {
        const { db } = await database();
        const { broker, proxy } = await proxiedRabbitMq(cleanup, { exchangePrefix: 'relay-passes-test', reconnectMaxMs: 200 });
        const { got } = await consumer(broker);
        await expect.poll(() => broker.state(), { timeout: 10_000 }).toBe('up');
        const events = orderEvents(2);
        await write(db, events.slice(0, 3));
        relay({ db, broker });
        await expect.poll(() => readCheckpoint(db), { timeout: 10_000 }).toEqual(await shipped(db));

        proxy.cut();
        await expect.poll(() => broker.state(), { timeout: 10_000 }).not.toBe('up');
        await write(db, events.slice(3));
        await proxy.restore();
        // At least once: an ack still on its way when the connection was cut brings that event again.
        const distinct = () => [...new Set(got.map((e) => e.id))];
        await expect.poll(() => distinct().length, { timeout: 10_000 }).toBe(events.length);
        expect(distinct()).toEqual(events.map((e) => e.id));
      });
    });

    describe.skipIf(kind !== 'pglite')('embedded', () => {
      it('when woken while it cannot reach its database, then it sends no NOTIFY (nothing else shares the database), and ships once it can', async () => {
        const { db } = await database();
        const broker = await inProcessBroker();
        const { got } = await consumer(broker);
        const failures: string[] = [];
        const seen = watched(db);
        await db.query('ALTER TABLE outbox_checkpoint RENAME TO outbox_checkpoint_away');
        const running = relay({ db: seen.db, broker, metrics: { failed: (d) => void failures.push(d), confirmed: () => undefined } });
        await expect.poll(() => failures.length, { timeout: 10_000 }).toBeGreaterThan(0);
        const events = orderEvents(1);
        await write(db, events);
        for (let i = 0; i < 3; i++) running.wake();
        expect(seen.statements.filter(notifies)).toEqual([]);

        await db.query('ALTER TABLE outbox_checkpoint_away RENAME TO outbox_checkpoint');
        await expect.poll(() => got.length, { timeout: 5_000 }).toBe(events.length);
      });
    });

    describe.skipIf(kind !== 'postgres')('beside other connections to the server', () => {
      const ADVISORY = `FROM pg_locks l JOIN pg_database d ON d.oid = l.database
        WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()`;
      /** Ends the active relay's connection from the server, as a failover or an administrator does, once its lock is gone. */
      async function cutRelayConnection(db: Database): Promise<void> {
        expect(await db.query(`SELECT pg_terminate_backend(l.pid, 5000) AS cut ${ADVISORY}`)).toEqual([{ cut: true }]);
      }

      it('when a standby is woken once, then it sends one NOTIFY, and the active relay ships what it wrote', async () => {
        const { db, test } = await database();
        const broker = await inProcessBroker();
        const { got } = await consumer(broker);
        const active = relay({ db, broker });
        await expect.poll(() => active.isActive(), { timeout: 10_000 }).toBe(true);
        const other = await openDatabase({ url: test.url });
        cleanup(() => other.close());
        const seen = watched(other);
        const standby = relay({ db: seen.db, broker });

        const events = orderEvents(1);
        await write(other, events);
        standby.wake();
        await expect.poll(() => seen.statements.filter(notifies).every((s) => s.answered) && got.length === events.length, { timeout: 5_000 }).toBe(true);
        expect(seen.statements.filter(notifies)).toHaveLength(1);
        expect(standby.isActive()).toBe(false);
      });

      it('when it stands by, then it asks whether the lead is free once per sweep, not over and over', async () => {
        fakeSweeps();
        const { db, test } = await database();
        const broker = await inProcessBroker();
        const active = relay({ db, broker });
        await expect.poll(() => active.isActive(), { timeout: 10_000 }).toBe(true);
        const other = await openDatabase({ url: test.url });
        cleanup(() => other.close());
        const seen = watched(other);
        const lockChecks = () => seen.statements.filter((s) => s.text.includes('pg_locks'));
        const standby = relay({ db: seen.db, broker, sweepMs: SWEEP_MS });

        await expect.poll(() => lockChecks().filter((s) => s.answered).length, { timeout: 5_000 }).toBe(1);
        // A spinning standby asked thousands of times a second: give it time to ask again.
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(lockChecks()).toHaveLength(1);
        vi.advanceTimersByTime(SWEEP_MS);
        await expect.poll(() => lockChecks().filter((s) => s.answered).length, { timeout: 5_000 }).toBe(2);
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(lockChecks()).toHaveLength(2);
        expect(standby.isActive()).toBe(false);
      });

      it('when its connection is cut while idle, then it knows at once that it lost the lead, and the next sweep takes it again without a failure', async () => {
        fakeSweeps();
        const { db } = await database();
        const broker = await inProcessBroker();
        const { got } = await consumer(broker);
        const logger = recordingLogger();
        const running = relay({ db, broker, logger, sweepMs: SWEEP_MS });
        await expect.poll(() => running.isActive(), { timeout: 10_000 }).toBe(true);

        await cutRelayConnection(db);
        await expect.poll(() => running.isActive(), { timeout: 5_000 }).toBe(false);
        const events = orderEvents(1);
        await write(db, events);
        vi.advanceTimersByTime(SWEEP_MS);
        await expect.poll(() => got.length, { timeout: 5_000 }).toBe(events.length);
        expect(running.isActive()).toBe(true);
        expect(logger.warnings()).toEqual([]);
      });

      it('when it is stopped after losing its connection, then it stops without taking the lead again', async () => {
        const { db } = await database();
        const broker = await inProcessBroker();
        const logger = recordingLogger();
        const running = relay({ db, broker, logger });
        await expect.poll(() => running.isActive(), { timeout: 10_000 }).toBe(true);
        await cutRelayConnection(db);
        await expect.poll(() => running.isActive(), { timeout: 5_000 }).toBe(false);

        await running.stop();
        expect(logger.lines.filter((l) => l.msg === 'outbox relay active')).toHaveLength(1);
        expect(await db.query(`SELECT 1 ${ADVISORY}`)).toEqual([]);
      });

      it('when the news that its old connection ended comes after it took a new one, then it keeps the new one and goes on shipping', async () => {
        const { db } = await database();
        const broker = await inProcessBroker();
        const { got } = await consumer(broker);
        const seen = watched(db, { holdNews: true });
        const running = relay({ db: seen.db, broker });
        await expect.poll(() => running.isActive(), { timeout: 10_000 }).toBe(true);

        await cutRelayConnection(db);
        await expect.poll(() => seen.sessions[0]!.ended, { timeout: 5_000 }).toBe(true);
        // Unaware, it fails on the dead connection, backs off, and takes a new one.
        running.wake();
        await expect.poll(() => seen.sessions.length === 2 && running.isActive(), { timeout: 5_000 }).toBe(true);
        seen.sessions[0]!.tell();
        await settled();
        expect(running.isActive()).toBe(true);

        const events = orderEvents(1);
        await write(db, events);
        running.wake();
        await expect.poll(() => got.length, { timeout: 5_000 }).toBe(events.length);
      });

      it('when its connection ends just as a pass reads the log, then it takes the lead again at once, without a wake or a sweep', async () => {
        const { db } = await database();
        const broker = await inProcessBroker();
        const { got } = await consumer(broker);
        const seen = watched(db);
        const running = relay({ db: seen.db, broker });
        await expect.poll(() => running.isActive(), { timeout: 10_000 }).toBe(true);

        seen.hooks.onRead = async () => {
          await cutRelayConnection(db);
          await expect.poll(() => seen.sessions[0]!.ended, { timeout: 5_000 }).toBe(true);
          await settled();
        };
        running.wake();
        await expect.poll(() => seen.sessions.length === 2 && running.isActive(), { timeout: 5_000 }).toBe(true);
        const events = orderEvents(1);
        await write(db, events);
        running.wake();
        await expect.poll(() => got.length, { timeout: 5_000 }).toBe(events.length);
      });
    });
  });
}

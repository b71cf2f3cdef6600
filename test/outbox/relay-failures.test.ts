import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { openDatabase, type Queryable } from '../../src/db/client.js';
import type { Broker, BrokerState } from '../../src/messaging/broker.js';
import { createInProcessBroker } from '../../src/messaging/in-process.js';
import { startOutboxRelay, type OutboxRelay, type RelayOptions } from '../../src/outbox/relay.js';
import { LOG_START, readAfter, readCheckpoint } from '../../src/outbox/store.js';
import { databaseKinds } from '../helpers/databases.js';
import { makeEvent } from '../helpers/events.js';
import { migratedDatabase, orderEvents, recordingLogger, tap, useCleanups, waitUntilReadable, writeOutboxEvents } from '../helpers/outbox.js';

function recordingMetrics() {
  const failures: ('broker' | 'database')[] = [];
  const confirms: { events: number; seconds: number }[] = [];
  return {
    failures,
    confirms,
    failed: (dependency: 'broker' | 'database') => void failures.push(dependency),
    confirmed: (events: number, seconds: number) => void confirms.push({ events, seconds }),
  };
}

/**
 * The in-process broker behind a switch, failing on demand at the Broker boundary as RabbitMQ does:
 * its state changes (and tells its listeners), its publishes reject, or their confirms are held.
 */
function switchableBroker() {
  const inner = createInProcessBroker();
  const listeners: ((state: BrokerState) => void)[] = [];
  const control = {
    state: 'up' as BrokerState,
    /** Each publish rejects with this while it is set. */
    rejectWith: undefined as Error | undefined,
    /** Confirms wait for release() while set. */
    holdConfirms: false,
    held: [] as { resolve(): void; reject(error: Error): void }[],
    /** When each publish was asked for, in ms, and how many events it carried. */
    publishes: [] as { at: number; events: number }[],
    setState(state: BrokerState) {
      control.state = state;
      for (const listener of listeners) listener(state);
    },
    releaseOne() {
      control.held.shift()?.resolve();
    },
    rejectHeld(error: Error) {
      for (const publish of control.held.splice(0)) publish.reject(error);
    },
  };
  const broker: Broker = {
    async publish(batch) {
      control.publishes.push({ at: performance.now(), events: batch.length });
      if (control.rejectWith) throw control.rejectWith;
      if (control.holdConfirms) await new Promise<void>((resolve, reject) => control.held.push({ resolve, reject }));
      await inner.publish(batch);
    },
    consume: (options, handler) => inner.consume(options, handler),
    state: () => control.state,
    onStateChange: (listener) => void listeners.push(listener),
    close: () => inner.close(),
  };
  return { broker, control };
}

const BROKER_WARNING = 'outbox relay cannot reach the broker; events wait in the outbox and go out when it recovers';
const DATABASE_WARNING = 'outbox relay cannot reach the database; events wait in the outbox and go out when it recovers';
const RECOVERED = 'outbox relay shipping again';

for (const { kind, skip } of databaseKinds()) {
  describe.skipIf(skip)(`the outbox relay on ${kind} when a dependency fails`, () => {
    const cleanup = useCleanups();
    const database = () => migratedDatabase(kind, cleanup);

    // The sweep finds events that became readable after a pass (a transaction open anywhere on the server holds them back).
    function relay(options: Partial<RelayOptions> & Pick<RelayOptions, 'db' | 'broker'>): OutboxRelay {
      const started = startOutboxRelay({ logger: recordingLogger(), sweepMs: 100, ...options });
      cleanup(() => started.stop());
      return started;
    }

    async function setUp() {
      const { db } = await database();
      const { broker, control } = switchableBroker();
      cleanup(() => broker.close());
      const got = await tap(broker, 'relay-failure-test');
      return { db, broker, control, got, logger: recordingLogger(), metrics: recordingMetrics() };
    }

    it('when publishes are rejected, then it retries after 100 ms, doubling up to its limit, warns once, and ships everything once they are confirmed', async () => {
      const { db, broker, control, got, logger, metrics } = await setUp();
      control.rejectWith = new Error('message nacked');
      const events = orderEvents(1);
      await writeOutboxEvents(db, events);
      await waitUntilReadable(db, events.length);
      // No sweep during the test: only the back-off brings each retry.
      relay({ db, broker, logger, metrics, maxBackoffMs: 400, sweepMs: 600_000 });
      await expect.poll(() => control.publishes.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(6);
      control.rejectWith = undefined;

      const gaps = control.publishes.slice(1, 6).map((p, i) => p.at - control.publishes[i]!.at);
      // 100, 200, 400, then the limit: never sooner (a timer may fire a millisecond early), not much later.
      expect(gaps[0]).toBeGreaterThanOrEqual(95);
      expect(gaps[0]).toBeLessThan(350);
      expect(gaps[1]).toBeGreaterThanOrEqual(195);
      for (const gap of gaps.slice(2)) {
        expect(gap).toBeGreaterThanOrEqual(395);
        expect(gap).toBeLessThan(750);
      }
      expect(logger.warnings()).toHaveLength(1);
      expect(logger.warnings()[0]).toMatchObject({ msg: BROKER_WARNING, obj: { err: { message: 'message nacked' } } });
      expect(metrics.failures.length).toBeGreaterThanOrEqual(6);
      expect(new Set(metrics.failures)).toEqual(new Set(['broker']));
      // A broker failure keeps the relay's session and lock.
      expect(logger.count('outbox relay active')).toBe(1);

      await expect.poll(() => got.length, { timeout: 5_000 }).toBe(events.length);
      expect(got.map((e) => e.id)).toEqual(events.map((e) => e.id));
      await expect.poll(() => logger.count(RECOVERED)).toBe(1);
      expect(metrics.confirms).toHaveLength(1);
      expect(metrics.confirms[0]!.events).toBe(events.length);
      expect(metrics.confirms[0]!.seconds).toBeGreaterThanOrEqual(0);
      expect(metrics.confirms[0]!.seconds).toBeLessThan(5);
    });

    it('when it recovered, then it says so once, and a later failure backs off from 100 ms again', async () => {
      const { db, broker, control, got, logger } = await setUp();
      control.rejectWith = new Error('message nacked');
      await writeOutboxEvents(db, orderEvents(1));
      const running = relay({ db, broker, logger });
      // Five failures: the next wait would be 1.6 s, and more after it.
      await expect.poll(() => control.publishes.length, { timeout: 10_000 }).toBe(5);
      control.rejectWith = undefined;
      await expect.poll(() => got.length, { timeout: 5_000 }).toBe(3);
      await expect.poll(() => logger.count(RECOVERED)).toBe(1);

      for (let i = 0; i < 3; i++) {
        await writeOutboxEvents(db, [makeEvent({ orderId: 10 + i })]);
        running.wake();
        await expect.poll(() => got.length).toBe(4 + i);
      }
      expect(logger.count(RECOVERED)).toBe(1);

      control.rejectWith = new Error('message nacked');
      const failedAt = control.publishes.length;
      await writeOutboxEvents(db, [makeEvent({ orderId: 20 })]);
      running.wake();
      await expect.poll(() => control.publishes.length).toBe(failedAt + 1);
      control.rejectWith = undefined;
      const firstFailure = control.publishes.at(-1)!.at;
      await expect.poll(() => got.length, { timeout: 5_000 }).toBe(7);
      expect(control.publishes.at(-1)!.at - firstFailure).toBeLessThan(600);
      expect(logger.warnings()).toHaveLength(2);
      // Said once the pass that shipped it ends, a moment after the consumer has it.
      await expect.poll(() => logger.count(RECOVERED)).toBe(2);
    });

    it('when the broker blocks publishers (an alarm), then the warning says so rather than that it cannot be reached, and the events go out once it is up', async () => {
      const { db, broker, control, got, logger } = await setUp();
      control.setState('blocked');
      const events = orderEvents(1);
      await writeOutboxEvents(db, events);
      relay({ db, broker, logger });
      await expect.poll(() => logger.warnings().length, { timeout: 10_000 }).toBe(1);
      expect(logger.warnings()[0]).toMatchObject({
        msg: 'outbox relay cannot publish: RabbitMQ blocks publishers (a memory or disk alarm); events wait in the outbox and go out when it recovers',
        obj: { err: { name: 'BrokerUnavailable', message: 'RabbitMQ is blocked', state: 'blocked' } },
      });
      expect(control.publishes).toEqual([]);

      control.setState('up');
      await expect.poll(() => got.length, { timeout: 10_000 }).toBe(events.length);
      expect(logger.warnings()).toHaveLength(1);
    });

    it('when the broker is down, then new events and other state changes do not end the back-off, and its coming back does at once', async () => {
      const { db, broker, control, got, logger, metrics } = await setUp();
      control.setState('down');
      const events = orderEvents(2);
      await writeOutboxEvents(db, events);
      const running = relay({ db, broker, logger, metrics });
      // Five failures, 100 + 200 + 400 + 800 ms apart: the wait now is 1.6 s.
      await expect.poll(() => metrics.failures.length, { timeout: 10_000 }).toBe(5);
      const fifthAt = performance.now();
      expect(control.publishes).toEqual([]);
      expect(logger.warnings()).toHaveLength(1);
      expect(logger.warnings()[0]).toMatchObject({ msg: BROKER_WARNING, obj: { err: { name: 'BrokerUnavailable', message: 'RabbitMQ is down' } } });

      for (let i = 0; i < 5; i++) {
        running.wake();
        await sleep(50);
      }
      control.setState('connecting');
      await sleep(50);
      control.setState('down');
      await sleep(100);
      expect(metrics.failures).toHaveLength(5);

      control.setState('up');
      await expect.poll(() => got.length, { timeout: 5_000, interval: 10 }).toBe(events.length);
      expect(performance.now() - fifthAt).toBeLessThan(1_400);
      expect(got.map((e) => e.id)).toEqual(events.map((e) => e.id));
      expect(metrics.failures).toHaveLength(5);
    });

    it('when stopped during a back-off, then it stops at once', async () => {
      const { db, broker, control, logger } = await setUp();
      control.rejectWith = new Error('message nacked');
      await writeOutboxEvents(db, orderEvents(1));
      const running = relay({ db, broker, logger });
      await expect.poll(() => control.publishes.length, { timeout: 10_000 }).toBe(5);
      const stopping = performance.now();
      await running.stop();
      expect(performance.now() - stopping).toBeLessThan(500);
      await sleep(300);
      expect(control.publishes).toHaveLength(5);
      expect(running.isActive()).toBe(false);
    });

    it('when stopped while a publish awaits its confirm and it then fails, then it stops without a warning or a retry', async () => {
      const { db, broker, control, logger, metrics } = await setUp();
      control.holdConfirms = true;
      await writeOutboxEvents(db, orderEvents(1));
      const running = relay({ db, broker, logger, metrics, stopGraceMs: 2_000 });
      await expect.poll(() => control.held.length, { timeout: 10_000 }).toBe(1);
      const stopping = running.stop();
      await sleep(50);
      control.rejectHeld(new Error('channel closed'));
      await stopping;
      await sleep(300);
      expect(metrics.failures).toEqual([]);
      expect(logger.warnings()).toEqual([]);
      expect(control.publishes).toHaveLength(1);
      expect(await readCheckpoint(db)).toEqual(LOG_START);
    });

    it('when confirms are slow, then no more than the in-flight limit of batches wait for them, and the checkpoint passes only confirmed ones', async () => {
      const { db, broker, control, got } = await setUp();
      control.holdConfirms = true;
      const events = orderEvents(2);
      await writeOutboxEvents(db, events);
      relay({ db, broker, batchSize: 1, maxInFlight: 2 });
      await expect.poll(() => control.publishes.length, { timeout: 10_000 }).toBe(2);
      await sleep(200);
      expect(control.publishes).toHaveLength(2);
      expect(await readCheckpoint(db)).toEqual(LOG_START);

      control.releaseOne();
      await expect.poll(() => control.publishes.length).toBe(3);
      const [first] = await readAfter(db, LOG_START, 1);
      await expect.poll(() => readCheckpoint(db)).toEqual(first!.at);
      await sleep(100);
      expect(control.publishes).toHaveLength(3);

      const release = setInterval(() => control.releaseOne(), 5);
      cleanup(async () => clearInterval(release));
      await expect.poll(() => got.length, { timeout: 5_000 }).toBe(events.length);
      expect(got.map((e) => e.id)).toEqual(events.map((e) => e.id));
      expect(control.publishes.every((p) => p.events === 1)).toBe(true);
      const all = await readAfter(db, LOG_START, 100);
      await expect.poll(() => readCheckpoint(db)).toEqual(all.at(-1)!.at);
    });

    it('when events are written and it is woken while a batch awaits its confirm, then they go out right after, not at the next sweep', async () => {
      const { db, broker, control, got } = await setUp();
      control.holdConfirms = true;
      const first = orderEvents(1);
      await writeOutboxEvents(db, first);
      await waitUntilReadable(db, first.length);
      const running = relay({ db, broker, sweepMs: 600_000 });
      await expect.poll(() => control.held.length, { timeout: 10_000 }).toBe(1);

      const later = [makeEvent({ orderId: 50 })];
      await writeOutboxEvents(db, later);
      await waitUntilReadable(db, first.length + later.length);
      running.wake();
      control.holdConfirms = false;
      control.releaseOne();
      await expect.poll(() => got.length, { timeout: 5_000 }).toBe(first.length + later.length);
      expect(control.publishes).toHaveLength(2);
    });

    it('when confirms are slow and no limit is given, then four batches wait for them at most', async () => {
      const { db, broker, control } = await setUp();
      control.holdConfirms = true;
      await writeOutboxEvents(db, orderEvents(2));
      relay({ db, broker, batchSize: 1 });
      await expect.poll(() => control.publishes.length, { timeout: 10_000 }).toBe(4);
      await sleep(200);
      expect(control.publishes).toHaveLength(4);
    });

    it('when stopped while confirms never come, then it waits the grace period, moves no checkpoint, and the next relay ships them again', async () => {
      const { db, broker, control, got } = await setUp();
      control.holdConfirms = true;
      const events = orderEvents(1);
      await writeOutboxEvents(db, events);
      const first = relay({ db, broker, stopGraceMs: 300 });
      await expect.poll(() => control.publishes.length, { timeout: 10_000 }).toBe(1);
      const stopping = performance.now();
      await first.stop();
      const took = performance.now() - stopping;
      expect(took).toBeGreaterThanOrEqual(290);
      expect(took).toBeLessThan(2_000);
      expect(first.isActive()).toBe(false);
      expect(await readCheckpoint(db)).toEqual(LOG_START);

      control.holdConfirms = false;
      relay({ db, broker });
      await expect.poll(() => got.length, { timeout: 5_000 }).toBe(events.length);
      expect(got.map((e) => e.id)).toEqual(events.map((e) => e.id));
    });

    it('when its database work fails, then it warns once naming the database error, gives its connection back, and ships once the database answers again', async () => {
      const { db, test } = await database();
      const { broker } = switchableBroker();
      cleanup(() => broker.close());
      const got = await tap(broker, 'relay-failure-test');
      const logger = recordingLogger();
      const metrics = recordingMetrics();
      // One connection only: a session not given back after a failure would leave the relay none.
      const relayDb = kind === 'postgres' ? await openDatabase({ url: test.url, poolSize: 1 }) : db;
      if (relayDb !== db) cleanup(() => relayDb.close());
      const events = orderEvents(1);
      await writeOutboxEvents(db, events);
      await db.query('ALTER TABLE outbox_checkpoint RENAME TO outbox_checkpoint_away');
      const running = relay({ db: relayDb, broker, logger, metrics });
      await expect.poll(() => metrics.failures.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
      expect(running.isActive()).toBe(false);
      expect(new Set(metrics.failures)).toEqual(new Set(['database']));
      expect(logger.warnings()).toHaveLength(1);
      expect(logger.warnings()[0]).toMatchObject({
        msg: DATABASE_WARNING,
        obj: { err: { name: 'DatabaseFailure', message: 'outbox database work failed: relation "outbox_checkpoint" does not exist' } },
      });
      expect(got).toEqual([]);

      await db.query('ALTER TABLE outbox_checkpoint_away RENAME TO outbox_checkpoint');
      await expect.poll(() => got.length, { timeout: 5_000 }).toBe(events.length);
      expect(running.isActive()).toBe(true);
      await expect.poll(() => logger.count(RECOVERED)).toBe(1);
      expect(logger.warnings()).toHaveLength(1);
    });

    it('when the log cannot be read while it is active, then it gives up its session, warns, and takes the lead again once it can', async () => {
      const { db, broker, got, logger, metrics } = await setUp();
      const running = relay({ db, broker, logger, metrics });
      await expect.poll(() => running.isActive(), { timeout: 10_000 }).toBe(true);
      expect(logger.count('outbox relay active')).toBe(1);
      await db.query('ALTER TABLE outbox RENAME TO outbox_away');
      running.wake();
      await expect.poll(() => metrics.failures.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(1);
      expect(running.isActive()).toBe(false);
      expect(logger.warnings()[0]).toMatchObject({ msg: DATABASE_WARNING, obj: { err: { message: 'outbox database work failed: relation "outbox" does not exist' } } });

      await db.query('ALTER TABLE outbox_away RENAME TO outbox');
      const events = orderEvents(1);
      await writeOutboxEvents(db, events);
      await expect.poll(() => got.length, { timeout: 5_000 }).toBe(events.length);
      expect(running.isActive()).toBe(true);
      expect(logger.count('outbox relay active')).toBe(2);
      expect(logger.warnings()).toHaveLength(1);
    });

    /** Makes the active relay lose its session (its log read fails), then lets it take the lead again. */
    async function loseAndRetakeSession(db: Queryable, running: OutboxRelay, metrics: ReturnType<typeof recordingMetrics>, logger: ReturnType<typeof recordingLogger>) {
      const failed = metrics.failures.length;
      const leads = logger.count('outbox relay active');
      await db.query('ALTER TABLE outbox RENAME TO outbox_away');
      running.wake();
      await expect.poll(() => metrics.failures.length, { timeout: 10_000 }).toBeGreaterThan(failed);
      await db.query('ALTER TABLE outbox_away RENAME TO outbox');
      await expect.poll(() => logger.count('outbox relay active'), { timeout: 10_000 }).toBe(leads + 1);
    }

    it('when the database comes back without events the relay shipped (a failover lost them), then it says so once, tells its owner, and moves the order ids past every one shipped', async () => {
      const { db, broker, got, logger, metrics } = await setUp();
      let rewinds = 0;
      const running = relay({ db, broker, logger, metrics, onRewind: () => void (rewinds += 1) });
      const shipped = [makeEvent({ orderId: 40, sequence: 1 }), makeEvent({ orderId: 41, sequence: 1 }), makeEvent({ orderId: 7, sequence: 2 })];
      await writeOutboxEvents(db, shipped);
      running.wake();
      await expect.poll(() => got.length, { timeout: 10_000 }).toBe(3);
      await expect.poll(async () => (await readCheckpoint(db)).position, { timeout: 5_000 }).toBeGreaterThan(0);
      const saved = await readCheckpoint(db);

      // What a standby promoted without the last transactions holds: neither the events nor the checkpoint past them.
      await db.query('DELETE FROM outbox');
      await db.query(`UPDATE outbox_checkpoint SET xid = '0', position = 0`);
      await loseAndRetakeSession(db, running, metrics, logger);

      expect(rewinds).toBe(1);
      expect(logger.lines.filter((l) => l.level === 'error')).toEqual([
        {
          level: 'error',
          obj: { checkpoint: '0:0', committed_checkpoint: `${saved.xid}:${saved.position}`, highest_order_id_shipped: 41 },
          msg: 'event log rewound: the database lost committed events this relay had shipped (a failover to a standby that lacked them)',
        },
      ]);
      const [next] = await db.query<{ id: string }>(`SELECT nextval(pg_get_serial_sequence('orders', 'id'))::text AS id`);
      expect(next!.id).toBe('42');

      // The log as it is now is the one to follow: taking the lead again later finds nothing more lost.
      await loseAndRetakeSession(db, running, metrics, logger);
      expect(rewinds).toBe(1);
      expect(logger.lines.filter((l) => l.level === 'error')).toHaveLength(1);
    });

    it('when moving the order ids fails just after a rewind, then it is tried again at the next take-over, and the rewind is told once', async () => {
      const { db, broker, got, logger, metrics } = await setUp();
      let rewinds = 0;
      const running = relay({ db, broker, logger, metrics, onRewind: () => void (rewinds += 1) });
      await writeOutboxEvents(db, [makeEvent({ orderId: 90, sequence: 1 })]);
      running.wake();
      await expect.poll(() => got.length, { timeout: 10_000 }).toBe(1);
      await expect.poll(async () => (await readCheckpoint(db)).position, { timeout: 5_000 }).toBeGreaterThan(0);

      await db.query('DELETE FROM outbox');
      await db.query(`UPDATE outbox_checkpoint SET xid = '0', position = 0`);
      // The sequence cannot be found for a moment, as on a database still settling after its promotion.
      await db.query('ALTER TABLE orders RENAME TO orders_away');
      const failed = metrics.failures.length;
      const leads = logger.count('outbox relay active');
      await db.query('ALTER TABLE outbox RENAME TO outbox_away');
      running.wake();
      await expect.poll(() => metrics.failures.length, { timeout: 10_000 }).toBeGreaterThan(failed);
      await db.query('ALTER TABLE outbox_away RENAME TO outbox');
      await expect.poll(() => rewinds, { timeout: 10_000 }).toBe(1);
      const failedMoving = metrics.failures.length;
      await expect.poll(() => metrics.failures.length, { timeout: 10_000 }).toBeGreaterThan(failedMoving);
      expect(logger.count('outbox relay active')).toBe(leads);

      await db.query('ALTER TABLE orders_away RENAME TO orders');
      await expect.poll(() => logger.count('outbox relay active'), { timeout: 10_000 }).toBe(leads + 1);
      const [next] = await db.query<{ id: string }>(`SELECT nextval(pg_get_serial_sequence('orders', 'id'))::text AS id`);
      expect(next!.id).toBe('91');
      expect(rewinds).toBe(1);
      expect(logger.lines.filter((l) => l.level === 'error')).toHaveLength(1);
    });

    it('when the order ids are already past those shipped, then a rewind leaves them where they are', async () => {
      const { db, broker, got, logger, metrics } = await setUp();
      const running = relay({ db, broker, logger, metrics });
      await writeOutboxEvents(db, [makeEvent({ orderId: 3, sequence: 1 })]);
      running.wake();
      await expect.poll(() => got.length, { timeout: 10_000 }).toBe(1);
      await expect.poll(async () => (await readCheckpoint(db)).position, { timeout: 5_000 }).toBeGreaterThan(0);
      await db.query(`SELECT setval(pg_get_serial_sequence('orders', 'id'), 90)`);

      await db.query('DELETE FROM outbox');
      await db.query(`UPDATE outbox_checkpoint SET xid = '0', position = 0`);
      await loseAndRetakeSession(db, running, metrics, logger);

      expect(logger.lines.filter((l) => l.level === 'error')).toHaveLength(1);
      const [next] = await db.query<{ id: string }>(`SELECT nextval(pg_get_serial_sequence('orders', 'id'))::text AS id`);
      expect(next!.id).toBe('91');
    });
  });
}

import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/client.js';
import { migrate } from '../../src/db/migrate.js';
import type { OrderEvent } from '../../src/events/envelope.js';
import type { Broker } from '../../src/messaging/broker.js';
import { createInProcessBroker } from '../../src/messaging/in-process.js';
import { createRabbitMqBroker } from '../../src/messaging/rabbitmq.js';
import { startOutboxRelay, type OutboxRelay } from '../../src/outbox/relay.js';
import { backlog, readCheckpoint } from '../../src/outbox/store.js';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../helpers/databases.js';
import { makeEvent } from '../helpers/events.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

const rabbitmqUrl = inject('rabbitmqUrl');

/** Records what the relay logs, so a test can count warnings. */
function recordingLogger() {
  const lines: { level: 'info' | 'warn'; msg: string }[] = [];
  return {
    lines,
    warnings: () => lines.filter((l) => l.level === 'warn'),
    info: (_obj: object, msg: string) => void lines.push({ level: 'info', msg }),
    warn: (_obj: object, msg: string) => void lines.push({ level: 'warn', msg }),
  };
}

/** A durable consumer that acks everything, as the change-log writer does, keeping what it got in order. */
async function tap(broker: Broker): Promise<OrderEvent[]> {
  const got: OrderEvent[] = [];
  await broker.consume({ durable: true, queue: `relay-test-${randomUUID()}`, prefetch: 1000 }, (d) => {
    got.push(d.event);
    d.ack();
  });
  return got;
}

for (const { kind, skip } of databaseKinds()) {
  describe.skipIf(skip)(`the outbox relay on ${kind}`, () => {
    const cleanups: (() => Promise<unknown>)[] = [];
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
    });

    async function database(): Promise<{ db: Database; test: TestDatabase }> {
      const test = await createTestDatabase(kind);
      cleanups.push(() => test.drop());
      const db = await openDatabase({ url: test.url });
      cleanups.push(() => db.close());
      await migrate(db);
      return { db, test };
    }

    async function write(db: Database, events: OrderEvent[]): Promise<void> {
      for (const e of events) {
        await db.query('INSERT INTO outbox (event_id, order_id, sequence, type, payload) VALUES ($1, $2, $3, $4, $5)', [
          e.id, e.order_id, e.sequence, e.type, JSON.stringify(e),
        ]);
      }
    }

    function relay(db: Database, broker: Broker, options: { sweepMs?: number; logger?: ReturnType<typeof recordingLogger> } = {}): OutboxRelay {
      const started = startOutboxRelay({ db, broker, logger: options.logger ?? recordingLogger(), sweepMs: options.sweepMs ?? 200, batchSize: 7 });
      cleanups.push(() => started.stop());
      return started;
    }

    const orderEvents = (orders: number) =>
      Array.from({ length: orders }, (_, i) => [1, 2, 3].map((sequence) => makeEvent({ orderId: i + 1, sequence }))).flat();

    it('when events wait in the outbox, then it ships each once, in log order, and the checkpoint ends past the last', async () => {
      const { db } = await database();
      const broker = createInProcessBroker();
      cleanups.push(() => broker.close());
      const got = await tap(broker);
      const events = orderEvents(10);
      await write(db, events);
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
      cleanups.push(() => broker.close());
      const held: (() => void)[] = [];
      await broker.consume({ durable: true, queue: 'slow', prefetch: 1000 }, (d) => void held.push(() => d.ack()));
      await write(db, orderEvents(3));
      const running = relay(db, broker);
      await expect.poll(() => held.length).toBeGreaterThan(0);
      const stopping = running.stop();
      const release = setInterval(() => held.splice(0).forEach((ack) => ack()), 5);
      await stopping;
      clearInterval(release);
      expect((await readCheckpoint(db)).position).toBeGreaterThan(0);
    });

    describe.skipIf(!rabbitmqUrl)('with RabbitMQ through a proxy', () => {
      async function proxiedBroker(): Promise<{ broker: Broker; proxy: TcpProxy }> {
        const target = new URL(rabbitmqUrl);
        const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5672) });
        cleanups.push(() => proxy.close());
        target.port = String(proxy.port);
        const exchange = `relay-test-${randomUUID()}`;
        const broker = createRabbitMqBroker({ url: target.toString(), exchange, reconnectMinMs: 50, reconnectMaxMs: 400 });
        cleanups.push(async () => {
          await broker.close();
          const { default: amqp } = await import('amqplib');
          const admin = await amqp.connect(rabbitmqUrl);
          const channel = await admin.createChannel();
          await channel.deleteExchange(exchange);
          await admin.close();
        });
        return { broker, proxy };
      }

      it('when the broker is down, then the relay waits quietly (few queries, under 5% CPU, one warning) and ships at once when it returns', async () => {
        const { db } = await database();
        const queries = { n: 0 };
        const counted: Database = { ...db, query: (...args) => (queries.n++, db.query(...args)) };
        const { broker, proxy } = await proxiedBroker();
        const got = await tap(broker);
        await expect.poll(() => broker.state(), { timeout: 10_000 }).toBe('up');
        proxy.cut();
        await expect.poll(() => broker.state(), { timeout: 10_000 }).not.toBe('up');
        const logger = recordingLogger();
        const events = orderEvents(4);
        await write(db, events);
        const running = relay(counted, broker, { logger, sweepMs: 100 });

        const before = { cpu: process.cpuUsage(), at: performance.now(), queries: queries.n };
        for (let i = 0; i < 20; i++) {
          running.wake();
          await sleep(150);
        }
        const cpu = process.cpuUsage(before.cpu);
        const elapsedMs = performance.now() - before.at;
        const share = (cpu.user + cpu.system) / 1000 / elapsedMs;
        expect(share).toBeLessThan(0.05);
        // Bounded by the back-off (and, on PostgreSQL, the standby's lock checks), not by wakes or sweeps.
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
        cleanups.push(() => other.close());
        const broker = createInProcessBroker();
        cleanups.push(() => broker.close());
        const got = await tap(broker);
        const first = relay(db, broker, { sweepMs: 60_000 });
        await expect.poll(() => first.isActive()).toBe(true);
        const second = relay(other, broker, { sweepMs: 60_000 });
        await sleep(200);
        expect(second.isActive()).toBe(false);

        const [event] = orderEvents(1);
        const writtenAt = performance.now();
        await write(other, [event!]);
        second.wake();
        await expect.poll(() => got.length, { timeout: 5_000, interval: 5 }).toBe(1);
        expect(performance.now() - writtenAt).toBeLessThan(1_000);
      });

      it('when the active relay stops, then the standby takes over within a sweep and ships the rest, nothing lost', async () => {
        const { db, test } = await database();
        const other = await openDatabase({ url: test.url });
        cleanups.push(() => other.close());
        const broker = createInProcessBroker();
        cleanups.push(() => broker.close());
        const got = await tap(broker);
        const events = orderEvents(6);
        await write(db, events.slice(0, 9));
        const first = relay(db, broker, { sweepMs: 100 });
        await expect.poll(() => got.length).toBe(9);
        const second = relay(other, broker, { sweepMs: 100 });
        await sleep(300);
        expect(second.isActive()).toBe(false);

        await first.stop();
        await expect.poll(() => second.isActive(), { timeout: 5_000 }).toBe(true);
        await write(other, events.slice(9));
        second.wake();
        await expect.poll(() => got.length).toBe(events.length);
        expect(got.map((e) => e.id)).toEqual(events.map((e) => e.id));
      });
    });
  });
}

import { randomUUID } from 'node:crypto';
import { afterEach, expect, inject } from 'vitest';
import { openDatabase, type Database, type Queryable } from '../../src/db/client.js';
import { migrate } from '../../src/db/migrate.js';
import type { OrderEvent } from '../../src/events/envelope.js';
import type { Broker } from '../../src/messaging/broker.js';
import { createRabbitMqBroker } from '../../src/messaging/rabbitmq.js';
import { LOG_START, readAfter } from '../../src/outbox/store.js';
import { createTestDatabase, type DatabaseKind, type TestDatabase } from './databases.js';
import { embeddedImage } from './embedded-image.js';
import { makeEvent } from './events.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

/** Registers something to undo once the current test ends. */
export type Cleanup = (undo: () => Promise<unknown>) => void;

/** Cleanups registered during each test of the calling suite, run after it newest first, a failing one not stopping the rest. */
export function useCleanups(): Cleanup {
  const undos: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const undo of undos.splice(0).reverse()) await undo().catch(() => undefined);
  });
  return (undo) => void undos.push(undo);
}

/** A fresh database of `kind`, opened and migrated, closed and dropped after the test. */
export async function migratedDatabase(kind: DatabaseKind, cleanup: Cleanup): Promise<{ db: Database; test: TestDatabase }> {
  const test = await createTestDatabase(kind);
  cleanup(() => test.drop());
  const db = await openDatabase(test.url ? { url: test.url } : { image: embeddedImage() });
  cleanup(() => db.close());
  await migrate(db);
  return { db, test };
}

/** Inserts the events into the outbox, one statement each, as the order service's transactions do. */
export async function writeOutboxEvents(db: Queryable, events: OrderEvent[]): Promise<void> {
  for (const e of events) {
    await db.query('INSERT INTO outbox (event_id, order_id, sequence, type, payload) VALUES ($1, $2, $3, $4, $5)', [
      e.id, e.order_id, e.sequence, e.type, JSON.stringify(e),
    ]);
  }
}

/** Waits until the log reads `count` events: a transaction open anywhere on the server holds them back. */
export async function waitUntilReadable(db: Queryable, count: number): Promise<void> {
  await expect.poll(async () => (await readAfter(db, LOG_START, count + 1)).length, { timeout: 10_000, interval: 20 }).toBe(count);
}

/** Three events (created, then two status changes) for each of `orders` orders, in log order. */
export const orderEvents = (orders: number): OrderEvent[] =>
  Array.from({ length: orders }, (_, i) => [1, 2, 3].map((sequence) => makeEvent({ orderId: i + 1, sequence }))).flat();

/** A durable consumer that acks everything, as the change-log writer does, keeping what it got in order. */
export async function tap(broker: Broker, queuePrefix: string): Promise<OrderEvent[]> {
  const got: OrderEvent[] = [];
  await broker.consume({ durable: true, queue: `${queuePrefix}-${randomUUID()}`, prefetch: 1000 }, (d) => {
    got.push(d.event);
    d.ack();
  });
  return got;
}

/** Records what the relay logs, fields included. */
export function recordingLogger() {
  const lines: { level: 'info' | 'warn' | 'error'; obj: { err?: Error }; msg: string }[] = [];
  return {
    lines,
    warnings: () => lines.filter((l) => l.level === 'warn'),
    count: (msg: string) => lines.filter((l) => l.msg === msg).length,
    info: (obj: object, msg: string) => void lines.push({ level: 'info', obj, msg }),
    warn: (obj: object, msg: string) => void lines.push({ level: 'warn', obj, msg }),
    error: (obj: object, msg: string) => void lines.push({ level: 'error', obj, msg }),
  };
}

/** RabbitMQ reached through a proxy a test can cut; the broker is closed and its exchange deleted after the test. */
export async function proxiedRabbitMq(
  cleanup: Cleanup,
  { exchangePrefix, reconnectMaxMs }: { exchangePrefix: string; reconnectMaxMs: number },
): Promise<{ broker: Broker; proxy: TcpProxy }> {
  const rabbitmqUrl = inject('rabbitmqUrl');
  const target = new URL(rabbitmqUrl);
  const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5672) });
  cleanup(() => proxy.close());
  target.port = String(proxy.port);
  const exchange = `${exchangePrefix}-${randomUUID()}`;
  const broker = createRabbitMqBroker({ url: target.toString(), exchange, reconnectMinMs: 50, reconnectMaxMs });
  cleanup(async () => {
    await broker.close();
    const { default: amqp } = await import('amqplib');
    const admin = await amqp.connect(rabbitmqUrl);
    await (await admin.createChannel()).deleteExchange(exchange);
    await admin.close();
  });
  return { broker, proxy };
}

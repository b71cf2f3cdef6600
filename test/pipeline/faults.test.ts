import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import amqp from 'amqplib';
import { describe, expect, inject, it } from 'vitest';
import { openDatabase, type Queryable } from '../../src/db/client.js';
import { migrate } from '../../src/db/migrate.js';
import type { OrderEvent } from '../../src/events/envelope.js';
import { seedDemoCatalog } from '../../src/products/repository.js';
import { createTestDatabase } from '../helpers/databases.js';
import { orderInput } from '../helpers/factories.js';
import { spawnService, type ServiceProcess } from '../helpers/process.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { openEventClient, sequencesByOrder, type EventClient } from '../helpers/ws-client.js';

const postgresUrl = inject('postgresUrl');
const rabbitmqUrl = inject('rabbitmqUrl');
const unreachable = [!postgresUrl && 'PostgreSQL', !rabbitmqUrl && 'RabbitMQ'].filter(Boolean);
const skipNote = unreachable.length > 0 ? ` (skipped: ${unreachable.join(' and ')} not reachable)` : '';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const json = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

async function count(db: Queryable, sql: string, params: unknown[] = []): Promise<number> {
  const [row] = await db.query<{ n: number }>(sql, params);
  return row!.n;
}

/** Orders that do not have exactly one order.created row in the change log. */
async function ordersWithoutOneCreatedEvent(db: Queryable): Promise<{ id: number; n: number }[]> {
  return db.query(`
    SELECT o.id, count(c.event_id)::int AS n FROM orders o
    LEFT JOIN order_changes c ON c.order_id = o.id AND c.type = 'order.created'
    GROUP BY o.id HAVING count(c.event_id) <> 1 ORDER BY o.id`);
}

/** Each order's events in arrival order must be strictly increasing: nothing twice, nothing backwards. */
function outOfOrder(events: readonly OrderEvent[]): [number, number[]][] {
  return [...sequencesByOrder(events)].filter(([, seqs]) => seqs.some((s, i) => i > 0 && s <= seqs[i - 1]!));
}

function uniqueTopology(label: string) {
  const suffix = `${label}.${randomUUID().slice(0, 8)}`;
  return { exchange: `orders.test.${suffix}`, queue: `orders.changelog.test.${suffix}` };
}

// Other tests share the broker, so what a test declares it also removes.
async function deleteTopology(url: string, topology: { exchange: string; queue: string }): Promise<void> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    await channel.deleteQueue(topology.queue);
    await channel.deleteExchange(topology.exchange);
    await channel.close();
  } finally {
    await connection.close();
  }
}

/** A private queue bound to the exchange that counts deliveries per message id: what was published, and how often. */
async function openTap(url: string, exchange: string) {
  const connection = await amqp.connect(url);
  const channel = await connection.createChannel();
  await channel.assertExchange(exchange, 'topic', { durable: true });
  const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
  await channel.bindQueue(queue, exchange, 'order.*');
  const published = new Map<string, number>();
  await channel.consume(queue, (message) => {
    if (message) published.set(message.properties.messageId as string, (published.get(message.properties.messageId as string) ?? 0) + 1);
  }, { noAck: true });
  return { published, close: () => connection.close() };
}

describe.skipIf(unreachable.length > 0)(`the pipeline under faults on PostgreSQL and RabbitMQ${skipNote}`, () => {
  it('when the broker is cut off for seconds under a steady stream of orders, then the API keeps accepting and every event reaches the change log once after it returns', { timeout: 180_000 }, async () => {
    const ORDERS = 300;
    const PACE_MS = 20;
    const CUT_FOR_MS = 4_500;
    const target = new URL(rabbitmqUrl);
    const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5672) });
    const viaProxy = new URL(rabbitmqUrl);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const topology = uniqueTopology('outage');
    let service: TestService | undefined;
    let observer: EventClient | undefined;
    let sampling = true;
    let sampler: Promise<void> | undefined;
    try {
      service = await startTestService({
        database: 'postgres',
        rabbitmqUrl: viaProxy.toString(),
        env: { RABBITMQ_EXCHANGE: topology.exchange, RABBITMQ_CHANGELOG_QUEUE: topology.queue },
      });
      const { db, broker } = service;
      await service.app.listen({ host: '127.0.0.1', port: 0 });
      const base = `127.0.0.1:${(service.app.server.address() as AddressInfo).port}`;
      await expect.poll(() => broker.state(), { timeout: 30_000 }).toBe('up');
      observer = await openEventClient(`ws://${base}/ws/notifications`);

      const samples: { startedAt: number; endedAt: number; status: number; broker: string }[] = [];
      sampler = (async () => {
        for (let i = 0; sampling && i < 3_000; i++) {
          const startedAt = performance.now();
          try {
            const response = await fetch(`http://${base}/readyz`);
            const body = (await response.json()) as { checks: { broker: string } };
            samples.push({ startedAt, endedAt: performance.now(), status: response.status, broker: body.checks.broker });
          } catch (error) {
            samples.push({ startedAt, endedAt: performance.now(), status: -1, broker: String(error) });
          }
          await sleep(100);
        }
      })();

      const statuses: number[] = [];
      const acknowledged: { id: number }[] = [];
      const post = async () => {
        const response = await fetch(`http://${base}/orders/`, json(orderInput()));
        statuses.push(response.status);
        if (response.status === 201) acknowledged.push((await response.json()) as { id: number });
      };
      const patch = async (id: number, status: string) => {
        const response = await fetch(`http://${base}/orders/${id}`, { ...json({ status }), method: 'PATCH' });
        expect(response.status, `PATCH ${id} → ${status}`).toBe(200);
      };

      // Cut ~1 s in (once some orders exist to change), move orders through their statuses while cut, restore.
      const startedAt = performance.now();
      let cutAt = 0;
      let restoredAt = 0;
      const paths = [['Confirmed', 'Shipped', 'Delivered'], ['Confirmed', 'Cancelled'], ['Confirmed', 'Shipped'], ['Cancelled']];
      const changed = new Map<number, string[]>();
      const faults = (async () => {
        await sleep(1_000);
        await expect.poll(() => acknowledged.length, { timeout: 30_000 }).toBeGreaterThanOrEqual(20);
        proxy.cut();
        cutAt = performance.now();
        await sleep(200);
        await Promise.all(acknowledged.slice(0, 20).map(async ({ id }, k) => {
          const path = paths[k % paths.length]!;
          changed.set(id, path);
          for (const status of path) await patch(id, status);
        }));
        await sleep(cutAt + CUT_FOR_MS - performance.now());
        proxy.restore();
        restoredAt = performance.now();
      })();

      const posts: Promise<void>[] = [];
      for (let i = 0; i < ORDERS; i++) {
        await sleep(startedAt + i * PACE_MS - performance.now());
        posts.push(post());
      }
      await Promise.all(posts);
      await faults;
      const statusChanges = [...changed.values()].reduce((n, path) => n + path.length, 0);
      const expectedEvents = ORDERS + statusChanges;

      // The API kept accepting while the broker was away.
      expect(statuses.filter((s) => s !== 201)).toEqual([]);
      expect(acknowledged).toHaveLength(ORDERS);
      expect(changed.size).toBe(20);

      // Drained: everything shipped and in the change log.
      await expect
        .poll(async () => [
          await count(db, 'SELECT count(*)::int AS n FROM outbox o, outbox_checkpoint c WHERE (o.xid, o.position) > (c.xid, c.position)'),
          await count(db, 'SELECT count(*)::int AS n FROM order_changes'),
        ], { timeout: 90_000, interval: 50 })
        .toEqual([0, expectedEvents]);
      const drainMs = performance.now() - restoredAt;
      await expect.poll(() => broker.state(), { timeout: 30_000 }).toBe('up');
      // A /readyz answer already on its way may have been read before: wait for one asked after.
      const upAt = performance.now();
      await expect.poll(() => samples.some((s) => s.startedAt >= upAt), { timeout: 10_000 }).toBe(true);
      sampling = false;
      await sampler;

      // /readyz answered 200 throughout, and said the broker was not up while it was cut off.
      expect(samples.filter((s) => s.status !== 200)).toEqual([]);
      const duringCut = samples.filter((s) => s.startedAt >= cutAt + 1_000 && s.endedAt <= restoredAt);
      expect(duringCut.length).toBeGreaterThan(0);
      expect(duringCut.filter((s) => s.broker === 'up')).toEqual([]);
      expect(samples.filter((s) => s.startedAt >= upAt).map((s) => s.broker)).toEqual(samples.filter((s) => s.startedAt >= upAt).map(() => 'up'));

      // Each order's order.created is in the change log once; the outbox has nothing left to send.
      expect(await ordersWithoutOneCreatedEvent(db)).toEqual([]);
      expect(await count(db, "SELECT count(*)::int AS n FROM order_changes WHERE type = 'order.created'")).toBe(ORDERS);
      expect(await count(db, 'SELECT count(*)::int AS n FROM outbox o, outbox_checkpoint c WHERE (o.xid, o.position) > (c.xid, c.position)')).toBe(0);

      // Status changes made during the outage arrive gapless and in order in the history.
      for (const [id, path] of changed) {
        const history = (await (await fetch(`http://${base}/orders/${id}/history`)).json()) as OrderEvent[];
        expect(history.map((e) => e.sequence), `history of order ${id}`).toEqual(Array.from({ length: path.length + 1 }, (_, i) => i + 1));
        expect(history.slice(1).map((e) => e.change?.to)).toEqual(path);
      }

      // The WebSocket client saw nothing twice and each order's events in sequence order.
      const received = observer.events;
      expect(received.length - new Set(received.map((e) => e.id)).size).toBe(0);
      expect(outOfOrder(received)).toEqual([]);

      const cutSamples = samples.filter((s) => s.startedAt >= cutAt && s.endedAt <= restoredAt);
      process.stdout.write(
        `broker outage: ${ORDERS} orders sent at one per ${PACE_MS} ms, ${statuses.filter((s) => s === 201).length} answered 201; ` +
          `broker cut at t=${seconds(cutAt - startedAt)} for ${seconds(restoredAt - cutAt)}; ${statusChanges} status changes made during the cut\n` +
          `broker outage: change log has ${expectedEvents} events (${ORDERS} order.created, each once); ` +
          `writer dropped ${service.changeLogWriter!.stats.duplicates} duplicate(s) of ${service.changeLogWriter!.stats.written + service.changeLogWriter!.stats.duplicates} deliveries; ` +
          `drained ${seconds(drainMs)} after restore\n` +
          `broker outage: WebSocket client got ${received.length} of ${expectedEvents} events, none twice, in order per order ` +
          `(the notifier's private queue goes with the connection, so events in it at the cut are not re-sent live); ` +
          `hub dropped ${service.hub!.stats().duplicatesDropped} duplicate(s), ${service.hub!.stats().staleDropped} stale\n` +
          `broker outage: /readyz ${samples.length} samples, all 200; during the cut broker was ${[...new Set(cutSamples.map((s) => s.broker))].join('/')}\n`,
      );
    } finally {
      sampling = false;
      await sampler;
      observer?.close();
      await service?.close();
      await proxy.close();
      await deleteTopology(rabbitmqUrl, topology);
    }
  });

  it('when the service is killed with SIGKILL while orders stream in, then after a restart every acknowledged order is there and its event reaches the change log once', { timeout: 300_000 }, async () => {
    const WORKERS = 8;
    const KILL_AFTER = 150;
    const database = await createTestDatabase('postgres');
    const db = await openDatabase({ url: database.url, poolSize: 3 });
    const topology = uniqueTopology('kill');
    const tap = await openTap(rabbitmqUrl, topology.exchange);
    let first: ServiceProcess | undefined;
    let second: ServiceProcess | undefined;
    try {
      await migrate(db);
      await seedDemoCatalog(db.drizzle);
      const env = {
        ROLE: 'all',
        DATABASE_URL: database.url!,
        RABBITMQ_URL: rabbitmqUrl,
        RABBITMQ_EXCHANGE: topology.exchange,
        RABBITMQ_CHANGELOG_QUEUE: topology.queue,
        OUTBOX_SWEEP_MS: '200',
      };
      const running = await spawnService(env, [], { startTimeoutMs: 120_000 });
      first = running;

      // Several requests in flight at all times; the kill comes while they are.
      const acknowledged = new Set<string>();
      const cutOff = new Set<string>();
      const refusals: number[] = [];
      let killing = false;
      let sent = 0;
      const worker = async () => {
        for (let i = 0; i < 1_000 && !killing; i++) {
          const email = `killed-${++sent}@example.com`;
          try {
            const response = await fetch(`${running.url}/orders/`, json(orderInput({ client_email: email })));
            // 201 means committed; the body may still be cut off by the kill.
            if (response.status === 201) acknowledged.add(email);
            else refusals.push(response.status);
            await response.arrayBuffer().catch(() => undefined);
          } catch {
            if (!acknowledged.has(email)) cutOff.add(email);
            return;
          }
        }
      };
      const workers = Array.from({ length: WORKERS }, worker);
      await expect.poll(() => acknowledged.size, { timeout: 120_000, interval: 5 }).toBeGreaterThanOrEqual(KILL_AFTER);
      killing = true;
      expect(await running.kill('SIGKILL')).toBe('SIGKILL');
      await Promise.all(workers);
      expect(refusals).toEqual([]);

      const atKill = {
        orders: await count(db, 'SELECT count(*)::int AS n FROM orders'),
        unsent: await count(db, 'SELECT count(*)::int AS n FROM outbox o, outbox_checkpoint c WHERE (o.xid, o.position) > (c.xid, c.position)'),
        logged: await count(db, 'SELECT count(*)::int AS n FROM order_changes'),
      };

      const restartedAt = performance.now();
      second = await spawnService(env, [], { startTimeoutMs: 120_000 });
      // The restarted relay ships from the checkpoint: whatever the dead one had not confirmed goes out again.
      await expect
        .poll(async () => [
          await count(db, 'SELECT count(*)::int AS n FROM outbox o, outbox_checkpoint c WHERE (o.xid, o.position) > (c.xid, c.position)'),
          await count(db, "SELECT count(*)::int AS n FROM order_changes WHERE type = 'order.created'"),
        ], { timeout: 120_000, interval: 100 })
        .toEqual([0, atKill.orders]);
      const drainMs = performance.now() - restartedAt;

      // Every acknowledged order is there, readable through the restarted service.
      const orders = await db.query<{ id: number; client_email: string }>('SELECT id, client_email FROM orders');
      const byEmail = new Map(orders.map((o) => [o.client_email, o.id]));
      const missing = [...acknowledged].filter((email) => !byEmail.has(email));
      expect(missing).toEqual([]);
      for (const email of acknowledged) {
        const response = await fetch(`${second.url}/orders/${byEmail.get(email)}`);
        expect(response.status).toBe(200);
        expect(((await response.json()) as { client_email: string }).client_email).toBe(email);
      }
      // Every order in the database, acknowledged or cut off after its commit, has its order.created logged once.
      expect(await ordersWithoutOneCreatedEvent(db)).toEqual([]);
      expect(await count(db, 'SELECT count(*)::int AS n FROM outbox o, outbox_checkpoint c WHERE (o.xid, o.position) > (c.xid, c.position)')).toBe(0);
      expect(orders.length).toBe(acknowledged.size + [...cutOff].filter((e) => byEmail.has(e)).length);

      // Every event reached the broker; those published again after the kill show up more than once at the tap.
      const eventIds = (await db.query<{ event_id: string }>('SELECT event_id::text FROM outbox')).map((r) => r.event_id);
      await expect.poll(() => eventIds.filter((id) => !tap.published.has(id)).length, { timeout: 30_000 }).toBe(0);
      const reshipped = [...tap.published.values()].reduce((n, times) => n + times - 1, 0);

      expect(await second.stop()).toBe(0);
      process.stdout.write(
        `relay SIGKILL: ${sent} requests sent by ${WORKERS} workers, ${acknowledged.size} orders acknowledged (201), ` +
          `${cutOff.size} requests cut off by the kill (${[...cutOff].filter((e) => byEmail.has(e)).length} of them committed anyway)\n` +
          `relay SIGKILL: at the kill ${atKill.unsent} of ${atKill.orders} events unsent, ` +
          `${atKill.logged} in the change log\n` +
          `relay SIGKILL: after restart ${orders.length} orders, each with one order.created in the change log; ` +
          `${reshipped} event(s) re-shipped (published more than once, seen at a tap queue); missing: ${missing.length}; ` +
          `drained ${seconds(drainMs)} after the restart began\n`,
      );
    } finally {
      if (first && first.child.exitCode === null && first.child.signalCode === null) await first.kill('SIGKILL');
      await second?.stop();
      await tap.close();
      await db.close();
      await database.drop();
      await deleteTopology(rabbitmqUrl, topology);
    }
  });
});

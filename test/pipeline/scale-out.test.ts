import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/client.js';
import { migrate } from '../../src/db/migrate.js';
import { seedDemoCatalog } from '../../src/products/repository.js';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { orderInput } from '../helpers/factories.js';
import { spawnService, type ServiceProcess } from '../helpers/process.js';
import { openEventClient, sequencesByOrder, type EventClient } from '../helpers/ws-client.js';

const postgresUrl = inject('postgresUrl');
const rabbitmqUrl = inject('rabbitmqUrl');
const unreachable = [!postgresUrl && 'PostgreSQL', !rabbitmqUrl && 'RabbitMQ'].filter(Boolean);
const skipNote = unreachable.length > 0 ? ` (skipped: ${unreachable.join(' and ')} not reachable)` : '';

const START_TIMEOUT_MS = 120_000;
const ORDERS_PER_API = 100;
const CLIENTS_PER_NOTIFIER = 3;
const IN_FLIGHT_PER_API = 8;

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const send = (method: string, body: unknown): RequestInit => ({ method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/** Waits (outside a test, where expect.poll is not allowed) until the process reports RabbitMQ up. */
async function brokerUp(base: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    last = ((await (await fetch(`${base}/readyz`)).json()) as { checks: { broker: string } }).checks.broker;
    if (last === 'up') return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${base}: broker still ${last} after ${timeoutMs} ms`);
}

interface Role {
  name: string;
  /** The role as the first CLI argument, or in ROLE, so that both ways are used. */
  args: string[];
  env: Record<string, string>;
}

describe.skipIf(unreachable.length > 0)(`the service scaled out to separate processes on PostgreSQL and RabbitMQ${skipNote}`, () => {
  const suffix = `scale.${randomUUID().slice(0, 8)}`;
  const topology = { exchange: `orders.test.${suffix}`, queue: `orders.changelog.test.${suffix}` };
  const processes = new Map<string, ServiceProcess>();
  const clients: EventClient[] = [];
  let database: TestDatabase;
  let db: Database;
  let startMs = 0;

  const roles: Role[] = [
    { name: 'api-1', args: ['api'], env: {} },
    { name: 'api-2', args: ['api'], env: {} },
    { name: 'notifier-1', args: ['notifier'], env: {} },
    { name: 'notifier-2', args: [], env: { ROLE: 'notifier' } },
    { name: 'changelog', args: [], env: { ROLE: 'changelog' } },
  ];
  const url = (name: string) => processes.get(name)!.url;

  beforeAll(async () => {
    database = await createTestDatabase('postgres');
    db = await openDatabase({ url: database.url, poolSize: 3 });
    // Schema and demo catalog first, as an operator would before starting the instances.
    await migrate(db);
    await seedDemoCatalog(db.drizzle);
    const env = {
      DATABASE_URL: database.url!,
      RABBITMQ_URL: rabbitmqUrl,
      RABBITMQ_EXCHANGE: topology.exchange,
      RABBITMQ_CHANGELOG_QUEUE: topology.queue,
      DATABASE_POOL_SIZE: '5',
      OUTBOX_SWEEP_MS: '200',
    };
    const started = performance.now();
    // Two at a time: five tsx start-ups at once would crowd a small machine.
    for (let i = 0; i < roles.length; i += 2) {
      await Promise.all(roles.slice(i, i + 2).map(async (role) => {
        processes.set(role.name, await spawnService({ ...env, ...role.env }, role.args, { startTimeoutMs: START_TIMEOUT_MS }));
      }));
    }
    // Listening does not mean connected: a notifier's queue is bound once /readyz reports the broker up.
    for (const name of processes.keys()) await brokerUp(url(name), 60_000);
    startMs = performance.now() - started;
    for (const notifier of ['notifier-1', 'notifier-2']) {
      for (let i = 0; i < CLIENTS_PER_NOTIFIER; i++) clients.push(await openEventClient(`${url(notifier).replace(/^http/, 'ws')}/ws/notifications`));
    }
  }, 600_000);

  afterAll(async () => {
    clients.forEach((c) => c.close());
    await Promise.allSettled([...processes.values()].map((p) => p.stop(15_000)));
    await db?.close();
    await database?.drop();
    if (rabbitmqUrl) {
      const connection = await amqp.connect(rabbitmqUrl);
      const channel = await connection.createChannel();
      await channel.deleteQueue(topology.queue);
      await channel.deleteExchange(topology.exchange);
      await connection.close();
    }
  }, 120_000);

  it('when each process runs one role, then only that role answers on it', async () => {
    expect((await fetch(`${url('notifier-1')}/orders/1`)).status).toBe(404);
    expect((await fetch(`${url('changelog')}/orders/1`)).status).toBe(404);
    expect((await fetch(`${url('api-1')}/ws/notifications`)).status).toBe(404);
    expect((await fetch(`${url('api-2')}/products/1`)).status).toBe(200);
  });

  it('when orders are created and changed through two APIs, then every client of both notifiers gets every event once, in order, and the change log has each once', { timeout: 300_000 }, async () => {
    const apis = ['api-1', 'api-2'];
    const expected = new Map<number, number>(); // order id → its last sequence
    const post = async (api: string) => {
      const response = await fetch(`${url(api)}/orders/`, send('POST', orderInput()));
      expect(response.status).toBe(201);
      return ((await response.json()) as { id: number }).id;
    };
    const patch = async (api: string, id: number, status: string) => {
      const response = await fetch(`${url(api)}/orders/${id}`, send('PATCH', { status }));
      expect(response.status, `PATCH ${id} → ${status} on ${api}`).toBe(200);
    };

    // Every second order is confirmed through the other API, every fourth then shipped through its own,
    // every eighth delivered through the other: one order's events are written, and shipped, by both processes.
    const createThrough = async (api: number) => {
      const own = apis[api]!;
      const other = apis[1 - api]!;
      const steps: [number, string, string][] = [[2, other, 'Confirmed'], [4, own, 'Shipped'], [8, other, 'Delivered']];
      let next = 0;
      const worker = async () => {
        while (next < ORDERS_PER_API) {
          const n = next++;
          const id = await post(own);
          let sequence = 1;
          for (const [every, through, status] of steps) {
            if (n % every !== 0) break;
            await patch(through, id, status);
            sequence++;
          }
          expected.set(id, sequence);
        }
      };
      await Promise.all(Array.from({ length: IN_FLIGHT_PER_API }, worker));
    };
    const began = performance.now();
    await Promise.all([createThrough(0), createThrough(1)]);
    const writtenMs = performance.now() - began;
    const total = [...expected.values()].reduce((a, b) => a + b, 0);
    expect(expected.size).toBe(2 * ORDERS_PER_API);

    for (const client of clients) await expect.poll(() => client.events.length, { timeout: 60_000 }).toBeGreaterThanOrEqual(total);
    const deliveredMs = performance.now() - began - writtenMs;
    await expect.poll(async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM order_changes'))[0]!.n, { timeout: 120_000 }).toBe(total);
    // Late duplicates would arrive after the counts are reached: give them a moment.
    await new Promise((r) => setTimeout(r, 500));

    const wanted = new Map([...expected].map(([id, last]) => [id, Array.from({ length: last }, (_, i) => i + 1)]));
    const logged = await db.query<{ event_id: string; order_id: number; sequence: number }>('SELECT event_id::text, order_id, sequence FROM order_changes');
    const loggedIds = new Set(logged.map((r) => r.event_id));
    expect(logged).toHaveLength(total);
    expect(loggedIds.size).toBe(total);
    expect(new Set(logged.map((r) => `${r.order_id}/${r.sequence}`)).size).toBe(total);
    expect(await db.query('SELECT count(*)::int AS n FROM outbox o, outbox_checkpoint c WHERE (o.xid, o.position) > (c.xid, c.position)')).toEqual([{ n: 0 }]);

    clients.forEach((client, i) => {
      expect(client.events, `client ${i}: event count`).toHaveLength(total);
      expect(new Set(client.events.map((e) => e.id)), `client ${i}: the change log's events`).toEqual(loggedIds);
      expect(sequencesByOrder(client.events), `client ${i}: sequences per order`).toEqual(wanted);
    });

    process.stdout.write(
      `scale-out: 2 api + 2 notifier + 1 changelog processes ready in ${seconds(startMs)}; ` +
        `${expected.size} orders (${ORDERS_PER_API} per API, ${IN_FLIGHT_PER_API} in flight each), ${total - expected.size} status changes, ${total} events, written in ${seconds(writtenMs)}\n` +
        `scale-out: ${clients.length} WebSocket clients (${CLIENTS_PER_NOTIFIER} per notifier) each got all ${total} events once, in order per order, ` +
        `${seconds(deliveredMs)} after the last write; change log has ${logged.length} rows, ${loggedIds.size} distinct events\n`,
    );
  });

  it('when the processes are told to stop, then each exits and none is left behind', { timeout: 120_000 }, async () => {
    const codes = await Promise.all([...processes].map(async ([name, p]) => [name, await p.stop(15_000)] as const));
    for (const [name, p] of processes) {
      expect(p.child.exitCode !== null || p.child.signalCode !== null, `${name} has exited`).toBe(true);
      expect(() => process.kill(p.child.pid!, 0), `${name} (pid ${p.child.pid}) is gone`).toThrow();
    }
    process.stdout.write(`scale-out: exit codes after SIGTERM: ${codes.map(([name, code]) => `${name}=${code}`).join(', ')}\n`);
    expect(Object.fromEntries(codes)).toEqual(Object.fromEntries(roles.map((r) => [r.name, 0])));
  });
});

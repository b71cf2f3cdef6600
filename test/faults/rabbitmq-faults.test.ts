import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import amqp from 'amqplib';
import pg from 'pg';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { databaseKinds } from '../helpers/databases.js';
import { orderInput } from '../helpers/factories.js';
import { startTestService } from '../helpers/service.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { percentile, sleep } from '../helpers/timing.js';

const rabbitmqUrl = inject('rabbitmqUrl');
const skipNote = rabbitmqUrl ? '' : ' (skipped: RabbitMQ not reachable)';

const CLIENTS = 4;
const FAULT_MS = 6_000;
/** "Quickly": an order waits in the outbox, so the broker's state must not show in the answer time. */
const QUICK_MS = 1_000;


/** Every message published to the exchange, counted by event id, seen on a private queue on the real broker. */
async function openTap(exchange: string) {
  const connection = await amqp.connect(rabbitmqUrl);
  const channel = await connection.createChannel();
  await channel.assertExchange(exchange, 'topic', { durable: true });
  const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
  await channel.bindQueue(queue, exchange, '#');
  const createdOrders = new Set<number>();
  let messages = 0;
  await channel.consume(queue, (message) => {
    if (!message) return;
    messages++;
    const event = JSON.parse(message.content.toString()) as { type: string; order_id: number };
    if (event.type === 'order.created') createdOrders.add(event.order_id);
  }, { noAck: true });
  return { createdOrders, messages: () => messages, close: () => connection.close() };
}

/** Transactions committed in one database so far, as PostgreSQL counts them (its stats lag by up to a second). */
async function commitCounter(url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return {
    read: async () => Number((await client.query<{ n: string }>('SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()')).rows[0]!.n),
    close: () => client.end(),
  };
}

const MODES = [
  { name: 'reset (connections killed, port refusing)', apply: (proxy: TcpProxy) => proxy.reset() },
  { name: 'blackholed (connections accepted, nothing forwarded)', apply: (proxy: TcpProxy) => proxy.blackhole() },
  { name: 'slowed by 1.5 s each way', apply: (proxy: TcpProxy) => proxy.latency(1_500) },
];
const cases = databaseKinds().flatMap(({ kind, skip }) => MODES.map((mode) => ({ kind, skip, ...mode })));

describe.skipIf(!rabbitmqUrl)(`RabbitMQ reset, partitioned or slow under a stream of orders${skipNote}`, () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
  });

  it.each(cases)('when RabbitMQ is $name on $kind, then the API keeps answering 201 quickly and every acknowledged order\'s event is shipped after it recovers', { timeout: 150_000 }, async ({ kind, skip, name, apply }) => {
    if (skip) return;
    const target = new URL(rabbitmqUrl);
    const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5672) });
    cleanup.push(() => proxy.close());
    const viaProxy = new URL(rabbitmqUrl);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const suffix = randomUUID().slice(0, 8);
    const exchange = `orders.test.faults.${suffix}`;
    const tap = await openTap(exchange);
    cleanup.push(() => tap.close());
    const service = await startTestService({
      database: kind,
      rabbitmqUrl: viaProxy.toString(),
      env: { RABBITMQ_EXCHANGE: exchange, RABBITMQ_CHANGELOG_QUEUE: `orders.changelog.test.faults.${suffix}` },
    });
    // Its topology is removed through the proxy, so the proxy must be passing by then.
    cleanup.push(async () => (await proxy.restore(), await service.close()));
    await service.app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(service.app.server.address() as AddressInfo).port}`;
    await expect.poll(() => service.broker.state(), { timeout: 30_000 }).toBe('up');

    const commits = service.database.url ? await commitCounter(service.database.url) : undefined;
    cleanup.push(async () => commits?.close());

    const posts: { startedAt: number; ms: number; status: number | string }[] = [];
    const acknowledged: number[] = [];
    let running = true;
    const client = async () => {
      for (let i = 0; running && i < 1_000; i++) {
        const startedAt = performance.now();
        try {
          const response = await fetch(`${base}/orders/`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(orderInput()),
            signal: AbortSignal.timeout(10_000),
          });
          posts.push({ startedAt, ms: performance.now() - startedAt, status: response.status });
          if (response.status === 201) acknowledged.push(((await response.json()) as { id: number }).id);
        } catch (error) {
          posts.push({ startedAt, ms: performance.now() - startedAt, status: (error as Error).name });
        }
        await sleep(40);
      }
    };
    const load = Promise.all(Array.from({ length: CLIENTS }, client));
    await sleep(1_000);
    await apply(proxy);
    const faultAt = performance.now();
    const commitsAtFault = await commits?.read();
    await sleep(FAULT_MS);
    const commitsAtRestore = await commits?.read();
    await proxy.restore();
    const restoredAt = performance.now();
    await sleep(1_000);
    running = false;
    await load;

    // While the broker was away or slow, orders kept being taken, quickly: they waited in the outbox.
    const during = posts.filter((p) => p.startedAt >= faultAt && p.startedAt < restoredAt);
    expect(during.length).toBeGreaterThan(20);
    expect(posts.filter((p) => p.status !== 201).map((p) => `${p.status} at +${Math.round(p.startedAt - faultAt)} ms`)).toEqual([]);
    expect(during.filter((p) => p.ms > QUICK_MS).map((p) => `${Math.round(p.ms)} ms at +${Math.round(p.startedAt - faultAt)} ms`)).toEqual([]);
    // Nor did the relay spin against the database, or write per event: beyond one commit per order, a few a second.
    const relayCommits = commits ? commitsAtRestore! - commitsAtFault! - during.length : 0;
    expect(relayCommits, 'commits beyond the orders during the fault').toBeLessThan((FAULT_MS / 1000) * 25);

    // After it came back, every acknowledged order's event reached the broker and the change log.
    await expect.poll(() => acknowledged.filter((id) => !tap.createdOrders.has(id)).length, { timeout: 60_000, interval: 100 }).toBe(0);
    const shippedAfter = performance.now() - restoredAt;
    await expect
      .poll(async () => {
        const missing: number[] = [];
        for (const id of acknowledged) {
          const history = (await (await fetch(`${base}/orders/${id}/history`)).json()) as { type: string }[];
          if (history.filter((e) => e.type === 'order.created').length !== 1) missing.push(id);
        }
        return missing;
      }, { timeout: 30_000, interval: 500 })
      .toEqual([]);

    const times = during.map((p) => p.ms);
    process.stdout.write(
      `RabbitMQ ${name} on ${kind}: ${posts.length} orders posted by ${CLIENTS} clients, all 201; during the ${FAULT_MS / 1000} s fault ${during.length} answered in ` +
        `p50 ${Math.round(percentile(times, 0.5))} ms, p99 ${Math.round(percentile(times, 0.99))} ms, max ${Math.round(Math.max(...times))} ms` +
        `${commits ? `, ${relayCommits} commits beyond the orders'` : ''}; ` +
        `every event at the broker ${(shippedAfter / 1000).toFixed(1)} s after restore (${tap.messages()} messages for ${acknowledged.length} orders) and in the change log\n`,
    );
  });
});

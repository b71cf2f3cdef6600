import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import amqp from 'amqplib';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { openDatabase } from '../../src/db/client.js';
import { migrate } from '../../src/db/migrate.js';
import { seedDemoCatalog } from '../../src/products/repository.js';
import { createTestDatabase, databaseKinds } from '../helpers/databases.js';
import { orderInput } from '../helpers/factories.js';
import { spawnService } from '../helpers/process.js';
import { measureCpu } from '../helpers/proc-stats.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { deleteTopology } from '../helpers/service.js';
import { sleep } from '../helpers/timing.js';

const rabbitmqUrl = inject('rabbitmqUrl');
const skipNote = rabbitmqUrl ? '' : ' (skipped: RabbitMQ not reachable)';

const ORDERS = 10;
const WINDOW_MS = 5_000;


/** A loopback port nobody listens on (until the test puts the broker there). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Every order.created published to the exchange, by order id, seen on a private queue. */
async function openTap(exchange: string) {
  const connection = await amqp.connect(rabbitmqUrl);
  const channel = await connection.createChannel();
  await channel.assertExchange(exchange, 'topic', { durable: true });
  const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
  await channel.bindQueue(queue, exchange, '#');
  const created = new Map<number, number>();
  await channel.consume(queue, (message) => {
    if (message?.properties.type !== 'order.created') return;
    const { order_id } = JSON.parse(message.content.toString()) as { order_id: number };
    created.set(order_id, performance.now());
  }, { noAck: true });
  return { created, close: () => connection.close() };
}

/** The log lines at warn or above, from pino's JSON output. */
function warnings(output: string): string[] {
  return output.split('\n').flatMap((line) => {
    try {
      const entry = JSON.parse(line) as { level: number; msg: string };
      return entry.level >= 40 ? [entry.msg] : [];
    } catch {
      return [];
    }
  });
}

function counts(messages: string[]): Map<string, number> {
  const byMessage = new Map<string, number>();
  for (const m of messages) byMessage.set(m, (byMessage.get(m) ?? 0) + 1);
  return byMessage;
}

const tally = (messages: string[]) => [...counts(messages)].map(([m, n]) => `${n}× "${m}"`).join(', ');

type Outage = 'nothing listening' | 'blackholed';
const cases = databaseKinds().flatMap(({ kind, skip }) =>
  (['nothing listening', 'blackholed'] as Outage[]).map((outage) => ({ kind, skip, outage })),
);

describe.skipIf(!rabbitmqUrl)(`the service with RabbitMQ down${skipNote}`, () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
  });

  it.each(cases)(
    'when RabbitMQ is $outage on $kind with orders waiting, then the process stays quiet (< 5% of a core, a handful of warnings), /healthz answers within 1 s, and every event is published promptly once RabbitMQ is back',
    { timeout: 120_000 },
    async ({ kind, skip, outage }) => {
      if (skip) return;
      const suffix = randomUUID().slice(0, 8);
      const exchange = `orders.test.down.${suffix}`;
      const queue = `orders.changelog.test.down.${suffix}`;
      const tap = await openTap(exchange);
      cleanup.push(() => deleteTopology(rabbitmqUrl, exchange, queue), () => tap.close());

      // The broker's address: a port where nothing listens yet, or a proxy that swallows everything.
      const target = new URL(rabbitmqUrl);
      const upstream = { host: target.hostname, port: Number(target.port || 5672) };
      let proxy: TcpProxy | undefined;
      const port = outage === 'blackholed' ? (proxy = await startTcpProxy(upstream)).port : await freePort();
      proxy?.blackhole();
      cleanup.push(async () => proxy?.close());
      target.hostname = '127.0.0.1';
      target.port = String(port);

      const env: Record<string, string> = { RABBITMQ_URL: target.toString(), RABBITMQ_EXCHANGE: exchange, RABBITMQ_CHANGELOG_QUEUE: queue };
      if (kind === 'postgres') {
        const database = await createTestDatabase('postgres');
        cleanup.push(() => database.drop());
        const db = await openDatabase({ url: database.url! });
        await migrate(db);
        await seedDemoCatalog(db.drizzle);
        await db.close();
        env.DATABASE_URL = database.url!;
      } else {
        const dataDir = mkdtempSync(path.join(tmpdir(), 'broker-down-'));
        cleanup.push(async () => rmSync(dataDir, { recursive: true, force: true }));
        env.DATA_DIR = dataDir;
      }
      const service = await spawnService(env, [], { startTimeoutMs: 60_000 });
      cleanup.push(() => service.stop());
      const pid = service.child.pid!;

      const statuses: (number | string)[] = [];
      const acknowledged: number[] = [];
      for (let i = 0; i < ORDERS; i++) {
        try {
          const response = await fetch(`${service.url}/orders/`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(orderInput()),
            signal: AbortSignal.timeout(5_000),
          });
          statuses.push(response.status);
          if (response.status === 201) acknowledged.push(((await response.json()) as { id: number }).id);
        } catch (error) {
          statuses.push((error as Error).name);
        }
      }
      await sleep(500);

      // A steady outage: no state changes, so nothing to log and nothing to do but wait.
      const logFrom = service.output().length;
      const healthz: number[] = [];
      const cpu = await measureCpu(pid, async () => {
        const until = performance.now() + WINDOW_MS;
        while (performance.now() < until) {
          const startedAt = performance.now();
          const ok = await fetch(`${service.url}/healthz`, { signal: AbortSignal.timeout(2_000) }).then((r) => r.ok, () => false);
          healthz.push(ok ? performance.now() - startedAt : Infinity);
          await sleep(500);
        }
      });
      const inWindow = warnings(service.output().slice(logFrom));
      const sinceStart = warnings(service.output());

      const figures =
        `RabbitMQ ${outage} on ${kind}: ${acknowledged.length} of ${ORDERS} orders acknowledged; over ${(cpu.wallMs / 1000).toFixed(1)} s ` +
        `${(cpu.share * 100).toFixed(1)}% of a core (${Math.round(cpu.cpuMs)} ms CPU), ${inWindow.length} warning(s) [${tally(inWindow)}], ` +
        `${sinceStart.length} since start [${tally(sinceStart)}]; /healthz slowest ${Math.round(Math.max(...healthz))} ms`;
      process.stdout.write(`${figures}\n`);
      expect.soft(statuses, figures).toEqual(Array(ORDERS).fill(201));
      expect.soft(cpu.share, figures).toBeLessThan(0.05);
      expect.soft(inWindow.length, figures).toBeLessThanOrEqual(3);
      // Once per state change, not per attempt: the outage began once, so each warning is said about once.
      expect.soft(sinceStart.length, figures).toBeLessThanOrEqual(5);
      expect.soft(Math.max(0, ...counts(sinceStart).values()), figures).toBeLessThanOrEqual(2);
      expect.soft(Math.max(...healthz), figures).toBeLessThan(1_000);

      // The broker comes back where the service looks for it.
      const restoredAt = performance.now();
      if (proxy) await proxy.restore();
      else proxy = await startTcpProxy(upstream, { port });

      await expect
        .poll(() => acknowledged.filter((id) => !tap.created.has(id)), { timeout: 30_000, interval: 100 })
        .toEqual([]);
      const publishedAfter = Math.max(...acknowledged.map((id) => tap.created.get(id)!)) - restoredAt;
      process.stdout.write(`RabbitMQ ${outage} on ${kind}: every acknowledged order's event published ${(publishedAfter / 1000).toFixed(1)} s after RabbitMQ came back\n`);
      expect(publishedAfter).toBeLessThan(10_000);
    },
  );
});

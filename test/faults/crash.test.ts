import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { createTestDatabase } from '../helpers/databases.js';
import { call, seededRandom, sleep } from './crash/http.js';
import { ServiceLife } from './crash/life.js';
import { ResumingClient } from './crash/resuming-client.js';
import { checkClients, checkOrders, listOrders, stockLeft } from './crash/verify.js';
import { Ledger, runWriter, settle, type OrderBody } from './crash/writers.js';
import { deleteTopology } from '../helpers/service.js';

const postgresUrl = inject('postgresUrl');
const rabbitmqUrl = inject('rabbitmqUrl');
// CRASH_SEED (printed on failure) replays a run's choices: its kill points, requests and clients.
const baseSeed = Number(process.env.CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));

const KILLS = 3;
const WRITERS = 4;
const CLIENTS = 3;
const STOCK = 1_000_000;
/** An Idempotency-Key cut off in flight may be refused for its whole lease (30 s) before a retry succeeds. */
const SETTLE_MS = 40_000;
const CATCH_UP_MS = 30_000;

interface Setup {
  name: string;
  skip: boolean;
  /** The environment of the service, and how to clean up after it. */
  prepare(): Promise<{ env: Record<string, string>; cleanUp(): Promise<void> }>;
}

const setups: Setup[] = [
  {
    name: 'embedded PGlite in a data folder with the in-process broker',
    skip: false,
    async prepare() {
      const dataDir = mkdtempSync(path.join(tmpdir(), 'order-crash-'));
      return { env: { DATA_DIR: dataDir }, cleanUp: async () => rmSync(dataDir, { recursive: true, force: true }) };
    },
  },
  {
    name: 'PostgreSQL with the in-process broker',
    skip: !postgresUrl,
    async prepare() {
      const database = await createTestDatabase('postgres');
      return { env: { DATABASE_URL: database.url! }, cleanUp: () => database.drop() };
    },
  },
  {
    name: 'PostgreSQL and RabbitMQ',
    skip: !postgresUrl || !rabbitmqUrl,
    async prepare() {
      const database = await createTestDatabase('postgres');
      const suffix = `crash.${randomUUID().slice(0, 8)}`;
      const topology = { RABBITMQ_EXCHANGE: `orders.test.${suffix}`, RABBITMQ_CHANGELOG_QUEUE: `orders.changelog.test.${suffix}` };
      return {
        env: { DATABASE_URL: database.url!, RABBITMQ_URL: rabbitmqUrl, ...topology },
        async cleanUp() {
          await database.drop();
          await deleteTopology(rabbitmqUrl, topology.RABBITMQ_EXCHANGE, topology.RABBITMQ_CHANGELOG_QUEUE);
        },
      };
    },
  },
];

async function post<T>(base: string, url: string, body: unknown): Promise<T> {
  const reply = await call(base, 'POST', url, body);
  if (reply.status !== 201 || reply.body === undefined) throw new Error(`POST ${url} answered ${reply.status}: ${reply.body}`);
  return JSON.parse(reply.body) as T;
}

describe('the service killed with SIGKILL at random moments', () => {
  setups.forEach((setup, index) => {
    const seed = baseSeed + index;
    it.skipIf(setup.skip)(
      `when the service on ${setup.name} is killed several times under writers and resuming WebSocket clients, then every acknowledged order, its events and every client's events are there, exactly`,
      { timeout: 150_000 },
      async () => {
        const random = seededRandom(seed);
        const { env, cleanUp } = await setup.prepare();
        const life = new ServiceLife({ OUTBOX_SWEEP_MS: '200', LOG_LEVEL: 'info', ...env });
        const ledger = new Ledger();
        const clients: ResumingClient[] = [];
        let writing = false;
        let halt!: () => void;
        const halted = new Promise<void>((resolve) => (halt = resolve));
        let writers: Promise<void[]> | undefined;
        const startedAt = performance.now();
        try {
          await life.start();
          let base = await life.url();
          const products = {
            unlimited: (await post<{ id: number }>(base, '/products', { name: 'Crash widget', price: 19.99 })).id,
            stocked: (await post<{ id: number }>(base, '/products', { name: 'Crash gadget', price: 0.35, stock: STOCK })).id,
          };
          // The first client stays away longer than any lease a crashed process may have left behind.
          for (let i = 0; i < CLIENTS; i++) {
            clients.push(new ResumingClient(life, { random, maxStayMs: 2_500, maxAwayMs: 1_500, ...(i === 0 ? { awayAfterFirstDropMs: 15_500 + random() * 2_500 } : {}) }));
          }
          await Promise.all(clients.map((c) => c.start()));
          // Every client has seen the first event before anything can cut it off: from there, it must end with all of them.
          const genesisInput = { product_id: products.unlimited, quantity: 1, client_name: 'Genesis', client_email: `genesis.${seed}@crash.example.com` };
          const genesis = ledger.record(await post<OrderBody>(base, '/orders/', genesisInput), genesisInput);
          await expect.poll(() => clients.every((c) => c.received.some((e) => e.order_id === genesis.id)), { timeout: 20_000 }).toBe(true);

          writing = true;
          const context = { life, ledger, random, products, tag: String(seed), stopped: () => !writing, halted, maxOps: 1_500 };
          writers = Promise.all(Array.from({ length: WRITERS }, (_, w) => runWriter(w, context)));
          // One kill lands within the first second after a start, one restart is itself killed during start-up.
          const earlyRound = Math.floor(random() * KILLS);
          const startupRound = Math.floor(random() * KILLS);
          const startupKills: string[] = [];
          for (let round = 0; round < KILLS; round++) {
            await sleep(round === earlyRound ? random() * 1_000 : 300 + random() * 2_000);
            await life.kill();
            if (round === startupRound) startupKills.push(await life.killDuringStart(random() * 1_500));
            await life.start();
          }
          await sleep(500);
          writing = false;
          halt();
          await writers;

          base = await life.url();
          await settle(base, ledger, SETTLE_MS);
          const found = await listOrders(base, [products.unlimited, products.stocked]);
          const orders = await checkOrders(base, ledger, found, CATCH_UP_MS);
          const reserved = [...found.values()].filter((o) => o.product_id === products.stocked && o.status !== 'Cancelled').reduce((n, o) => n + (o.quantity as number), 0);
          const stock = await stockLeft(base, products.stocked);
          const events = await checkClients(clients, orders.eventIds, CATCH_UP_MS);
          const c = ledger.counts;

          process.stdout.write(
            `crash test on ${setup.name} (CRASH_SEED=${baseSeed}), ${((performance.now() - startedAt) / 1000).toFixed(1)} s: ` +
              `${life.kills} kills while serving + ${life.startupKills} during start-up (${startupKills.join(', ')}); ${c.requests} operations by ${WRITERS} writers, ${c.cutOff} cut off by a kill\n` +
              `  orders: ${ledger.acknowledged.size} acknowledged with 201 (${c.keyed} sent with an Idempotency-Key, ${c.keyedRetried} retries of them, ${c.replayed} answered by replay; ` +
              `${c.inProgress} answered 409 in progress, ${c.inProgressWithRetryAfter} with Retry-After; longest wait for a cut-off key ${(ledger.longestKeyWaitMs / 1000).toFixed(1)} s); ` +
              `${c.statusChanges} status changes acknowledged (${c.changesResolvedApplied} cut off but applied, ${c.changesResolvedNotApplied} cut off and not applied)\n` +
              `  found: ${orders.orders} orders (${orders.committedUnacknowledged} committed though their request was cut off), ${orders.events} events in the change log; stock ${stock} + ${reserved} reserved = ${stock + reserved} of ${STOCK}\n` +
              `  WebSocket: ${CLIENTS} clients, ${events.resumes} resumes with ?after=, ${events.received} events received; missed ${events.missed}, duplicates ${events.duplicates}, unknown ${events.unknown}\n`,
          );
          expect(ledger.violations, 'what the writers were told').toEqual([]);
          expect(orders.problems, 'orders and their change log').toEqual([]);
          expect(stock + reserved, 'stock left plus stock held by live orders').toBe(STOCK);
          expect(events.problems, 'WebSocket clients').toEqual([]);
          expect(events.missed, 'events a client lacked at the end').toBe(0);
          // docs/events.md promises each event once to a resumed client: nothing at or before the id it named comes again.
          expect(events.duplicates, 'events a client got twice').toBe(0);
        } catch (error) {
          if (error instanceof Error) error.message = `${error.message}\n(replay with CRASH_SEED=${baseSeed})\n${life.tail()}`;
          throw error;
        } finally {
          writing = false;
          halt();
          await writers?.catch(() => undefined);
          await Promise.all(clients.map((c) => c.stop()));
          await life.stop();
          await cleanUp();
        }
      },
    );
  });
});

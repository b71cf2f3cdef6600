import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, seededRandom, sleep } from '../faults/crash/http.js';
import { TopologyClient } from './clients.js';
import { faultSummary, faultTimeline, runFaults, type Fault } from './faults.js';
import { realServicesRequired, Topology, unreachableServices, waitReady } from './harness.js';
import { checkInvariants, Findings, INVARIANTS, type InvariantNumber } from './invariants.js';
import { Requests } from './requests.js';
import { createKeyed, Ledger, runWriter, settle, type WriterContext } from './writers.js';

const unreachable = unreachableServices();
const skip = unreachable.length > 0 && !realServicesRequired;
const skipNote = skip ? ` (skipped: ${unreachable.join(' and ')} not reachable)` : '';

// TOPOLOGY_SEED (printed with every run) replays a run's choices: its faults, requests and clients.
const seed = Number(process.env.TOPOLOGY_SEED ?? Math.floor(Math.random() * 2 ** 31));
// SOAK_SECONDS lengthens the load phase (npm run test:soak); the short run is part of npm test.
const LOAD_MS = Number(process.env.SOAK_SECONDS ?? 30) * 1000;
const WRITERS = 8;
const CLIENTS = 3;
const STOCK = 300;
/** A key cut off in flight may be held for its whole 10 s lease before a retry runs. */
const SETTLE_MS = 30_000;
const CATCH_UP_MS = 15_000;

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

describe.skipIf(skip)(`the invariants on the scaled-out topology: 2 api, 1 notifier, 1 changelog, each behind its own proxies${skipNote}`, () => {
  let topology: Topology | undefined;
  const clients: TopologyClient[] = [];

  beforeAll(async () => {
    if (unreachable.length > 0) throw new Error(`REQUIRE_REAL_SERVICES=1 but ${unreachable.join(' and ')} not reachable`);
    topology = await Topology.open({
      members: [
        { name: 'api-1', role: 'api' },
        { name: 'api-2', role: 'api' },
        { name: 'notifier', role: 'notifier' },
        { name: 'changelog', role: 'changelog' },
      ],
    });
    await topology.start();
  }, 180_000);

  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.stop()));
    await topology?.close();
  }, 120_000);

  it(
    `when writers and resuming WebSocket clients run through kills of every role and cuts of RabbitMQ and PostgreSQL for ${seconds(LOAD_MS)}, then all eight invariants hold`,
    { timeout: LOAD_MS + 240_000 },
    async () => {
      const t = topology!;
      const random = seededRandom(seed);
      const apis = t.byRole('api');
      const notifier = t.member('notifier');
      const requests = new Requests(apis, seededRandom(seed + 1));
      const ledger = new Ledger();
      const findings = new Findings();
      let writing = false;
      let halt!: () => void;
      const halted = new Promise<void>((resolve) => (halt = resolve));
      let writers: Promise<void[]> | undefined;
      let faults: Fault[] = [];
      const startedAt = performance.now();
      try {
        const base = apis[0]!.url!;
        const post = async (path: string, body: unknown) => {
          const reply = await call(base, 'POST', path, body);
          if (reply.status !== 201 || !reply.body) throw new Error(`POST ${path} answered ${reply.status}: ${reply.body}`);
          return JSON.parse(reply.body) as { id: number };
        };
        const products = {
          unlimited: (await post('/products', { name: 'Topology widget', price: 19.99 })).id,
          stocked: (await post('/products', { name: 'Topology gadget', price: 0.35, stock: STOCK })).id,
        };
        for (let i = 0; i < CLIENTS; i++) {
          clients.push(new TopologyClient(`client ${i + 1}`, () => notifier.whenUp(), { random: seededRandom(seed + 10 + i), maxStayMs: 6_000, maxAwayMs: 1_000 }));
        }
        await Promise.all(clients.map((c) => c.start()));
        // Every client is connected before the first event is written: from there on it must get all of them.
        const genesisKey = `topology-${seed}-genesis`;
        const genesisBody = { product_id: products.unlimited, quantity: 1, client_name: 'Genesis', client_email: `genesis.${seed}@topology.example.com` };
        ledger.keys.set(genesisKey, { writer: -1, body: genesisBody, since: Date.now(), outcome: 'pending', attempts: 0 });
        const context: WriterContext = {
          requests,
          ledger,
          random,
          products,
          tag: String(seed),
          stopped: () => !writing,
          halted,
          maxOps: 50_000,
          thinkMs: 40,
        };
        await createKeyed({ ...context, stopped: () => false }, genesisKey, 20_000);
        const genesis = ledger.keys.get(genesisKey)!.orderId;
        const deadline = Date.now() + 20_000;
        while (!clients.every((x) => x.received.some((e) => e.order_id === genesis))) {
          if (Date.now() > deadline) throw new Error(`the clients did not all get the first order's event (order ${genesis}) within 20 s`);
          await sleep(50);
        }
        const loadStart = performance.now();
        writing = true;
        writers = Promise.all(Array.from({ length: WRITERS }, (_, w) => runWriter(w, { ...context, random: seededRandom(seed + 100 + w) })));

        faults = await runFaults(t, seededRandom(seed + 2), loadStart, LOAD_MS);
        const remaining = LOAD_MS - (performance.now() - loadStart);
        if (remaining > 0) await sleep(remaining);
        writing = false;
        halt();
        await writers;
        const loadMs = performance.now() - loadStart;

        // Everything up and connected again before the reckoning.
        await t.restoreAll();
        for (const member of t.members.values()) await waitReady(member, 30_000);
        await settle({ ...context, stopped: () => false }, SETTLE_MS);

        const figures = await checkInvariants(
          {
            base: apis[0]!.url!,
            db: t.db,
            embeddedChangeLog: !process.env.MONGODB_URL,
            ledger,
            requests,
            clients,
            products,
            initialStock: STOCK,
            catchUpMs: CATCH_UP_MS,
          },
          findings,
        );
        const c = ledger.counts;
        const keys = [...ledger.keys.values()];
        const sum = (f: (client: TopologyClient) => number) => clients.reduce((n, client) => n + f(client), 0);
        process.stdout.write(
          `topology invariants (TOPOLOGY_SEED=${seed}), load ${seconds(loadMs)}, whole run ${seconds(performance.now() - startedAt)}, change log ${process.env.MONGODB_URL ? 'MongoDB' : 'embedded'}\n` +
            `  faults: ${faultSummary(faults)}\n  timeline: ${faultTimeline(faults)}\n` +
            `  requests: ${requests.summary()}; 503: ${requests.unavailable}\n` +
            `  orders: ${figures.orders} found; ${keys.filter((k) => k.outcome === 'created').length} keys answered 201 (${c.keyedRetries} retries, ${c.replayed} replayed, ${c.inProgress} 409 in progress), ` +
            `${c.refusedForStock} refused for stock; ${c.patched} status changes acknowledged (${c.cancelled} cancels, ${c.uncertainApplied} unanswered but applied, ${c.uncertainNotApplied} not applied); ` +
            `${c.staleSent} stale If-Match sent, ${c.preconditionFailed} answered 412\n` +
            `  events: ${figures.events} in the outbox (${figures.unshipped} unshipped at the end)\n` +
            `  WebSocket: ${clients.length} clients received ${figures.received} frames; ${sum((x) => x.resumes)} resumes with ?after=, ${sum((x) => x.drops)} drops by the server, ` +
            `${sum((x) => x.reloads)} reloads (4011/4404), ${sum((x) => x.notReady)} upgrades answered 503 notifier_not_ready; close codes ${closeCodes(clients)}\n` +
            `${findings.report()}\n`,
        );
        for (const n of Object.keys(INVARIANTS).map(Number) as InvariantNumber[]) {
          const { count, examples } = findings.of(n);
          expect.soft(examples, `(${n}) ${INVARIANTS[n]}: broken ${count}× (TOPOLOGY_SEED=${seed})`).toEqual([]);
        }
      } catch (error) {
        if (error instanceof Error) error.message = `${error.message}\n(replay with TOPOLOGY_SEED=${seed}; faults: ${faultTimeline(faults)})\n${t.tails()}`;
        throw error;
      } finally {
        writing = false;
        halt();
        await writers?.catch(() => undefined);
        await Promise.allSettled(clients.map((client) => client.stop()));
      }
    },
  );
});

function closeCodes(clients: readonly TopologyClient[]): string {
  const all = new Map<number, number>();
  for (const client of clients) for (const [code, n] of client.closeCodes) all.set(code, (all.get(code) ?? 0) + n);
  return [...all].sort(([a], [b]) => a - b).map(([code, n]) => `${code}×${n}`).join(' ') || 'none';
}

import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { pino } from 'pino';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openDatabase, POSTGRES_TIMEOUTS, type Database } from '../../src/db/client.js';
import { seedDemoCatalog } from '../../src/products/repository.js';
import { startService, type Service } from '../../src/runtime.js';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { orderInput } from '../helpers/factories.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { percentile, sleep } from '../helpers/timing.js';

const postgresUrl = inject('postgresUrl');
const skipNote = postgresUrl ? '' : ' (skipped: PostgreSQL not reachable)';

/**
 * "Within about 3 s": the query timeout (2.5 s) plus a loaded 2-core machine's scheduling, which once took a
 * POST in a full CI run to 3,517 ms against a bound of 3.5 s.
 */
const ANSWER_BOUND_MS = 4_000;
const FAULT_MS = 8_000;
const CLIENTS = 8;


interface Sample {
  route: 'POST /orders/' | 'GET /orders/{id}' | 'GET /readyz';
  startedAt: number;
  ms: number;
  /** -1: no answer within the client's own 15 s limit. */
  status: number;
  problem?: { code: string; contentType: string };
  orderId?: number;
}

/** PostgreSQL as the service sees it: through a proxy the test can reset, blackhole or slow down. */
async function proxiedDatabase(database: TestDatabase): Promise<{ proxy: TcpProxy; url: string }> {
  const target = new URL(database.url!);
  const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
  target.hostname = '127.0.0.1';
  target.port = String(proxy.port);
  return { proxy, url: target.toString() };
}

async function startProxiedService(url: string, env: Record<string, string> = {}): Promise<{ service: Service; base: string }> {
  const config = loadConfig({ DATABASE_URL: url, DATA_DIR: ':memory:', OUTBOX_SWEEP_MS: '200', LOG_LEVEL: 'silent', ...env });
  const service = await startService(config, { logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }) });
  await seedDemoCatalog(service.db.drizzle);
  await service.app.listen({ host: '127.0.0.1', port: 0 });
  return { service, base: `http://127.0.0.1:${(service.app.server.address() as AddressInfo).port}` };
}

/** A few clients in a bounded loop, each creating orders and reading one back, and a /readyz prober; every answer is kept. */
function startLoad(base: string) {
  const samples: Sample[] = [];
  let running = true;
  const request = async (route: Sample['route'], url: string, init?: RequestInit): Promise<Sample> => {
    const startedAt = performance.now();
    const sample: Sample = { route, startedAt, ms: 0, status: -1 };
    try {
      const response = await fetch(url, { ...init, signal: AbortSignal.timeout(15_000) });
      sample.status = response.status;
      const contentType = response.headers.get('content-type') ?? '';
      const body = (await response.json()) as { id?: number; code?: string };
      if (response.status === 201) sample.orderId = body.id;
      if (response.status >= 400 && route !== 'GET /readyz') sample.problem = { code: body.code ?? '', contentType };
    } catch {
      sample.status = -1;
    }
    sample.ms = performance.now() - startedAt;
    samples.push(sample);
    return sample;
  };
  const client = async (_: unknown, n: number) => {
    let known: number | undefined;
    for (let i = 0; running && i < 5_000; i++) {
      // Half the clients send Idempotency-Keys: that path takes a lease and releases it on failure.
      const key: Record<string, string> = n % 2 === 0 ? { 'idempotency-key': `partition-${n}-${i}-${Date.now()}` } : {};
      const created = await request('POST /orders/', `${base}/orders/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...key },
        body: JSON.stringify(orderInput()),
      });
      known = created.orderId ?? known;
      if (known !== undefined) await request('GET /orders/{id}', `${base}/orders/${known}`);
      await sleep(50);
    }
  };
  const prober = async () => {
    for (let i = 0; running && i < 5_000; i++) {
      await request('GET /readyz', `${base}/readyz`);
      await sleep(200);
    }
  };
  const done = Promise.all([prober(), ...Array.from({ length: CLIENTS }, client)]);
  return {
    samples,
    async stop() {
      running = false;
      await done;
    },
  };
}

const succeeded = (s: Sample) => s.status === 200 || s.status === 201;

const MODES = [
  { name: 'blackholed (connections accepted, nothing forwarded)', apply: (proxy: TcpProxy) => proxy.blackhole() },
  { name: 'reset (connections killed, port refusing)', apply: (proxy: TcpProxy) => proxy.reset() },
  { name: 'slowed to 5 s each way', apply: (proxy: TcpProxy) => proxy.latency(5_000) },
];

describe.skipIf(!postgresUrl)(`PostgreSQL partitioned, reset or slow under load${skipNote}`, () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
  });

  it.each(MODES)('when PostgreSQL is $name, then requests and /readyz answer 503 within about 3 s, and all recover by themselves once it is back', { timeout: 90_000 }, async ({ name, apply }) => {
    const database = await createTestDatabase('postgres');
    cleanup.push(() => database.drop());
    const { proxy, url } = await proxiedDatabase(database);
    cleanup.push(() => proxy.close());
    const { service, base } = await startProxiedService(url);
    cleanup.push(() => service.stop());

    const load = startLoad(base);
    await sleep(1_500);
    // A slow network that stays within the timeouts is not an outage: requests wait, and succeed.
    if (name.startsWith('slowed')) proxy.latency(100);
    await sleep(1_500);
    await apply(proxy);
    const faultAt = performance.now();
    await sleep(FAULT_MS);
    await proxy.restore();
    const restoredAt = performance.now();
    await sleep(4_000);
    await load.stop();
    const { samples } = load;

    const before = samples.filter((s) => s.startedAt + s.ms < faultAt);
    const during = samples.filter((s) => s.startedAt >= faultAt + 100 && s.startedAt + s.ms <= restoredAt);
    const after = samples.filter((s) => s.startedAt >= restoredAt + 1_000);
    const unavailable = samples.filter((s) => s.status === 503);

    // Before the fault everything succeeded; during it everything is a quick 503; after it, everything succeeds again.
    expect(before.length).toBeGreaterThan(20);
    expect(before.filter((s) => !succeeded(s))).toEqual([]);
    expect(during.length).toBeGreaterThan(8);
    expect(during.filter((s) => s.status !== 503)).toEqual([]);
    expect(during.filter((s) => s.route === 'GET /readyz').length).toBeGreaterThan(0);
    expect(samples.filter((s) => s.ms > ANSWER_BOUND_MS).map((s) => `${s.route} ${s.status} in ${Math.round(s.ms)} ms`)).toEqual([]);
    expect(samples.filter((s) => ![200, 201, 503].includes(s.status)).map((s) => `${s.route} ${s.status}`)).toEqual([]);
    expect(unavailable.filter((s) => s.problem && (s.problem.code !== 'service_unavailable' || !s.problem.contentType.startsWith('application/problem+json')))).toEqual([]);
    expect(after.length).toBeGreaterThan(20);
    expect(after.filter((s) => !succeeded(s)).map((s) => `${s.route} ${s.status} at +${Math.round(s.startedAt - restoredAt)} ms`)).toEqual([]);

    // Every order answered 201 is there, and its event reached the change log.
    const acknowledged = samples.filter((s) => s.status === 201).map((s) => s.orderId!);
    for (const id of acknowledged) expect((await fetch(`${base}/orders/${id}`)).status, `order ${id}`).toBe(200);
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

    const firstSuccess = samples.filter((s) => s.startedAt >= restoredAt && succeeded(s)).map((s) => s.startedAt + s.ms - restoredAt);
    const times = unavailable.map((s) => s.ms);
    const readyz = unavailable.filter((s) => s.route === 'GET /readyz').map((s) => s.ms);
    process.stdout.write(
      `postgres ${name}: ${samples.length} requests from ${CLIENTS} clients, ${acknowledged.length} orders acknowledged; ` +
        `${unavailable.length} answered 503 in p50 ${Math.round(percentile(times, 0.5))} ms, max ${Math.round(Math.max(...times))} ms ` +
        `(/readyz p50 ${Math.round(percentile(readyz, 0.5))} ms, max ${Math.round(Math.max(...readyz))} ms); ` +
        `first success ${Math.round(Math.min(...firstSuccess))} ms after restore; proxy accepted ${proxy.accepted} connections\n`,
    );
  });

  it('when a transaction gets no answer, then it fails within the query timeout and its connection is closed, not handed to the next caller', { timeout: 30_000 }, async () => {
    const database = await createTestDatabase('postgres');
    cleanup.push(() => database.drop());
    const { proxy, url } = await proxiedDatabase(database);
    cleanup.push(() => proxy.close());
    const db: Database = await openDatabase({ url, poolSize: 1 });
    cleanup.push(() => db.close());
    expect(proxy.open).toBe(1);

    proxy.blackhole();
    const startedAt = performance.now();
    const outcome = await Promise.race([
      db.transaction((tx) => tx.query('SELECT 1')).then(() => 'committed', (error: Error) => error.message),
      sleep(10_000).then(() => 'no answer within 10 s'),
    ]);
    const failedAfter = performance.now() - startedAt;

    expect(outcome).toMatch(/Query read timeout/);
    // One statement's wait, not a second one for a ROLLBACK queued behind it.
    expect(failedAfter).toBeLessThan(POSTGRES_TIMEOUTS.queryMs + 500);
    await expect.poll(() => proxy.open, { timeout: 1_000 }).toBe(0);

    await proxy.restore();
    expect(await db.query<{ n: number }>('SELECT 2 AS n')).toEqual([{ n: 2 }]);
    expect(proxy.accepted).toBe(2);
  });

  it('when a row is locked by another session for longer than the statement timeout, then the request answers 503 in about 2 s and the next one succeeds', { timeout: 30_000 }, async () => {
    const database = await createTestDatabase('postgres');
    cleanup.push(() => database.drop());
    const { service, base } = await startProxiedService(database.url!);
    cleanup.push(() => service.stop());
    const created = (await (await fetch(`${base}/orders/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(orderInput()) })).json()) as { id: number };
    const locker = new pg.Client({ connectionString: database.url });
    await locker.connect();
    cleanup.push(() => locker.end());
    await locker.query('BEGIN');
    await locker.query('SELECT 1 FROM orders WHERE id = $1 FOR UPDATE', [created.id]);

    const patch = () => fetch(`${base}/orders/${created.id}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ status: 'Confirmed' }), signal: AbortSignal.timeout(15_000) });
    const startedAt = performance.now();
    const blocked = await patch();
    const answeredAfter = performance.now() - startedAt;
    expect(blocked.status).toBe(503);
    expect(((await blocked.json()) as { code: string }).code).toBe('service_unavailable');
    expect(answeredAfter).toBeLessThan(POSTGRES_TIMEOUTS.statementMs + 1_000);

    await locker.query('ROLLBACK');
    expect((await patch()).status).toBe(200);
  });

  it('when another instance holds the migration lock for longer than the statement timeout, then start-up waits for it instead of failing', { timeout: 30_000 }, async () => {
    const database = await createTestDatabase('postgres');
    cleanup.push(() => database.drop());
    const holder = new pg.Client({ connectionString: database.url });
    await holder.connect();
    cleanup.push(() => holder.end());
    await holder.query('SELECT pg_advisory_lock(7340112)');

    const starting = startProxiedService(database.url!, { DATABASE_STATEMENT_TIMEOUT_MS: '200', DATABASE_QUERY_TIMEOUT_MS: '300' });
    const outcome = starting.then(({ service }) => (cleanup.push(() => service.stop()), 'started'), (error: Error) => error.message);
    await sleep(1_500);
    await holder.query('SELECT pg_advisory_unlock(7340112)');

    expect(await outcome).toBe('started');
  });
});

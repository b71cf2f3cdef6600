import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { expect, sleep, type BenchContext, type SectionResult } from './context.js';
import { loadPostOrders, OrderLedger, verifyOrders } from './http.js';
import { RUN_ID, tempDir } from './infra.js';
import { labelProcess, measureCpu } from './machine.js';
import { httpRequest } from './process.js';
import { ms, rate, type Row } from './report.js';
import { startServer } from './server.js';
import { createOrderStatement } from './statements.js';
import { Samples, type LatencySummary } from './stats.js';
import { openCountingClient } from './ws-counter.js';
import { TARGETS } from './targets.js';

/** The demo catalog's product 1: 100.00, unlimited stock. */
const DEMO_PRODUCT = 1;

/**
 * The embedded default (no DATABASE_URL: PGlite in a data folder, in-process broker and change log)
 * under POST load, then a bare PGlite loop in this process running the same statement on the same folder.
 */
export async function embeddedSection({ options, profileDir }: BenchContext): Promise<SectionResult> {
  const problems: string[] = [];
  const { connections, seconds, warmupSeconds } = options;
  const dataDir = tempDir('embedded');
  const server = await startServer({ label: 'embedded', env: { DATA_DIR: dataDir }, profileDir });
  labelProcess(server.pid, 'server');
  const demo = await httpRequest(`${server.url}/products/${DEMO_PRODUCT}`);
  const product = JSON.parse(demo.body) as { price?: number; stock?: unknown };
  if (demo.status !== 200 || product.stock !== null) throw new Error(`demo product: ${demo.status} ${demo.body}`);

  const ledger = new OrderLedger(`${RUN_ID}em`, DEMO_PRODUCT);
  const ws = await openCountingClient(`${server.url.replace('http', 'ws')}/ws/notifications`, ledger);
  await loadPostOrders(server.url, connections, warmupSeconds, ledger);
  const post = await measureCpu(() => loadPostOrders(server.url, connections, seconds, ledger));
  const drainMs = await waitUntilStable(() => ws.unique(), ledger.created.size, 60_000);
  ws.close();
  const exit = await server.stop();
  expect(problems, exit === 0, `embedded server exited with ${exit}`);
  expect(
    problems,
    post.result.errors === 0 && post.result.timeouts === 0,
    `embedded POST: ${post.result.errors} errors, ${post.result.timeouts} timeouts`,
  );
  problems.push(...ledger.problems.map((p) => `embedded POST: ${p}`), ...ws.problems.map((p) => `embedded WebSocket: ${p}`));

  // The folder the server used, now opened here: check what it stored, then run the bare loop on it.
  const pg = await PGlite.create(path.join(dataDir, 'pglite'));
  try {
    const scalar = async <T>(sql: string, params?: unknown[]) =>
      Object.values((await pg.query<Record<string, unknown>>(sql, params)).rows[0] ?? {})[0] as T;
    const known = ledger.problems.length;
    const stored = await verifyOrders({ scalar }, ledger);
    problems.push(...ledger.problems.slice(known).map((p) => `embedded: ${p}`));
    const changes = Number(await scalar<number>('SELECT count(*)::int FROM order_changes'));
    const unsent = Number(
      await scalar<number>('SELECT count(*)::int FROM outbox o, outbox_checkpoint c WHERE (o.xid, o.position) > (c.xid, c.position)'),
    );
    expect(
      problems,
      changes === stored.rows && unsent === 0 && ws.unique() === stored.rows,
      `embedded pipeline: ${stored.rows} orders, ${changes} in the change log, ${unsent} unsent, ${ws.unique()} at the WebSocket client`,
    );

    const statement = await createOrderStatement({
      productId: DEMO_PRODUCT,
      quantity: 1,
      clientName: 'x',
      clientEmail: 'x@example.com',
      now: new Date(),
      eventId: randomUUID(),
      idempotencyKey: null,
    });
    const warm = await bareLoop(pg, statement.text, warmupSeconds);
    const loop = await measureCpu(() => bareLoop(pg, statement.text, seconds));
    const after = Number(await scalar<number>('SELECT count(*)::int FROM orders'));
    expect(problems, warm.failures + loop.result.failures === 0, `bare PGlite loop: ${loop.result.failures} statements created nothing`);
    expect(
      problems,
      after === stored.rows + warm.count + loop.result.count,
      `bare PGlite loop: ${warm.count + loop.result.count} runs but ${after - stored.rows} new orders`,
    );

    const ratio = post.result.requestsPerSecond / loop.result.perSecond;
    const rows: Row[] = [
      {
        figure: `embedded POST /orders/, ${connections} conn (PGlite, in-process broker)`,
        value: `${rate(post.result.requestsPerSecond)} req/s, p50 ${ms(post.result.latency.p50)} ms, p99 ${ms(post.result.latency.p99)} ms`,
        limit: `bare PGlite loop ${rate(loop.result.perSecond)} tx/s, p50 ${ms(loop.result.latency.p50)} ms, p99 ${ms(loop.result.latency.p99)} ms`,
        ratio,
        target: `≥ ${TARGETS.embeddedRatio.toFixed(2)}`,
        pass: ratio >= TARGETS.embeddedRatio,
      },
    ];
    return {
      rows,
      details: {
        post: { ...post.result, cpu: post.cpu, ordersStored: stored, pipelineDrainMs: drainMs, webSocketReceived: ws.unique() },
        bareLoop: { ...loop.result, cpu: loop.cpu },
      },
      problems,
    };
  } finally {
    await pg.close();
  }
}

interface LoopResult {
  count: number;
  failures: number;
  perSecond: number;
  latency: LatencySummary;
}

/** The order statement back to back for `seconds`, with the parameters the API would pass. */
async function bareLoop(pg: PGlite, text: string, seconds: number): Promise<LoopResult> {
  const samples = new Samples(seconds * 5000);
  let failures = 0;
  const started = performance.now();
  const end = started + seconds * 1000;
  let n = 0;
  for (let t = started; t < end;) {
    n += 1;
    const params = [
      DEMO_PRODUCT,
      1 + (n % 5),
      `Bare loop ${n}`,
      `bare${n}@bench.example.com`,
      new Date().toISOString(),
      randomUUID(),
      null,
      randomUUID(),
    ];
    const { rows } = await pg.query<{ id: number | null }>(text, params);
    if (!rows[0]?.id) failures += 1;
    const done = performance.now();
    samples.add(done - t);
    t = done;
  }
  return { count: n, failures, perSecond: n / ((performance.now() - started) / 1000), latency: samples.summary() };
}

/** Waits until `count()` reaches at least `atLeast` and stops changing; returns how long that took. */
async function waitUntilStable(count: () => number, atLeast: number, timeoutMs: number): Promise<number> {
  const started = performance.now();
  let last = -1;
  let since = performance.now();
  while (performance.now() - started < timeoutMs) {
    const now = count();
    if (now !== last) {
      last = now;
      since = performance.now();
    } else if (now >= atLeast && performance.now() - since > 300) {
      break;
    }
    await sleep(20);
  }
  return Math.round(performance.now() - started);
}

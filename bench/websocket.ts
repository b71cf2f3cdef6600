import { expect, sleep, type BenchContext, type SectionResult } from './context.js';
import { startFleet, type FleetReply } from './fleet.js';
import { OrderLedger, verifyOrders } from './http.js';
import { createDatabase, RABBITMQ_URL, RUN_ID, uniqueTopology } from './infra.js';
import { labelProcess, measureCpu, type CpuShare } from './machine.js';
import { openLoopOrders, type OpenLoopResult } from './notify.js';
import { followQueues, type QueueDepths } from './queues.js';
import type { BenchOptions, NotifyScenario } from './options.js';
import { createUnlimitedProduct, waitForPipeline } from './postgres.js';
import { ms, type Row } from './report.js';
import { floorCommand, startServer, type MemoryUsage, type ServerProcess } from './server.js';
import type { LatencySummary } from './stats.js';
import { TARGETS } from './targets.js';

/**
 * End-to-end notification latency: POSTs on a fixed schedule, envelopes received by WebSocket clients
 * in another process on the same two cores. First against the fan-out floor (HTTP in, WebSocket out,
 * nothing else), then against ROLE=all on PostgreSQL + RabbitMQ, with the same clients and schedule.
 */
export async function notifySection(context: BenchContext): Promise<SectionResult> {
  const result: SectionResult = { rows: [], details: {}, problems: [] };
  for (const [i, scenario] of context.options.notify.entries()) {
    const one = await notifyScenario(context, scenario, i + 1);
    result.rows.push(...one.rows);
    result.details[scenario.name] = one.details;
    result.problems.push(...one.problems.map((p) => `${scenario.name}: ${p}`));
  }
  return result;
}

export interface NotifyRun {
  ledger: OrderLedger;
  latency: LatencySummary;
  lost: number;
  expected: number;
  post: OpenLoopResult;
  cpu: CpuShare;
  delivery: { ms: number; received: number };
  report: FleetReply;
  connectMs: number;
  /** The service's queue depths during the measured schedule, from its /metrics (none for a floor). */
  queues?: QueueDepths;
}

/** Connects the clients, sends the warm-up and the measured schedule, and counts what each client got. */
export async function notifyRun(
  server: ServerProcess,
  productId: number,
  tag: string,
  s: NotifyScenario,
  options: BenchOptions,
  problems: string[],
  { followMetrics = false } = {},
): Promise<NotifyRun> {
  const ledger = new OrderLedger(tag, productId);
  const capacity = Math.ceil(s.ordersPerSecond * (options.warmupSeconds + s.seconds)) + 16;
  const fleet = await startFleet(`ws clients ${tag}`);
  try {
    const connected = await fleet.send({
      cmd: 'connect',
      url: `${server.url.replace('http', 'ws')}/ws/notifications`,
      count: s.clients,
      concurrency: 100,
      capacity,
      measureFrom: Infinity,
    });
    if (connected.open !== s.clients)
      throw new Error(`only ${connected.open} of ${s.clients} WebSocket clients connected to ${server.label}`);
    await openLoopOrders(server.url, ledger, s.ordersPerSecond, options.warmupSeconds);
    await fleet.send({ cmd: 'measure-from', at: performance.timeOrigin + performance.now() });
    const queues = followMetrics ? followQueues(server.url) : undefined;
    const load = await measureCpu(() => openLoopOrders(server.url, ledger, s.ordersPerSecond, s.seconds));
    const depths = await queues?.stop();
    const expected = ledger.created.size * s.clients;
    const delivery = await waitForDelivery(() => fleet.send({ cmd: 'status' }), expected);
    const report = await fleet.send({ cmd: 'report' });
    const perSeq = report.perSeq ?? [];
    let lost = 0;
    for (const seq of ledger.created.keys()) lost += s.clients - (perSeq[seq] ?? 0);
    const strays = perSeq.reduce((sum, count, seq) => sum + (count > 0 && !ledger.created.has(seq) ? count : 0), 0);
    problems.push(...ledger.problems, ...(report.problems ?? []));
    expect(problems, ledger.created.size === ledger.sentCount, `${ledger.created.size} of ${ledger.sentCount} POSTs answered 201`);
    expect(problems, strays === 0, `${strays} envelopes for orders that were not created`);
    expect(problems, (report.duplicates ?? 0) === 0, `${report.duplicates} duplicate envelopes`);
    expect(
      problems,
      (report.unexpectedCloses ?? 0) === 0 && (report.failed ?? 0) === 0,
      `${report.unexpectedCloses} clients closed, ${report.failed} failed to connect`,
    );
    return {
      ledger,
      latency: report.latency!,
      lost,
      expected,
      post: load.result,
      cpu: load.cpu,
      delivery,
      report,
      connectMs: connected.ms ?? NaN,
      queues: depths,
    };
  } finally {
    await fleet.close();
  }
}

async function notifyScenario({ options, profileDir }: BenchContext, s: NotifyScenario, n: number): Promise<SectionResult> {
  const problems: string[] = [];
  const floorServer = await startServer({ label: `floor-fanout-${n}`, command: floorCommand('fanout'), env: {}, raiseFdLimit: true });
  labelProcess(floorServer.pid, 'server');
  const floorProblems: string[] = [];
  const floor = await notifyRun(floorServer, 1, `${RUN_ID}f${n}`, s, options, floorProblems);
  await floorServer.stop();
  problems.push(...floorProblems.map((p) => `fan-out floor: ${p}`));
  expect(problems, floor.lost === 0, `fan-out floor lost ${floor.lost} envelopes`);

  const db = await createDatabase(`notify${n}`);
  const topology = uniqueTopology();
  const server = await startServer({
    label: `notify-${s.clients}x${s.ordersPerSecond}`,
    env: { DATABASE_URL: db.url, RABBITMQ_URL, RABBITMQ_EXCHANGE: topology.exchange, RABBITMQ_CHANGELOG_QUEUE: topology.changelogQueue },
    profileDir,
    raiseFdLimit: true,
  });
  labelProcess(server.pid, 'server');
  const product = await createUnlimitedProduct(server.url);
  const run = await notifyRun(server, product, `${RUN_ID}n${n}`, s, options, problems, { followMetrics: true });
  const pipeline = await waitForPipeline(db, undefined, 30_000);
  const stored = await verifyOrders(db, run.ledger);
  problems.push(...run.ledger.problems.filter((p) => p.startsWith('orders table')));
  expect(
    problems,
    stored.inFlight === 0 && stored.rows === run.ledger.created.size,
    `${stored.rows} orders stored for ${run.ledger.created.size} answered 201`,
  );
  expect(problems, pipeline.complete, `pipeline incomplete: ${JSON.stringify(pipeline)}`);
  const exit = await server.stop();
  expect(problems, exit === 0, `server exited with ${exit}`);
  await db.drop();

  const { latency, lost, expected } = run;
  const row: Row = {
    figure: `notification latency, ${s.clients} WS clients @ ${s.ordersPerSecond} orders/s (open loop, ${s.seconds} s)`,
    value: `p50 ${ms(latency.p50)} ms, p99 ${ms(latency.p99)} ms, lost ${lost} of ${expected.toLocaleString('en-US')}; ${depthsText(run.queues)}`,
    limit: `fan-out floor p50 ${ms(floor.latency.p50)} ms, p99 ${ms(floor.latency.p99)} ms`,
    ratio: latency.p99 / floor.latency.p99,
    target: `p99 ≤ ${s.p99FloorFactor}× the floor's, none lost`,
    pass: latency.p99 <= s.p99FloorFactor * floor.latency.p99 && lost === 0,
  };
  const describe = (r: NotifyRun) => ({
    envelopeLatency: r.latency,
    lost: r.lost,
    expected: r.expected,
    post: r.post,
    cpu: r.cpu,
    delivery: r.delivery,
    connectMs: r.connectMs,
    envelopesChecked: r.report.checked,
    received: r.report.received,
    worstLatencyBySecondMs: r.report.worstBySecond,
    queues: r.queues,
  });
  return {
    rows: [row],
    problems,
    details: { clients: s.clients, ordersPerSecond: s.ordersPerSecond, seconds: s.seconds, service: describe(run), floor: describe(floor) },
  };
}

/** The deepest each queue got (and where it ended) while the orders came, for the table. */
function depthsText(queues: QueueDepths | undefined): string {
  if (!queues || queues.samples.length === 0) return 'queue depths not read';
  const { max, last } = queues;
  return (
    `deepest: outbox ${max.outboxBacklogEvents ?? '?'} events (at the end ${last.outboxBacklogEvents ?? '?'}), ` +
    `send buffers ${((max.websocketBufferedBytes ?? Number.NaN) / 1024).toFixed(0)} KB, event-loop lag ${ms((max.eventLoopLagSeconds ?? Number.NaN) * 1000)} ms`
  );
}

/** Polls the clients until every expected envelope arrived, or nothing more arrived for 5 s. */
async function waitForDelivery(status: () => Promise<FleetReply>, expected: number): Promise<{ ms: number; received: number }> {
  const started = performance.now();
  let last = -1;
  let since = started;
  for (;;) {
    const received = (await status()).received ?? 0;
    if (received !== last) {
      last = received;
      since = performance.now();
    }
    if (received >= expected || performance.now() - since > 5000 || performance.now() - started > 60_000) {
      return { ms: Math.round(performance.now() - started), received };
    }
    await sleep(50);
  }
}

interface IdleMemory {
  before: MemoryUsage;
  after: MemoryUsage;
  rssPerClientKB: number;
  heapPerClientKB: number;
  externalPerClientKB: number;
  connectMs: number;
  cpu: CpuShare;
}

/** RSS and heap of a server before and after `count` idle clients connect (after warm-up clients came and went). */
async function idleMemory(server: ServerProcess, count: number, problems: string[]): Promise<IdleMemory> {
  const wsUrl = `${server.url.replace('http', 'ws')}/ws/notifications`;
  // A first batch connects and leaves, so that code warmed up once is not counted per client.
  const warm = await startFleet(`warm-up clients ${server.label}`);
  await warm.send({ cmd: 'connect', url: wsUrl, count: 100, concurrency: 50, capacity: 1, measureFrom: Infinity });
  await warm.close();
  await sleep(1000);
  const before = { ...(await server.memory()), rss: server.rss() };
  const fleet = await startFleet(`idle clients ${server.label}`);
  try {
    const connected = await measureCpu(() =>
      fleet.send({ cmd: 'connect', url: wsUrl, count, concurrency: 200, capacity: 1, measureFrom: Infinity }),
    );
    await sleep(2000);
    const after = { ...(await server.memory()), rss: server.rss() };
    const status = await fleet.send({ cmd: 'status' });
    expect(
      problems,
      connected.result.open === count && status.open === count,
      `${status.open} of ${count} idle clients open on ${server.label} (${connected.result.failed} failed)`,
    );
    expect(problems, (status.received ?? 0) === 0, `idle clients received ${status.received} frames from ${server.label}`);
    const per = (a: number, b: number) => (b - a) / count / 1024;
    return {
      before,
      after,
      rssPerClientKB: per(before.rss, after.rss),
      heapPerClientKB: per(before.heapUsed, after.heapUsed),
      externalPerClientKB: per(before.external, after.external),
      connectMs: connected.result.ms ?? NaN,
      cpu: connected.cpu,
    };
  } finally {
    await fleet.close();
  }
}

/** A notifier (ROLE=notifier on PostgreSQL + RabbitMQ) holding idle clients, against a bare ws server holding as many. */
export async function memorySection({ options, profileDir }: BenchContext): Promise<SectionResult> {
  const problems: string[] = [];
  const count = options.idleClients;
  const floorServer = await startServer({ label: 'floor-idle', command: floorCommand('fanout'), env: {}, probe: true, raiseFdLimit: true });
  labelProcess(floorServer.pid, 'server');
  const floor = await idleMemory(floorServer, count, problems);
  await floorServer.stop();

  const db = await createDatabase('memory');
  const topology = uniqueTopology();
  const server = await startServer({
    label: 'notifier-idle',
    env: {
      ROLE: 'notifier',
      DATABASE_URL: db.url,
      RABBITMQ_URL,
      RABBITMQ_EXCHANGE: topology.exchange,
      RABBITMQ_CHANGELOG_QUEUE: topology.changelogQueue,
    },
    profileDir,
    probe: true,
    raiseFdLimit: true,
  });
  labelProcess(server.pid, 'server');
  const notifier = await idleMemory(server, count, problems);
  const exit = await server.stop();
  expect(problems, exit === 0, `notifier exited with ${exit}`);
  await db.drop();

  const kb = (n: number) => n.toFixed(1);
  const row: Row = {
    figure: `memory per idle WebSocket client (ROLE=notifier, ${count.toLocaleString('en-US')} clients)`,
    value: `${kb(notifier.rssPerClientKB)} KB RSS (heap ${kb(notifier.heapPerClientKB)} KB)`,
    limit: `bare ws server ${kb(floor.rssPerClientKB)} KB RSS (heap ${kb(floor.heapPerClientKB)} KB)`,
    ratio: notifier.rssPerClientKB / floor.rssPerClientKB,
    target: `≤ ${TARGETS.idleClientKB} KB each`,
    pass: notifier.rssPerClientKB <= TARGETS.idleClientKB,
  };
  return { rows: [row], problems, details: { count, notifier, floor } };
}

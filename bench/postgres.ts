import { randomUUID } from 'node:crypto';
import { expect, sleep, type BenchContext, type SectionResult } from './context.js';
import { loadGetOrders, loadPostOrders, OrderLedger, verifyOrders, type ReadCheck } from './http.js';
import { adminDatabase, createDatabase, RABBITMQ_URL, RUN_ID, tempDir, uniqueTopology, type BenchDatabase } from './infra.js';
import { labelProcess, measureCpu } from './machine.js';
import { createOrderScript, getOrderScript, runPgbench } from './pgbench.js';
import { quiesce, tableWrites, writesPerOrder } from './pgstats.js';
import { exitOf, httpRequest, spawnNode } from './process.js';
import { ms, rate, type Row } from './report.js';
import { floorCommand, ROOT, startServer } from './server.js';
import { createOrderStatement, getOrderStatement } from './statements.js';
import { openCountingClient, type CountingClient } from './ws-counter.js';
import { TARGETS } from './targets.js';

/**
 * POST and GET /orders against real PostgreSQL and RabbitMQ with the whole pipeline running (ROLE=all:
 * API, relay, change-log writer, notifier with one WebSocket client), then pgbench running the same SQL
 * on a database of its own at the same client count, for the same time.
 */
export async function postgresSection({ options, profileDir }: BenchContext): Promise<SectionResult> {
  const problems: string[] = [];
  const details: Record<string, unknown> = {};
  const { connections, seconds, warmupSeconds } = options;

  const appDb = await createDatabase('app');
  const topology = uniqueTopology();
  const env = {
    DATABASE_URL: appDb.url,
    RABBITMQ_URL,
    RABBITMQ_EXCHANGE: topology.exchange,
    RABBITMQ_CHANGELOG_QUEUE: topology.changelogQueue,
  };
  const server = await startServer({ label: 'postgres-post', env, profileDir });
  labelProcess(server.pid, 'server');
  const product = await createUnlimitedProduct(server.url);
  const ledger = new OrderLedger(`${RUN_ID}pg`, product);
  const ws = await openCountingClient(`${server.url.replace('http', 'ws')}/ws/notifications`, ledger);

  await loadPostOrders(server.url, connections, warmupSeconds, ledger);
  const writesBefore = await tableWrites(appDb);
  const post = await measureCpu(() => loadPostOrders(server.url, connections, seconds, ledger));
  const pipeline = await waitForPipeline(appDb, ws, 60_000);
  const stored = await verifyOrders(appDb, ledger);
  // Statistics reach the views within a second or so of the last write.
  await sleep(1500);
  const appWrites = writesPerOrder(writesBefore, await tableWrites(appDb));
  expect(problems, pipeline.complete, `pipeline incomplete 60 s after the POST run: ${JSON.stringify(pipeline)}`);
  expect(problems, ws.duplicates() === 0, `the WebSocket client got ${ws.duplicates()} duplicate envelopes`);
  expect(
    problems,
    post.result.errors === 0 && post.result.timeouts === 0,
    `POST run: ${post.result.errors} errors, ${post.result.timeouts} timeouts`,
  );
  problems.push(...ledger.problems.map((p) => `POST: ${p}`), ...ws.problems.map((p) => `WebSocket: ${p}`));

  ws.close();
  const exit = await server.stop();
  expect(problems, exit === 0, `postgres-post server exited with ${exit}`);
  const leftAfterPost = await quiesce(adminDatabase(), appDb);
  expect(problems, leftAfterPost.ended === 0, `statements still running after postgres-post stopped: ${leftAfterPost.queries.join('; ')}`);

  // A fresh process for reads, so that each has a profile of its own.
  const reader = await startServer({ label: 'postgres-get', env, profileDir });
  labelProcess(reader.pid, 'server');
  const ids = [...ledger.created.values()];
  const readCheck: ReadCheck = { problems: [], statuses: {} };
  await loadGetOrders(reader.url, connections, warmupSeconds, ids, readCheck);
  const get = await measureCpu(() => loadGetOrders(reader.url, connections, seconds, ids, readCheck));
  problems.push(...readCheck.problems);
  expect(
    problems,
    Object.keys(readCheck.statuses).every((s) => s === '200'),
    `GET statuses ${JSON.stringify(readCheck.statuses)}`,
  );
  const readerExit = await reader.stop();
  expect(problems, readerExit === 0, `postgres-get server exited with ${readerExit}`);
  await quiesce(adminDatabase(), appDb);

  // Between the two: node:http and a driver running the same read, nothing else (no framework, hooks or logs),
  // once with pg (the service's driver) and once with postgres.js, which pipelines and keeps statements prepared.
  const bareRead = async (mode: 'pg-get' | 'postgresjs-get', name: string) => {
    const bare = await startServer({
      label: `floor-${mode}`,
      command: floorCommand(mode),
      env: { FLOOR_DATABASE_URL: appDb.url, FLOOR_SQL: (await getOrderStatement(1)).text, FLOOR_POOL_SIZE: '20' },
    });
    labelProcess(bare.pid, 'server');
    const check: ReadCheck = { problems: [], statuses: {} };
    await loadGetOrders(bare.url, connections, warmupSeconds, ids, check);
    const measured = await measureCpu(() => loadGetOrders(bare.url, connections, seconds, ids, check));
    problems.push(...check.problems.map((p) => `bare node + ${name} GET: ${p}`));
    expect(
      problems,
      Object.keys(check.statuses).every((s) => s === '200'),
      `bare node + ${name} GET statuses ${JSON.stringify(check.statuses)}`,
    );
    await bare.stop();
    await quiesce(adminDatabase(), appDb);
    return measured;
  };
  const bareGet = await bareRead('pg-get', 'pg');
  const barePostgresjsGet = await bareRead('postgresjs-get', 'postgres.js');
  // pgbench gets the machine to itself: nothing of the app database left behind.
  await appDb.drop();

  // The limit: pgbench, same statements, a database of its own migrated by the service's CLI.
  const limitDb = await createDatabase('limit');
  await migrate(limitDb);
  const pid = await limitDb.scalar<number>(
    `INSERT INTO products (name, price, stock) VALUES ('pgbench unlimited', 19.99, NULL) RETURNING id`,
  );
  const dir = tempDir('pgbench');
  const createStatement = await createOrderStatement({
    productId: pid,
    quantity: 1,
    clientName: 'x',
    clientEmail: 'x@example.com',
    now: new Date(),
    eventId: randomUUID(),
    idempotencyKey: null,
  });
  const createVars = { pid, name: 'pgbench client', email: 'pgbench@bench.example.com', ts: new Date().toISOString() };
  const createScript = createOrderScript(createStatement);
  const bench = { db: limitDb, clients: connections, dir };
  const warmCreate = await runPgbench({
    ...bench,
    script: createScript,
    variables: createVars,
    seconds: warmupSeconds,
    label: 'create-warmup',
    log: false,
  });
  await sleep(1500);
  const limitWritesBefore = await tableWrites(limitDb);
  const create = await measureCpu(() =>
    runPgbench({ ...bench, script: createScript, variables: createVars, seconds, label: 'create', log: true }),
  );
  const created = warmCreate.transactions + create.result.transactions;
  const limitOrders = await limitDb.scalar<string>('SELECT count(*) FROM orders');
  const limitEvents = await limitDb.scalar<string>('SELECT count(*) FROM outbox');
  expect(
    problems,
    Number(limitOrders) === created && Number(limitEvents) === created,
    `pgbench: ${created} transactions, but ${limitOrders} orders and ${limitEvents} outbox rows`,
  );
  expect(problems, warmCreate.failed + create.result.failed === 0, `pgbench create: ${create.result.failed} failed transactions`);
  await sleep(1500);
  const limitWrites = writesPerOrder(limitWritesBefore, await tableWrites(limitDb));

  const range = await limitDb.scalar<{ min: number; max: number }>("SELECT json_build_object('min', min(id), 'max', max(id)) FROM orders");
  const readScript = getOrderScript(await getOrderStatement(1));
  const readVars = { minid: range.min, maxid: range.max };
  await runPgbench({ ...bench, script: readScript, variables: readVars, seconds: warmupSeconds, label: 'read-warmup', log: false });
  const read = await measureCpu(() => runPgbench({ ...bench, script: readScript, variables: readVars, seconds, label: 'read', log: true }));
  expect(problems, read.result.failed === 0, `pgbench read: ${read.result.failed} failed transactions`);
  await limitDb.drop();

  Object.assign(details, {
    post: {
      ...post.result,
      cpu: post.cpu,
      pipelineDrainMs: pipeline.ms,
      ordersStored: stored,
      webSocketReceived: ws.unique(),
      rowWritesPerOrder: appWrites,
    },
    get: { ...get.result, cpu: get.cpu },
    bareNodePgGet: { ...bareGet.result, cpu: bareGet.cpu },
    bareNodePostgresjsGet: { ...barePostgresjsGet.result, cpu: barePostgresjsGet.cpu },
    pgbenchCreate: { ...create.result, cpu: create.cpu, warmupTransactions: warmCreate.transactions, rowWritesPerOrder: limitWrites },
    pgbenchRead: { ...read.result, cpu: read.cpu },
  });
  const postRatio = post.result.requestsPerSecond / create.result.tps;
  const getRatio = get.result.requestsPerSecond / read.result.tps;
  const rows: Row[] = [
    {
      figure: `POST /orders/, ${connections} conn, full pipeline (PG + RabbitMQ)`,
      value: `${rate(post.result.requestsPerSecond)} req/s, p50 ${ms(post.result.latency.p50)} ms, p99 ${ms(post.result.latency.p99)} ms`,
      limit: `pgbench ${rate(create.result.tps)} tps, p50 ${ms(create.result.latency.p50)} ms, p99 ${ms(create.result.latency.p99)} ms`,
      ratio: postRatio,
      target: `≥ ${TARGETS.postRatio.toFixed(2)}`,
      pass: postRatio >= TARGETS.postRatio,
    },
    {
      figure: `GET /orders/{id}, ${connections} conn`,
      value: `${rate(get.result.requestsPerSecond)} req/s, p50 ${ms(get.result.latency.p50)} ms, p99 ${ms(get.result.latency.p99)} ms`,
      limit:
        `pgbench ${rate(read.result.tps)} tps, p50 ${ms(read.result.latency.p50)} ms, p99 ${ms(read.result.latency.p99)} ms; ` +
        `bare node:http + pg ${rate(bareGet.result.requestsPerSecond)} req/s (${(bareGet.result.requestsPerSecond / read.result.tps).toFixed(3)} of pgbench), ` +
        `+ postgres.js ${rate(barePostgresjsGet.result.requestsPerSecond)} req/s (${(barePostgresjsGet.result.requestsPerSecond / read.result.tps).toFixed(3)})`,
      ratio: getRatio,
      target: `≥ ${TARGETS.getRatio.toFixed(2)}`,
      pass: getRatio >= TARGETS.getRatio,
    },
  ];
  return { rows, details, problems };
}

export async function createUnlimitedProduct(url: string): Promise<number> {
  const answer = await httpRequest(`${url}/products`, { method: 'POST', body: JSON.stringify({ name: 'Bench unlimited', price: 19.99 }) });
  const product = JSON.parse(answer.body) as { id?: number; stock?: unknown };
  if (answer.status !== 201 || typeof product.id !== 'number' || product.stock !== null) {
    throw new Error(`POST /products answered ${answer.status} ${answer.body}`);
  }
  return product.id;
}

/** The service's own `migrate` command, so the pgbench database has exactly the service's schema. */
async function migrate(db: BenchDatabase): Promise<void> {
  const child = spawnNode({ args: ['dist/cli.js', 'migrate'], cwd: ROOT, env: { DATABASE_URL: db.url, LOG_LEVEL: 'warn' } });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const code = await exitOf(child);
  if (code !== 0) throw new Error(`migrate exited ${code}: ${output}`);
}

export interface PipelineState {
  complete: boolean;
  ms: number;
  orders: number;
  changeLog: number;
  unsent: number;
  webSocket: number;
}

/** Waits until every stored order's event is shipped, in the change log and at the WebSocket client. */
export async function waitForPipeline(db: BenchDatabase, ws: CountingClient | undefined, timeoutMs: number): Promise<PipelineState> {
  const started = performance.now();
  for (;;) {
    const s = await db.scalar<{ orders: number; changes: number; unsent: number }>(
      `SELECT json_build_object('orders', (SELECT count(*) FROM orders), 'changes', (SELECT count(*) FROM order_changes),
        'unsent', (SELECT count(*) FROM outbox o, outbox_checkpoint c WHERE (o.xid, o.position) > (c.xid, c.position)))`,
    );
    const wsCount = ws ? ws.unique() : s.orders;
    const complete = s.changes === s.orders && s.unsent === 0 && wsCount === s.orders;
    const elapsed = performance.now() - started;
    if (complete || elapsed > timeoutMs) {
      return { complete, ms: Math.round(elapsed), orders: s.orders, changeLog: s.changes, unsent: s.unsent, webSocket: wsCount };
    }
    await sleep(50);
  }
}

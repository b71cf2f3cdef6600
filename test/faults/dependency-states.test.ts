import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { afterAll, describe, inject, it } from 'vitest';
import { createTestDatabase } from '../helpers/databases.js';
import { deleteTopology } from '../helpers/service.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { sleep } from '../helpers/timing.js';
import { openEventClient } from '../helpers/ws-client.js';
import { shortString, startFrameInjector } from '../messaging/frame-injector.js';
import { cleanups } from './states/cleanup.js';
import { adminFor, personalData, postgresDatabase, startService } from './states/fixtures.js';
import { brokerCheck, checks, databaseCheck, describeAnswer, isUnavailable, patchOrder, postOrder, readyz, send, until, type Answer } from './states/http.js';
import { episodeLines, linesWith, logEntries, tally, warnings } from './states/logs.js';
import { databaseName, limitedRole, prepareDatabase, terminateBackends } from './states/postgres.js';
import { mountSmallDisk } from './states/tmpfs.js';

const postgresUrl = inject('postgresUrl');
const rabbitmqUrl = inject('rabbitmqUrl');
const required = process.env.REQUIRE_REAL_SERVICES === '1';
const noPostgres = postgresUrl ? '' : ' (skipped: PostgreSQL not reachable)';
const noBroker = rabbitmqUrl ? noPostgres : ' (skipped: RabbitMQ not reachable)';

/** A fresh embedded data folder takes about 27 MB (PGlite's catalog and WAL); the test fills the rest. */
const SMALL_DISK_MB = 64;

const figure = (text: string) => process.stdout.write(`dependency states: ${text}\n`);
const unexpected = (answers: Answer[], ok: (a: Answer) => boolean) => answers.filter((a) => !ok(a)).map(describeAnswer);
const notCreated = (answers: Answer[]) => unexpected(answers, (a) => a.status === 201);
const idOf = (a: Answer) => a.body.id as number;
const slowest = (answers: Answer[]) => `${Math.round(Math.max(0, ...answers.map((a) => a.ms)))} ms`;

// The first three mostly wait (a 10 s hold, a cut, an alarm): they run together. The others measure answers under load, alone.
describe('the service between up and down', () => {
  const undo = cleanups();
  afterAll(() => undo.all());

  it.concurrent("when the embedded database's disk is full, then orders answer 503 storage_full, /readyz says disk_full, the log says it once without personal data, and orders are taken again once space is freed", { timeout: 60_000 }, async (context) => {
    const { expect } = context;
    const defer = undo.forTest(context);
    const disk = mountSmallDisk(SMALL_DISK_MB);
    if ('reason' in disk) {
      if (required) throw new Error(`REQUIRE_REAL_SERVICES=1 but ${disk.reason}`);
      figure(`disk full skipped: ${disk.reason}`);
      return context.skip(disk.reason);
    }
    defer(async () => disk.unmount());
    const service = await startService(defer, { DATA_DIR: path.join(disk.dir, 'data') });
    const base = service.url;
    const people = personalData();
    const before = await Promise.all([1, 2, 3].map(() => postOrder(base, people.next())));
    expect(notCreated(before)).toEqual([]);

    const filled = disk.fill();
    // Writes that fit in pages with room left still succeed; the first that needs a new page is refused.
    const fitted: Answer[] = [];
    let refused: Answer | undefined;
    for (let i = 0; i < 500 && !refused; i++) {
      const answer = await postOrder(base, people.next());
      if (answer.status === 201) fitted.push(answer);
      else refused = answer;
    }
    const full: Answer[] = refused ? [refused] : [];
    for (let i = 0; i < 30; i++) full.push(await postOrder(base, people.next()));
    const ready = await readyz(base);
    expect(refused, `${fitted.length} orders taken on a full disk, none refused`).toBeDefined();
    expect(unexpected(full, (a) => isUnavailable(a, 'storage_full') && a.retryAfter === '30')).toEqual([]);
    expect([ready.status, databaseCheck(ready)]).toEqual([503, 'disk_full']);

    disk.free();
    const first = await until(() => postOrder(base, people.next()), (a) => a.status === 201, 5_000, 50);
    const after = [first.value, ...(await Promise.all([1, 2, 3].map(() => postOrder(base, people.next()))))];
    expect(notCreated(after)).toEqual([]);
    // Nothing acknowledged before, during or since is missing.
    const acknowledged = [...before, ...fitted, ...after].map(idOf);
    const reads = await Promise.all(acknowledged.map(async (id) => `${id}: ${(await send(`${base}/orders/${id}`)).status}`));
    expect(reads.filter((r) => !r.endsWith(': 200'))).toEqual([]);
    // /readyz shows a full disk for 10 s after the last write it refused.
    const up = await until(() => readyz(base), (a) => a.status === 200 && databaseCheck(a) === 'up', 15_000, 250);

    const entries = logEntries(service.output());
    figure(
      `disk full: ${Math.round(filled / 2 ** 20)} MiB filler; ${fitted.length} orders still fitted, then ${full.length} POSTs answered 503 storage_full ` +
        `(slowest ${slowest(full)}); first 201 ${Math.round(first.ms)} ms after freeing; /readyz up ${(up.ms / 1000).toFixed(1)} s after; log at warn+: ${tally(warnings(entries))}`,
    );
    expect(episodeLines(entries, 'database disk_full').map((e) => e.level)).toEqual([50]);
    expect(entries.filter((e) => e.level >= 50).map((e) => e.msg)).toHaveLength(1);
    expect(linesWith(service.output(), people.secrets())).toEqual([]);
    expect(up.met, `/readyz ${describeAnswer(up.value)} ${JSON.stringify(up.value.body)}`).toBe(true);
  });

  it.skipIf(!postgresUrl).concurrent(`when PostgreSQL is cut off, then GET /products/{id} answers 503 service_unavailable with Retry-After, never 500, and 200 once it is back${noPostgres}`, { timeout: 60_000 }, async (context) => {
    const { expect } = context;
    const defer = undo.forTest(context);
    const database = await postgresDatabase(defer);
    const target = new URL(database.url);
    const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    defer(() => proxy.close());
    target.hostname = '127.0.0.1';
    target.port = String(proxy.port);
    const service = await startService(defer, { DATABASE_URL: target.toString() });
    const base = service.url;
    expect((await send(`${base}/products/1`)).status).toBe(200);

    await proxy.reset();
    const cut: Answer[] = [];
    for (let i = 0; i < 10; i++) cut.push(await send(`${base}/products/1`));
    const ready = await readyz(base);
    await proxy.restore();
    const back = await until(() => send(`${base}/products/1`), (a) => a.status === 200, 5_000, 50);

    figure(`cut off: ${cut.length} GET /products/1 answered ${[...new Set(cut.map((a) => `${a.status} ${a.code ?? ''}`))].join(', ')} (slowest ${slowest(cut)}); 200 again ${Math.round(back.ms)} ms after restore`);
    expect(unexpected(cut, (a) => isUnavailable(a, 'service_unavailable') && a.retryAfter === '2')).toEqual([]);
    expect(ready.status).toBe(503);
    expect(databaseCheck(ready)).toMatch(/^down: /);
    expect(back.met, describeAnswer(back.value)).toBe(true);
  });

  it.skipIf(!postgresUrl || !rabbitmqUrl).concurrent(`when RabbitMQ blocks publishers, then /readyz stays 200 with broker blocked, orders are taken, and their events reach WebSocket clients once it unblocks, each once${noBroker}`, { timeout: 60_000 }, async (context) => {
    const { expect } = context;
    const defer = undo.forTest(context);
    const database = await postgresDatabase(defer);
    const suffix = randomUUID().slice(0, 8);
    const exchange = `orders.test.blocked.${suffix}`;
    const queue = `orders.changelog.test.blocked.${suffix}`;
    defer(() => deleteTopology(rabbitmqUrl, exchange, queue));
    const target = new URL(rabbitmqUrl);
    const injector = await startFrameInjector({ host: target.hostname, port: Number(target.port || 5672) });
    defer(() => injector.close());
    target.hostname = '127.0.0.1';
    target.port = String(injector.port);
    const service = await startService(defer, { DATABASE_URL: database.url, RABBITMQ_URL: target.toString(), RABBITMQ_EXCHANGE: exchange, RABBITMQ_CHANGELOG_QUEUE: queue });
    const base = service.url;
    const subscribed = await until(() => readyz(base), (a) => a.status === 200 && brokerCheck(a) === 'up' && checks(a).notifications === 'up', 10_000);
    expect(subscribed.met, JSON.stringify(subscribed.value.body)).toBe(true);
    const ws = await openEventClient(`${base.replace('http', 'ws')}/ws/notifications`);
    defer(async () => ws.close());
    // One event through before the alarm: the pipeline works, and the link is idle for the injected frame.
    const warmup = await postOrder(base, personalData().next());
    await ws.waitFor(1, 10_000);
    await sleep(200);

    injector.sendMethod(10, 60, shortString('low on memory')); // connection.blocked
    const blocked = await until(() => readyz(base), (a) => brokerCheck(a) === 'blocked', 5_000, 50);
    const during: Answer[] = [];
    for (let i = 0; i < 5; i++) during.push(await postOrder(base, personalData().next()));
    const readyWhileBlocked = await readyz(base);
    await sleep(1_000);
    const deliveredWhileBlocked = ws.events.filter((e) => e.order_id !== idOf(warmup)).length;

    injector.sendMethod(10, 61); // connection.unblocked
    const unblockedAt = performance.now();
    const up = await until(() => readyz(base), (a) => a.status === 200 && brokerCheck(a) === 'up', 5_000, 50);
    const ids = during.map(idOf);
    const ours = () => ws.events.filter((e) => ids.includes(e.order_id));
    const arrived = await until(async () => ours().length, (n) => n >= ids.length, 15_000, 50);
    const lastArrival = Math.max(...ours().map((e) => ws.receivedAt.get(e.id)!)) - unblockedAt;
    // Time for a repeat to show.
    await sleep(500);

    const entries = logEntries(service.output());
    figure(
      `blocked: /readyz broker blocked ${Math.round(blocked.ms)} ms after connection.blocked; ${during.length} orders taken meanwhile (slowest ${slowest(during)}); ` +
        `${deliveredWhileBlocked} events delivered while blocked; broker up ${Math.round(up.ms)} ms after connection.unblocked, their events ${Math.round(lastArrival)} ms after; log at warn+: ${tally(warnings(entries))}`,
    );
    expect([readyWhileBlocked.status, brokerCheck(readyWhileBlocked)]).toEqual([200, 'blocked']);
    expect(notCreated(during)).toEqual([]);
    expect(deliveredWhileBlocked).toBe(0);
    expect(up.met, JSON.stringify(up.value.body)).toBe(true);
    expect(arrived.met).toBe(true);
    expect(ours().map((e) => `${e.order_id}:${e.type}:${e.sequence}`).sort()).toEqual(ids.map((id) => `${id}:order.created:1`).sort());
    expect(entries.filter((e) => e.msg === 'RabbitMQ is blocking publishes')).toHaveLength(1);
    expect(entries.filter((e) => e.msg === 'RabbitMQ accepts publishes again')).toHaveLength(1);
  });

  it.skipIf(!postgresUrl)(`when the database turns read-only (a demoted primary), then writes answer 503 database_read_only, reads still work, /readyz says read_only, and writes succeed again without a restart once it is writable${noPostgres}`, { timeout: 60_000 }, async (context) => {
    const { expect } = context;
    const defer = undo.forTest(context);
    const database = await postgresDatabase(defer);
    const service = await startService(defer, { DATABASE_URL: database.url });
    const base = service.url;
    const sql = await adminFor(defer, postgresUrl);
    const people = personalData();
    const order = await postOrder(base, people.next());
    expect(order.status).toBe(201);

    await sql.query(`ALTER DATABASE ${database.name} SET default_transaction_read_only = on`);
    defer(() => sql.query(`ALTER DATABASE ${database.name} RESET default_transaction_read_only`));
    // As after a failover: the sessions end, and the ones the pool opens next are read-only.
    const terminated = await terminateBackends(sql, database.name);
    const writes: Answer[] = [];
    for (let i = 0; i < 5; i++) writes.push(await postOrder(base, people.next()), await patchOrder(base, idOf(order), 'Confirmed'));
    const read = await send(`${base}/orders/${idOf(order)}`);
    const ready = await readyz(base);
    expect(unexpected(writes, (a) => isUnavailable(a, 'database_read_only') && a.retryAfter === '5')).toEqual([]);
    expect([read.status, read.body.status]).toEqual([200, 'Pending']);
    expect([ready.status, databaseCheck(ready)]).toEqual([503, 'read_only']);

    // Writable again; the service is not told, and its pooled connections are still read-only.
    await sql.query(`ALTER DATABASE ${database.name} SET default_transaction_read_only = off`);
    const writable = await until(() => postOrder(base, people.next()), (a) => a.status === 201, 5_000, 100);
    const patched = await patchOrder(base, idOf(order), 'Confirmed');
    const up = await until(() => readyz(base), (a) => a.status === 200, 5_000, 100);

    const entries = logEntries(service.output());
    figure(
      `read-only: ${terminated} sessions ended; ${writes.length} writes answered ${[...new Set(writes.map((a) => a.code))].join(', ')} (slowest ${slowest(writes)}); ` +
        `writable again: first 201 after ${Math.round(writable.ms)} ms, /readyz 200 after ${Math.round(up.ms)} ms; log at warn+: ${tally(warnings(entries))}`,
    );
    expect(writable.met, describeAnswer(writable.value)).toBe(true);
    expect(patched.status).toBe(200);
    expect(up.met, `/readyz ${JSON.stringify(up.value.body)}`).toBe(true);
    expect(episodeLines(entries, 'database read_only')).toHaveLength(1);
    expect(linesWith(service.output(), people.secrets())).toEqual([]);
  });

  it.skipIf(!postgresUrl)(`when the server ends the service's sessions again and again (57P01, as in a shutdown), then requests answer 201 or 503 service_unavailable, never 500${noPostgres}`, { timeout: 60_000 }, async (context) => {
    const { expect } = context;
    const defer = undo.forTest(context);
    const database = await postgresDatabase(defer);
    const service = await startService(defer, { DATABASE_URL: database.url });
    const base = service.url;
    const sql = await adminFor(defer, postgresUrl);
    const people = personalData();

    let running = true;
    const answers: Answer[] = [];
    const client = async () => {
      for (let i = 0; running && i < 1_000; i++) {
        const created = await postOrder(base, people.next());
        answers.push(created);
        if (created.status === 201) answers.push(await send(`${base}/orders/${idOf(created)}`));
      }
    };
    const clients = Promise.all([1, 2, 3, 4].map(client));
    let rounds = 0;
    let ended = 0;
    for (const stopAt = performance.now() + 3_000; performance.now() < stopAt; rounds++) {
      ended += await terminateBackends(sql, database.name);
      await sleep(50);
    }
    running = false;
    await clients;
    const recovered = await until(() => postOrder(base, people.next()), (a) => a.status === 201, 5_000, 100);

    const refused = answers.filter((a) => a.status === 503);
    const entries = logEntries(service.output());
    figure(
      `sessions ended: ${ended} in ${rounds} rounds over 3 s; ${answers.length} answers, ${answers.length - refused.length} 2xx, ${refused.length} 503 ` +
        `(slowest ${slowest(refused)}); log at warn+: ${tally(warnings(entries))}`,
    );
    expect(unexpected(answers, (a) => a.status === 201 || a.status === 200 || (isUnavailable(a, 'service_unavailable') && a.retryAfter === '2'))).toEqual([]);
    expect(ended).toBeGreaterThan(0);
    expect(recovered.met, describeAnswer(recovered.value)).toBe(true);
    expect(episodeLines(entries, 'database unreachable')).toHaveLength(1);
    expect(entries.filter((e) => e.msg === 'request failed')).toEqual([]);
    expect(linesWith(service.output(), people.secrets())).toEqual([]);
  });

  it.skipIf(!postgresUrl)(`when the database refuses more connections (53300), then requests answer 2xx or 503 database_overloaded within 1 s, never 500, and the log says it once${noPostgres}`, { timeout: 60_000 }, async (context) => {
    const { expect } = context;
    const defer = undo.forTest(context);
    const database = await createTestDatabase('postgres');
    defer(() => database.drop());
    const sql = await adminFor(defer, postgresUrl);
    // Superusers are exempt from connection limits: the service logs in as a role of its own, allowed 3.
    const role = await limitedRole(sql, postgresUrl, databaseName(database.url!), 3);
    defer(() => role.drop());
    await prepareDatabase(role.url);
    const service = await startService(defer, { DATABASE_URL: role.url, DATABASE_POOL_SIZE: '12' });
    const base = service.url;
    const people = personalData();
    const order = await postOrder(base, people.next());
    expect(order.status).toBe(201);

    const answers: Answer[] = [];
    for (let round = 0; round < 5; round++) {
      const burst = Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? postOrder(base, people.next()) : send(`${base}/orders/${idOf(order)}`)));
      answers.push(...(await Promise.all(burst)));
    }

    const refused = answers.filter((a) => a.status === 503);
    const entries = logEntries(service.output());
    // Each part that met the limit says so once per episode of its own (requests, the relay, the change-log writer).
    const limitLines = warnings(entries).filter((e) => e.line.includes('53300'));
    figure(
      `connection limit 3, pool 12: ${answers.length} concurrent requests, ${answers.length - refused.length} 2xx, ${refused.length} 503 ` +
        `(slowest ${slowest(refused)}); log at warn+: ${tally(warnings(entries))}`,
    );
    expect(unexpected(answers, (a) => a.status === 201 || a.status === 200 || (isUnavailable(a, 'database_overloaded') && a.retryAfter === '2' && a.ms < 1_000))).toEqual([]);
    expect(refused.length).toBeGreaterThan(0);
    expect(episodeLines(entries, 'database overloaded')).toHaveLength(1);
    expect(limitLines.length, tally(limitLines)).toBeLessThanOrEqual(Math.min(6, refused.length / 4));
    expect(linesWith(service.output(), people.secrets())).toEqual([]);
  });
});

import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { postgresBinDir, startPgCluster } from '../helpers/pg-cluster.js';
import { sleep } from '../helpers/timing.js';
import { startFailover, type Failover } from './failover/harness.js';
import { badAnswers, checkClient, historyProblems, lostWrites, readDatabase, tally, waitForClients, type ClientFindings, type DatabaseView } from './failover/verify.js';
import { clientFigures, notableLogLines } from './failover/figures.js';
import type { FailoverClient } from './failover/ws-client.js';

const rabbitmqUrl = inject('rabbitmqUrl');
const missing = [postgresBinDir() ? '' : 'PostgreSQL binaries (initdb, pg_ctl, pg_basebackup) not found (set PG_BIN_DIR)', rabbitmqUrl ? '' : 'RabbitMQ not reachable']
  .filter(Boolean)
  .join('; ');
const required = process.env.REQUIRE_REAL_SERVICES === '1';

const WRITERS = 4;
/** Requests per second from all writers together: steady load that leaves the 2-core machine room for the failover. */
const RATE = 40;
/** Bounds on waiting for the first 201 after the failover, for clients and histories to catch up, and for the rewind to be noticed. */
const RECOVERY_MS = 10_000;
const CATCH_UP_MS = 8_000;
const NOTICE_MS = 5_000;

const figure = (line: string) => process.stdout.write(`failover: ${line}\n`);

/** The checks every scenario shares: what the writers were told is there, and each client has every event once, in order. */
async function settle(f: Failover, requiredFor: (c: FailoverClient, db: DatabaseView) => string[]) {
  await f.load.stop();
  const db = await readDatabase(f.base, CATCH_UP_MS);
  await waitForClients(f.clients, (c) => requiredFor(c, db), CATCH_UP_MS);
  await Promise.all(f.clients.map((c) => c.stop()));
  const findings = f.clients.map((c) => checkClient(c, db, requiredFor(c, db)));
  return { db, findings, lost: lostWrites(f.load.acknowledged.values(), db) };
}

function expectClientsExact(findings: readonly ClientFindings[]): void {
  findings.forEach((f, i) => {
    expect.soft(f.missed.length, `client ${i}: events it never got (e.g. ${f.missed.slice(0, 3).join(', ')})`).toBe(0);
    expect.soft(f.duplicates, `client ${i}: events it got twice`).toBe(0);
    expect.soft(f.outOfOrder, `client ${i}: events out of their order's sequence`).toEqual([]);
  });
}

describe('PostgreSQL failover to a streaming standby', () => {
  it.runIf(Boolean(missing) && required)('REQUIRE_REAL_SERVICES=1: PostgreSQL binaries and RabbitMQ are there', () => {
    throw new Error(`failover tests cannot run: ${missing}`);
  });

  describe.skipIf(Boolean(missing))(`with the service re-pointed to the promoted standby${missing ? ` (skipped: ${missing})` : ''}`, () => {
    it('when a cluster is built, then a row written on the primary is read on the standby, and the promoted standby takes writes', { timeout: 30_000 }, async () => {
      const startedAt = performance.now();
      const cluster = await startPgCluster({ synchronous: true, databases: ['orders'] });
      const builtMs = performance.now() - startedAt;
      const query = async (url: string, text: string) => {
        const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000, query_timeout: 5_000 });
        await client.connect();
        try {
          return (await client.query(text)).rows as Record<string, unknown>[];
        } finally {
          await client.end();
        }
      };
      try {
        await query(cluster.primary.url('orders'), 'CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2)');
        // Synchronous: committed on the primary means flushed on the standby; replay is a moment later.
        await cluster.waitForReplay(5_000);
        expect(await query(cluster.standby.url('orders'), 'SELECT count(*)::int AS n, pg_is_in_recovery() AS recovery FROM t')).toEqual([{ n: 2, recovery: true }]);
        await cluster.stopPrimaryImmediately();
        const promoteMs = await cluster.promoteStandby();
        await query(cluster.standby.url('orders'), 'INSERT INTO t VALUES (3)');
        expect(await query(cluster.standby.url('orders'), 'SELECT count(*)::int AS n FROM t')).toEqual([{ n: 3 }]);
        figure(`cluster built in ${Math.round(builtMs)} ms, standby promoted in ${Math.round(promoteMs)} ms`);
      } finally {
        await cluster.cleanup();
      }
    });

    it(
      'when the primary of a synchronous pair dies under load, the standby is promoted and then takes its address, then nothing acknowledged is lost, the gap is only 503s, the service recovers by itself, and every client gets every event once, in order',
      { timeout: 75_000 },
      async () => {
        const f = await startFailover({ synchronous: true, rabbitmqUrl });
        try {
          f.load.start(WRITERS, RATE);
          await sleep(1_500);
          const stoppedAt = performance.now();
          await f.cluster.stopPrimaryImmediately();
          await sleep(1_000);
          const promoteMs = await f.cluster.promoteStandby();
          f.repoint();
          const repointedAt = performance.now();
          const firstCreated = await f.load.waitForCreated(repointedAt, RECOVERY_MS);
          await sleep(1_500);
          const { findings, lost } = await settle(f, (_c, db) => [...db.events.keys()]);
          const answers = f.load.answers;

          figure(
            `synchronous, promoted then re-pointed: ${f.load.acknowledged.size} orders acknowledged, lost ${lost.orders.length} orders and ${lost.changes.length} changes; ` +
              `${answers.filter((a) => a.status === 503).length} answered 503 (${tally(answers.filter((a) => a.startedAt >= stoppedAt))}); promotion ${Math.round(promoteMs)} ms; ` +
              `first 201 ${firstCreated === undefined ? 'never' : `${Math.round(firstCreated)} ms`} after re-pointing (${Math.round(repointedAt - stoppedAt)} ms after the primary stopped)\n  ${clientFigures(f.clients, findings)}\n${notableLogLines(f.service.output())}`,
          );
          expect.soft(badAnswers(answers, [200, 201, 503]), 'answers other than 200/201/503, and 503s without Retry-After').toEqual([]);
          expect.soft([...new Set(answers.filter((a) => a.status === 503).map((a) => a.code))], '503 codes').toEqual(['service_unavailable']);
          expect.soft(firstCreated, 'the first 201 after re-pointing, without a restart').toBeLessThan(RECOVERY_MS);
          expect.soft(answers.filter((a) => firstCreated !== undefined && a.startedAt > repointedAt + firstCreated + 1_000 && a.status >= 300).map((a) => `${a.method} ${a.path} ${a.status}`), 'answers after recovery').toEqual([]);
          expect.soft(lost.orders.map((o) => o.created.id), 'acknowledged orders lost').toEqual([]);
          expect.soft(lost.changes.map((o) => o.created.id), 'acknowledged changes lost').toEqual([]);
          expectClientsExact(findings);
          findings.forEach((c, i) => expect.soft(c.unknown, `client ${i}: events of no order`).toBe(0));
          expect.soft(f.clients.map((c) => c.reloads), 'clients told to reload (4011, 4404): nothing was lost').toEqual(f.clients.map(() => 0));
        } finally {
          await f.close();
        }
      },
    );

    it(
      'when the service is re-pointed to the standby before it is promoted, then writes are 503 database_read_only and /readyz says read_only until the promotion, never 500, and it recovers by itself with nothing acknowledged lost',
      { timeout: 75_000 },
      async () => {
        const f = await startFailover({ synchronous: true, rabbitmqUrl });
        try {
          f.load.start(WRITERS, RATE);
          await sleep(1_500);
          await f.cluster.stopPrimaryImmediately();
          f.repoint();
          const repointedAt = performance.now();
          await sleep(2_500);
          const promotingAt = performance.now();
          const promoteMs = await f.cluster.promoteStandby();
          const promotedAt = performance.now();
          const firstCreated = await f.load.waitForCreated(promotedAt, RECOVERY_MS);
          await sleep(1_500);
          const { findings, lost } = await settle(f, (_c, db) => [...db.events.keys()]);
          const answers = f.load.answers;
          const writesOnStandby = answers.filter((a) => a.method !== 'GET' && a.startedAt >= repointedAt + 500 && a.endedAt <= promotingAt);
          const probesOnStandby = f.load.probes.filter((a) => a.startedAt >= repointedAt + 1_000 && a.endedAt <= promotingAt);

          figure(
            `synchronous, re-pointed before promotion: ${f.load.acknowledged.size} orders acknowledged, lost ${lost.orders.length} orders and ${lost.changes.length} changes; ` +
              `on the read-only standby for ${Math.round(promotingAt - repointedAt)} ms: writes ${tally(writesOnStandby)}; /readyz ${tally(probesOnStandby)} ` +
              `database ${[...new Set(probesOnStandby.map((p) => p.checks?.database))].join('/')}; promotion ${Math.round(promoteMs)} ms; ` +
              `first 201 ${firstCreated === undefined ? 'never' : `${Math.round(firstCreated)} ms`} after promotion\n  ${clientFigures(f.clients, findings)}\n${notableLogLines(f.service.output())}`,
          );
          expect.soft(badAnswers(answers, [200, 201, 503]), 'answers other than 200/201/503, and 503s without Retry-After').toEqual([]);
          expect.soft(writesOnStandby.length, 'writes sent while pointed at the standby').toBeGreaterThan(5);
          expect.soft(writesOnStandby.filter((a) => a.status !== 503 || a.code !== 'database_read_only').map((a) => `${a.method} ${a.path} ${a.status} ${a.code ?? ''}`), 'writes on the standby: 503 database_read_only').toEqual([]);
          expect.soft(probesOnStandby.length, '/readyz probes while pointed at the standby').toBeGreaterThan(3);
          expect.soft(probesOnStandby.filter((p) => p.status !== 503 || p.checks?.database !== 'read_only').map((p) => `${p.status} ${JSON.stringify(p.checks)}`), '/readyz on the standby').toEqual([]);
          expect.soft(firstCreated, 'the first 201 after promotion, without a restart').toBeLessThan(RECOVERY_MS);
          expect.soft(lost.orders.map((o) => o.created.id), 'acknowledged orders lost').toEqual([]);
          expect.soft(lost.changes.map((o) => o.created.id), 'acknowledged changes lost').toEqual([]);
          expectClientsExact(findings);
          expect.soft(f.clients.map((c) => c.reloads), 'clients told to reload (4011, 4404): nothing was lost').toEqual(f.clients.map(() => 0));
        } finally {
          await f.close();
        }
      },
    );

    it(
      'when an asynchronous standby whose stream stalled is promoted and takes the address, then the orders of the stall are lost as async allows, the service says its event log rewound, and new orders reach every client with histories of their own',
      { timeout: 75_000 },
      async () => {
        const f = await startFailover({ synchronous: false, rabbitmqUrl });
        try {
          f.load.start(WRITERS, RATE);
          await sleep(1_500);
          const stalledAt = performance.now();
          f.cluster.replicationProxy.blackhole();
          await sleep(1_500);
          const stoppedAt = performance.now();
          await f.cluster.stopPrimaryImmediately();
          const promoteMs = await f.cluster.promoteStandby();
          f.repoint();
          const repointedAt = performance.now();
          const firstCreated = await f.load.waitForCreated(repointedAt, RECOVERY_MS);
          await sleep(2_000);
          const [logged, readiness] = await Promise.all([
            until(NOTICE_MS, async () => f.service.output().includes('event log rewound')),
            until(NOTICE_MS, async () => (await readyz(f.base)).checks?.event_log === 'rewound').then(async () => readyz(f.base)),
          ]);
          // A client told to reload (4011) owes only what was written after it reconnected; any other, every event of the database.
          const requiredFor = (c: FailoverClient, db: DatabaseView) => {
            const reloadedAt = c.reloads > 0 ? c.epochOpenedAt[c.reloads] : undefined;
            if (c.reloads > 0 && reloadedAt === undefined) return [...db.events.keys()];
            const since = reloadedAt === undefined ? -Infinity : performance.timeOrigin + reloadedAt + 200;
            return [...db.events.values()].filter((e) => Date.parse(e.occurred_at) > since).map((e) => e.id);
          };
          const { db, findings, lost } = await settle(f, requiredFor);
          const created = [...f.load.acknowledged.values()];
          const newOrders = created.filter((o) => o.at >= repointedAt);
          const keptBeforeStall = lost.orders.filter((o) => o.at < stalledAt - 300);
          const inStall = created.filter((o) => o.at >= stalledAt && o.at <= stoppedAt);
          const reused = newOrders.filter((o) => lost.orders.some((l) => l.created.id === o.created.id));
          const histories = newOrders.flatMap((o) => historyProblems(db.orders.get(o.created.id) ?? o.created, db.histories.get(o.created.id) ?? []));
          const answers = f.load.answers;

          figure(
            `asynchronous, stream stalled 1.5 s before the primary stopped: ${created.length} orders acknowledged, ${inStall.length} in the stall; lost ${lost.orders.length} orders (${keptBeforeStall.length} of them acknowledged before the stall) and ${lost.changes.length} changes; ` +
              `${newOrders.length} orders after re-pointing (${reused.length} reusing a lost order's id; ${f.load.strangersChanged} PATCHes of a lost order changed the new order with its id); ${answers.filter((a) => a.status === 503).length} answered 503 (${tally(answers.filter((a) => a.startedAt >= stalledAt))}); ` +
              `promotion ${Math.round(promoteMs)} ms; first 201 ${firstCreated === undefined ? 'never' : `${Math.round(firstCreated)} ms`} after re-pointing; ` +
              `"event log rewound" logged: ${logged}; /readyz ${readiness.status} ${JSON.stringify(readiness.checks)}\n  ${clientFigures(f.clients, findings)}\n${notableLogLines(f.service.output())}`,
          );
          expect(lost.orders.length, 'orders acknowledged in the stall and lost: without any, this run did not rewind the log').toBeGreaterThan(0);
          expect.soft(keptBeforeStall.map((o) => o.created.id), 'orders acknowledged well before the stall, lost').toEqual([]);
          expect.soft(badAnswers(answers, [200, 201, 404, 409, 503]), 'answers other than 200/201/404/409/503, and 503s without Retry-After').toEqual([]);
          expect.soft(firstCreated, 'the first 201 after re-pointing, without a restart').toBeLessThan(RECOVERY_MS);
          expect.soft(logged, 'an error line containing "event log rewound"').toBe(true);
          expect.soft(readiness.checks?.event_log, '/readyz checks.event_log').toBe('rewound');
          expect.soft(newOrders.length, 'orders created after re-pointing').toBeGreaterThan(10);
          expect.soft(histories, "new orders' histories: their own events only, 1..version").toEqual([]);
          expectClientsExact(findings);
          const newEvents = new Set(newOrders.flatMap((o) => (db.histories.get(o.created.id) ?? []).filter((e) => db.events.has(e.id)).map((e) => e.id)));
          findings.forEach((c, i) => {
            const lacking = c.missed.filter((id) => newEvents.has(id));
            expect.soft(lacking.length, `client ${i}: events of orders created after re-pointing it never got`).toBe(0);
          });
        } finally {
          await f.close();
        }
      },
    );
  });
});

async function readyz(base: string): Promise<{ status: number; checks?: Record<string, string> }> {
  try {
    const response = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(5_000) });
    return { ...((await response.json()) as { checks?: Record<string, string> }), status: response.status };
  } catch {
    return { status: -1 };
  }
}

/** Polls every 100 ms until `check` is true or timeoutMs has passed; resolves with whether it became true. */
async function until(timeoutMs: number, check: () => Promise<boolean>): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await check()) return true;
    await sleep(100);
  }
  return false;
}

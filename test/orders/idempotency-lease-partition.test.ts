import pg from 'pg';
import { pino } from 'pino';
import { describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { fingerprint, LEASE_SECONDS } from '../../src/orders/idempotency.js';
import { seedDemoCatalog } from '../../src/products/repository.js';
import { startService, type Service } from '../../src/runtime.js';
import { createTestDatabase } from '../helpers/databases.js';
import { orderInput } from '../helpers/factories.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The row a request writes when it claims `key` (requests without API keys are "open"), aged by `ageSeconds`. */
const IN_FLIGHT = `INSERT INTO idempotency_keys (key, fingerprint, created_at) VALUES ('open:' || $1, $2, now() - make_interval(secs => $3))`;

const postgresUrl = inject('postgresUrl');
describe.skipIf(!postgresUrl)('Idempotency-Key on PostgreSQL when the first request outlives its lease', () => {
  it('when a retry takes the lease over while the first request is cut off, then one order is created and both answer it', async () => {
    const database = await createTestDatabase('postgres');
    const target = new URL(database.url!);
    const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const proxied = new URL(database.url!);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(proxy.port);
    const start = (url: string, env: Record<string, string> = {}) =>
      startService(loadConfig({ DATABASE_URL: url, DATA_DIR: ':memory:', LOG_LEVEL: 'silent', ...env }), { logger: pino({ level: 'silent' }) });
    // The first request's process reaches PostgreSQL through the proxy, and waits for answers longer than the lease.
    const cutOff = await start(proxied.toString(), { DATABASE_QUERY_TIMEOUT_MS: '120000' });
    const other = await start(database.url!);
    await seedDemoCatalog(other.db.drizzle);
    const keyHolder = new pg.Client({ connectionString: database.url });
    await keyHolder.connect();
    try {
      const body = orderInput();
      const post = (service: Service) => service.app.inject({ method: 'POST', url: '/orders/', payload: body, headers: { 'idempotency-key': 'slow' } });

      // The first request's claim waits on an uncommitted claim of the same key; its answer is then held in a partition.
      await keyHolder.query('BEGIN');
      await keyHolder.query(IN_FLIGHT, ['slow', fingerprint(body), 0]);
      const first = post(cutOff);
      // The claim has reached PostgreSQL once a session of this database waits on a lock (a loaded machine may take a while).
      const waiting = `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`;
      // (keyHolder is inside a transaction, which would see one snapshot of the statistics unless told to drop it.)
      const waitingNow = async () => {
        await keyHolder.query('SELECT pg_stat_clear_snapshot()');
        return (await keyHolder.query<{ n: number }>(waiting)).rows[0]!.n;
      };
      await expect.poll(waitingNow, { timeout: 10_000, interval: 20 }).toBe(1);
      proxy.blackhole();
      await keyHolder.query('ROLLBACK');
      await expect.poll(async () => (await keyHolder.query(`SELECT 1 FROM idempotency_keys WHERE key = 'open:slow'`)).rowCount).toBe(1);

      await sleep(LEASE_SECONDS * 1000 + 500);
      const retry = await post(other);
      expect(retry.statusCode).toBe(201);

      await proxy.restore();
      const stalled = await first;
      expect(stalled.statusCode).toBe(201);
      expect(stalled.headers['idempotent-replayed']).toBe('true');
      expect(stalled.json()).toEqual(retry.json());
      const { rows } = await keyHolder.query('SELECT count(*)::int AS n FROM orders WHERE client_email = $1', [body.client_email]);
      expect(rows[0].n).toBe(1);
    } finally {
      await keyHolder.end();
      await proxy.restore();
      await other.stop();
      await cutOff.stop();
      await proxy.close();
      await database.drop();
    }
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { fingerprint, LEASE_SECONDS } from '../../src/orders/idempotency.js';
import { seedDemoCatalog } from '../../src/products/repository.js';
import { startService, type Service } from '../../src/runtime.js';
import { createTestDatabase, databaseKinds } from '../helpers/databases.js';
import { orderInput } from '../helpers/factories.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The row a request writes when it claims `key` (requests without API keys are "open"), aged by `ageSeconds`. */
const IN_FLIGHT = `INSERT INTO idempotency_keys (key, fingerprint, created_at) VALUES ('open:' || $1, $2, now() - make_interval(secs => $3))`;

for (const { kind, skip } of databaseKinds()) {
  describe.skipIf(skip)(`Idempotency-Key leases on ${kind}`, () => {
    let service: TestService;
    beforeAll(async () => {
      service = await startTestService({ database: kind });
    });
    afterAll(() => service?.close());

    const post = (key: string, payload: Record<string, unknown>) =>
      service.app.inject({ method: 'POST', url: '/orders/', payload, headers: { 'idempotency-key': key } });

    it("when the key's first request is still in flight, then the retry is 409 with Retry-After: the seconds left of its lease", async () => {
      const body = orderInput();
      await service.db.query(IN_FLIGHT, [`lease-${kind}-1`, fingerprint(body), 4]);
      const response = await post(`lease-${kind}-1`, body);
      expect(response.statusCode).toBe(409);
      expect(response.json()).toMatchObject({ code: 'idempotency_request_in_progress' });
      expect(response.headers['retry-after']).toBe(String(LEASE_SECONDS - 4));
    });

    it('when the lease of a request that never finished has run out, then a retry runs at once', async () => {
      const body = orderInput();
      await service.db.query(IN_FLIGHT, [`lease-${kind}-2`, fingerprint(body), LEASE_SECONDS + 1]);
      const response = await post(`lease-${kind}-2`, body);
      expect(response.statusCode).toBe(201);
      expect(response.headers['idempotent-replayed']).toBeUndefined();
    });
  });
}

describe('Idempotency-Key in flight when the embedded service crashed', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'order-service-lease-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('when the service restarts on its data folder, then a retry of the request it was running succeeds at once', async () => {
    const body = orderInput();
    const before = await startTestService({ database: 'pglite', env: { DATA_DIR: dir } });
    // What a request leaves behind when the process dies between claiming its key and answering.
    await before.db.query(IN_FLIGHT, ['crashed', fingerprint(body), 0]);
    await before.close();

    const after = await startTestService({ database: 'pglite', env: { DATA_DIR: dir } });
    try {
      const response = await after.app.inject({ method: 'POST', url: '/orders/', payload: body, headers: { 'idempotency-key': 'crashed' } });
      expect(response.statusCode).toBe(201);
      expect(response.headers['idempotent-replayed']).toBeUndefined();
    } finally {
      await after.close();
    }
  });
});

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
      await sleep(300);
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

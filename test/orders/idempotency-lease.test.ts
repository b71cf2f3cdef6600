import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprint, LEASE_SECONDS } from '../../src/orders/idempotency.js';
import { databaseKinds } from '../helpers/databases.js';
import { orderInput } from '../helpers/factories.js';
import { startTestService, type TestService } from '../helpers/service.js';

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
      // Nothing was replayed: the key's answer is not known yet.
      expect(response.headers['idempotent-replayed']).toBeUndefined();
      // The seconds left when the answer was read back bound it from below: a loaded machine may take a while to answer.
      const [left] = await service.db.query<{ s: number }>(
        `SELECT ceil(extract(epoch FROM created_at + make_interval(secs => $2) - now()))::int AS s FROM idempotency_keys WHERE key = 'open:' || $1`,
        [`lease-${kind}-1`, LEASE_SECONDS],
      );
      expect(Number(response.headers['retry-after'])).toBeLessThanOrEqual(LEASE_SECONDS - 4);
      expect(Number(response.headers['retry-after'])).toBeGreaterThanOrEqual(Math.max(1, left!.s));
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

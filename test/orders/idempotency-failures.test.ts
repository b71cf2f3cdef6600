import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Queryable } from '../../src/db/client.js';
import { claimKey, fingerprint, LEASE_SECONDS } from '../../src/orders/idempotency.js';
import { orderInput } from '../helpers/factories.js';
import { startTestService, type TestService } from '../helpers/service.js';

/** The row a request writes when it claims `key` (requests without API keys are "open"), aged by `ageSeconds`. */
const IN_FLIGHT = `INSERT INTO idempotency_keys (key, fingerprint, created_at) VALUES ('open:' || $1, $2, now() - make_interval(secs => $3))`;

describe('Idempotency-Key when requests fail, race or lose their lease', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService({ database: 'pglite' });
  });
  afterAll(() => service?.close());

  const post = (key: string, payload: Record<string, unknown>) =>
    service.app.inject({ method: 'POST', url: '/orders/', payload, headers: { 'idempotency-key': key } });
  const keyRows = (key: string) => service.db.query<{ status: number | null }>('SELECT response_status AS status FROM idempotency_keys WHERE key = $1', [`open:${key}`]);
  const ordersOf = async (email: unknown) =>
    (await service.db.query<{ n: number }>('SELECT count(*)::int AS n FROM orders WHERE client_email = $1', [email]))[0]!.n;

  it('when the retry sends the same body with its fields in another order, then it is the same request and is replayed', async () => {
    const body = orderInput();
    const first = await post('reordered', body);
    expect(first.statusCode).toBe(201);
    const reversed = Object.fromEntries(Object.entries(body).reverse());
    const again = await post('reordered', reversed);
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(first.json());
    expect(fingerprint({ b: { d: 1, c: [2, { f: 3, e: 4 }] }, a: null })).toBe(fingerprint({ a: null, b: { c: [2, { e: 4, f: 3 }], d: 1 } }));
    expect(fingerprint([1, 2])).not.toBe(fingerprint({ 0: 1, 1: 2 }));
    // Keys in alphabetical order, so fingerprints stored by an earlier release still match after an upgrade.
    expect(fingerprint({ quantity: 2, client_name: 'A', product_id: 1 })).toBe(
      createHash('sha256').update('{"client_name":"A","product_id":1,"quantity":2}').digest('base64url'),
    );
    expect(fingerprint({ a: 1, b: 2 })).not.toBe(fingerprint({ a: 2, b: 1 }));
  });

  it('when the database fails the request, then its key is released and a retry with it creates the order', async () => {
    const body = orderInput({ client_name: 'Fails Once' });
    // What PostgreSQL answers when the statement outlives its statement_timeout.
    await service.db.query(`CREATE FUNCTION refuse_order() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION USING ERRCODE = '57014', MESSAGE = 'canceling statement due to statement timeout'; END $$`);
    await service.db.query('CREATE TRIGGER refuse_order BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION refuse_order()');
    try {
      const failed = await post('fails-once', body);
      expect(failed.statusCode).toBe(503);
      expect(failed.json()).toMatchObject({ code: 'service_unavailable' });
    } finally {
      await service.db.query('DROP TRIGGER refuse_order ON orders');
      await service.db.query('DROP FUNCTION refuse_order()');
    }
    await expect.poll(async () => (await keyRows('fails-once')).length).toBe(0);

    const retry = await post('fails-once', body);
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBeUndefined();
    expect(await ordersOf(body.client_email)).toBe(1);
  });

  it('when the lease ran out less than a second ago, then a retry takes it over at once', async () => {
    const body = orderInput();
    await service.db.query(IN_FLIGHT, ['just-expired', fingerprint(body), LEASE_SECONDS + 0.5]);
    const response = await post('just-expired', body);
    expect(response.statusCode).toBe(201);
    expect(response.headers['idempotent-replayed']).toBeUndefined();
    expect(await keyRows('just-expired')).toEqual([{ status: 201 }]);
  });

  it('when the request keeps losing its lease to retries, then it gives up after three claims with 409 and Retry-After: 1', async () => {
    const body = orderInput();
    // Each claim of this key is taken over by "another retry" as soon as it is written: its time moves a minute back.
    await service.db.query('CREATE TABLE lease_losses (at timestamptz)');
    await service.db.query(`CREATE FUNCTION steal_lease() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF pg_trigger_depth() = 1 AND NEW.key = 'open:stolen' THEN
          INSERT INTO lease_losses VALUES (NEW.created_at);
          UPDATE idempotency_keys SET created_at = created_at - interval '1 minute' WHERE key = NEW.key;
        END IF;
        RETURN NULL;
      END $$`);
    await service.db.query('CREATE TRIGGER steal_lease AFTER INSERT OR UPDATE OF created_at ON idempotency_keys FOR EACH ROW EXECUTE FUNCTION steal_lease()');
    try {
      const response = await post('stolen', body);
      expect(response.statusCode).toBe(409);
      expect(response.headers['retry-after']).toBe('1');
      expect(response.headers['idempotent-replayed']).toBeUndefined();
      expect(response.json()).toMatchObject({
        code: 'idempotency_request_in_progress',
        detail: 'A request with this Idempotency-Key is still running; retry after it finishes.',
      });
    } finally {
      await service.db.query('DROP TRIGGER steal_lease ON idempotency_keys');
      await service.db.query('DROP FUNCTION steal_lease()');
    }
    expect((await service.db.query<{ n: number }>('SELECT count(*)::int AS n FROM lease_losses'))[0]!.n).toBe(3);
    expect(await ordersOf(body.client_email)).toBe(0);
  });

  describe('claiming a key at the database', () => {
    /** The service's database, with `between` run once just before the first statement whose text starts with `before`. */
    const interleaved = (before: string, between: () => Promise<unknown>): Queryable => {
      let done = false;
      return {
        async query<T>(text: string, params?: readonly unknown[], name?: string) {
          if (!done && text.trimStart().startsWith(before)) {
            done = true;
            await between();
          }
          return service.db.query<T>(text, params, name);
        },
      };
    };

    it('when the expired key is removed between the claim and the read, then the claim is made anew', async () => {
      const print = fingerprint(orderInput());
      await service.db.query(IN_FLIGHT, ['removed', print, 0]);
      const removedByMaintenance = interleaved('SELECT fingerprint', () => service.db.query("DELETE FROM idempotency_keys WHERE key = 'open:removed'"));
      const claim = await claimKey(removedByMaintenance, 'open:removed', print);
      const [row] = await service.db.query<{ lease: string }>("SELECT created_at::text AS lease FROM idempotency_keys WHERE key = 'open:removed'");
      expect(claim).toEqual({ kind: 'claimed', lease: row!.lease });
    });

    it('when the lease ran out a moment before the key is read, then the claim takes it over', async () => {
      const print = fingerprint(orderInput());
      await service.db.query(IN_FLIGHT, ['boundary', print, 0]);
      // Aged just past its lease right before it is read, so the seconds left round to zero.
      const expiring = interleaved('SELECT fingerprint', () =>
        service.db.query("UPDATE idempotency_keys SET created_at = now() - make_interval(secs => $1) WHERE key = 'open:boundary'", [LEASE_SECONDS + 0.001]),
      );
      const claim = await claimKey(expiring, 'open:boundary', print);
      const [row] = await service.db.query<{ lease: string }>("SELECT created_at::text AS lease FROM idempotency_keys WHERE key = 'open:boundary'");
      expect(claim).toEqual({ kind: 'claimed', lease: row!.lease });
    });

    it('when another retry takes the stale lease over first, then this one is told the request is in progress for a whole lease', async () => {
      const print = fingerprint(orderInput());
      await service.db.query(IN_FLIGHT, ['raced', print, LEASE_SECONDS * 2]);
      const takenOverFirst = interleaved('UPDATE idempotency_keys SET created_at', () =>
        service.db.query("UPDATE idempotency_keys SET created_at = now() WHERE key = 'open:raced'"),
      );
      expect(await claimKey(takenOverFirst, 'open:raced', print)).toEqual({ kind: 'in_progress', retryAfterSeconds: LEASE_SECONDS });
    });
  });
});

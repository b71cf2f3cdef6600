import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteExpiredKeys } from '../../src/orders/idempotency.js';
import { databaseKinds } from '../helpers/databases.js';
import { createProduct, orderInput } from '../helpers/factories.js';
import { startTestService, type TestService } from '../helpers/service.js';

for (const { kind, skip } of databaseKinds()) {
  describe.skipIf(skip)(`Idempotency-Key on ${kind}`, () => {
    let service: TestService;
    beforeAll(async () => {
      service = await startTestService({ database: kind });
    });
    afterAll(() => service?.close());

    const post = (key: string, payload: Record<string, unknown>) =>
      service.app.inject({ method: 'POST', url: '/orders/', payload, headers: { 'idempotency-key': key } });
    const countFor = async (email: string) =>
      (await service.db.query<{ n: number }>('SELECT count(*)::int AS n FROM orders WHERE client_email = $1', [email]))[0]!.n;

    it('when keys outlive their TTL, then maintenance forgets them, a batch at a time, and a retry with one creates anew', async () => {
      const body = orderInput();
      for (const key of ['old-1', 'old-2', 'old-3', 'fresh']) expect((await post(`${kind}-${key}`, body)).statusCode).toBe(201);
      await service.db.query("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key LIKE $1", [`%${kind}-old-%`]);

      expect(await deleteExpiredKeys(service.db, 24, 2)).toBe(3);

      const left = await service.db.query<{ key: string }>('SELECT key FROM idempotency_keys WHERE key LIKE $1', [`%${kind}-%`]);
      expect(left.map((r) => r.key.split(':').at(-1))).toEqual([`${kind}-fresh`]);
      expect((await post(`${kind}-old-1`, body)).headers['idempotent-replayed']).toBeUndefined();
      expect((await post(`${kind}-fresh`, body)).headers['idempotent-replayed']).toBe('true');
    });

    it('when a request is retried with the same key and body, then the original answer is replayed and nothing new is created', async () => {
      const body = orderInput();
      const first = await post(`k-${kind}-1`, body);
      expect(first.statusCode).toBe(201);
      expect(first.headers['idempotent-replayed']).toBeUndefined();
      const again = await post(`k-${kind}-1`, { ...body });
      expect(again.statusCode).toBe(201);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(again.headers.location).toBe(first.headers.location);
      expect(again.json()).toEqual(first.json());
      expect(await countFor(body.client_email as string)).toBe(1);
    });

    it('when the same key comes with a different body, then it is 422', async () => {
      const body = orderInput();
      await post(`k-${kind}-2`, body);
      const other = await post(`k-${kind}-2`, { ...body, quantity: 3 });
      expect(other.statusCode).toBe(422);
      expect(other.json()).toMatchObject({ code: 'idempotency_key_reused' });
    });

    it('when the first answer was an error, then the retry replays that error', async () => {
      const product = await createProduct(service.app, { price: 1, stock: 0 });
      const body = orderInput({ product_id: product.id });
      const first = await post(`k-${kind}-3`, body);
      expect(first.statusCode).toBe(409);
      await service.app.inject({ method: 'PATCH', url: `/products/${product.id}`, payload: { stock: 10 } });
      const again = await post(`k-${kind}-3`, body);
      expect(again.statusCode).toBe(409);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(again.json()).toEqual(first.json());
    });

    it('when 50 requests with one key arrive at once, then exactly one order is created', async () => {
      const body = orderInput();
      const responses = await Promise.all(Array.from({ length: 50 }, () => post(`k-${kind}-burst`, body)));
      const statuses = responses.map((r) => r.statusCode);
      expect(statuses.every((s) => s === 201 || s === 409)).toBe(true);
      expect(statuses.filter((s) => s === 201).length).toBeGreaterThanOrEqual(1);
      const conflicts = responses.filter((r) => r.statusCode === 409);
      for (const c of conflicts) expect(c.json()).toMatchObject({ code: 'idempotency_request_in_progress' });
      const ids = new Set(responses.filter((r) => r.statusCode === 201).map((r) => r.json<{ id: number }>().id));
      expect(ids.size).toBe(1);
      expect(await countFor(body.client_email as string)).toBe(1);
    });

    it('when the key is malformed, then it is 422 naming the header', async () => {
      const response = await post('x'.repeat(300), orderInput());
      expect(response.statusCode).toBe(422);
      expect(response.json().errors).toEqual([expect.objectContaining({ field: 'idempotency-key' })]);
    });
  });
}

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from '../helpers/databases.js';
import { createProduct, orderInput } from '../helpers/factories.js';
import { startTestService, type TestService } from '../helpers/service.js';

for (const { kind, skip } of databaseKinds()) {
  describe.skipIf(skip)(`concurrent orders on ${kind}`, () => {
    let service: TestService;
    beforeAll(async () => {
      service = await startTestService({ database: kind });
    });
    afterAll(() => service?.close());

    it('when 200 orders race for a stock of 50, then exactly 50 are created and stock ends at 0', async () => {
      const product = await createProduct(service.app, { price: 3.33, stock: 50 });
      const responses = await Promise.all(
        Array.from({ length: 200 }, () =>
          service.app.inject({ method: 'POST', url: '/orders/', payload: orderInput({ product_id: product.id, quantity: 1 }) }),
        ),
      );
      const statuses = responses.map((r) => r.statusCode);
      expect(statuses.filter((s) => s === 201)).toHaveLength(50);
      expect(statuses.filter((s) => s === 409)).toHaveLength(150);
      expect((await service.app.inject({ method: 'GET', url: `/products/${product.id}` })).json()).toMatchObject({ stock: 0 });
      const [count] = await service.db.query<{ n: number }>('SELECT count(*)::int AS n FROM orders WHERE product_id = $1', [product.id]);
      expect(count!.n).toBe(50);
    });

    it('when cancellations and orders race, then stock is never negative and adds up', async () => {
      const product = await createProduct(service.app, { price: 1, stock: 20 });
      const first = await Promise.all(
        Array.from({ length: 20 }, () => service.app.inject({ method: 'POST', url: '/orders/', payload: orderInput({ product_id: product.id, quantity: 1 }) })),
      );
      const ids = first.map((r) => r.json<{ id: number }>().id);
      const mixed = await Promise.all([
        ...ids.slice(0, 10).map((id) => service.app.inject({ method: 'PATCH', url: `/orders/${id}`, payload: { status: 'Cancelled' } })),
        ...Array.from({ length: 30 }, () =>
          service.app.inject({ method: 'POST', url: '/orders/', payload: orderInput({ product_id: product.id, quantity: 1 }) }),
        ),
      ]);
      expect(mixed.every((r) => [200, 201, 409].includes(r.statusCode))).toBe(true);
      const [row] = await service.db.query<{ stock: number; live: number }>(
        `SELECT p.stock, (SELECT count(*)::int FROM orders o WHERE o.product_id = p.id AND o.status <> 'Cancelled') AS live
         FROM products p WHERE p.id = $1`,
        [product.id],
      );
      expect(row!.stock).toBeGreaterThanOrEqual(0);
      expect(row!.stock + row!.live).toBe(20);
    });

    it('when the same order is changed concurrently, then one transition wins and the sequence has no gap', async () => {
      const created = await service.app.inject({ method: 'POST', url: '/orders/', payload: orderInput() });
      const id = created.json<{ id: number }>().id;
      const results = await Promise.all(
        ['Confirmed', 'Cancelled', 'Confirmed', 'Cancelled'].map((status) =>
          service.app.inject({ method: 'PATCH', url: `/orders/${id}`, payload: { status } }),
        ),
      );
      expect(results.every((r) => [200, 409].includes(r.statusCode))).toBe(true);
      const sequences = await service.db.query<{ sequence: number }>('SELECT sequence FROM outbox WHERE order_id = $1 ORDER BY sequence', [id]);
      expect(sequences.map((s) => s.sequence)).toEqual(Array.from({ length: sequences.length }, (_, i) => i + 1));
      const final = (await service.app.inject({ method: 'GET', url: `/orders/${id}` })).json<{ version: number }>();
      expect(final.version).toBe(sequences.length);
    });
  });
}

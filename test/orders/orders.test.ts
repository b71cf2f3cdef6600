import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from '../helpers/databases.js';
import { createOrder, createProduct, orderInput } from '../helpers/factories.js';
import { startTestService, type TestService } from '../helpers/service.js';

const EXAMPLE = { product_id: 1, quantity: 2, client_name: 'John Doe', client_email: 'john.doe@example.com' };

for (const { kind, skip } of databaseKinds()) {
  describe.skipIf(skip)(`orders on ${kind}`, () => {
    let service: TestService;
    beforeAll(async () => {
      service = await startTestService({ database: kind });
    });
    afterAll(() => service?.close());
    const app = () => service.app;

    it('when the example order is posted, then it is created priced from the catalog and can be read back', async () => {
      const created = await app().inject({ method: 'POST', url: '/orders/', payload: EXAMPLE });
      expect(created.statusCode).toBe(201);
      expect(created.headers['content-type']).toMatch(/^application\/json/);
      const order = created.json();
      expect(created.headers.location).toBe(`/orders/${order.id}`);
      expect(order).toMatchObject({ ...EXAMPLE, status: 'Pending', total_price: 200, unit_price: 100, version: 1 });
      expect(Number.isInteger(order.id)).toBe(true);
      expect(new Date(order.created_at).toISOString()).toBe(order.created_at);

      const read = await app().inject({ method: 'GET', url: `/orders/${order.id}` });
      expect(read.statusCode).toBe(200);
      expect(read.json()).toEqual(order);
    });

    it('when the path has no trailing slash, then POST /orders works the same', async () => {
      const response = await app().inject({ method: 'POST', url: '/orders', payload: orderInput() });
      expect(response.statusCode).toBe(201);
    });

    it('when prices have cents, then the total is exact to the cent', async () => {
      const product = await createProduct(app(), { price: 19.99 });
      const order = await createOrder(app(), { product_id: product.id, quantity: 3 });
      expect(order.total_price).toBe(59.97);
      const big = await createProduct(app(), { price: 0.1 });
      const many = await createOrder(app(), { product_id: big.id, quantity: 10_000 });
      expect(many.total_price).toBe(1000);
    });

    it('when the product price changes later, then existing orders keep the price they were placed at', async () => {
      const product = await createProduct(app(), { price: 10 });
      const order = await createOrder(app(), { product_id: product.id, quantity: 1 });
      const patched = await app().inject({ method: 'PATCH', url: `/products/${product.id}`, payload: { price: 12.5 } });
      expect(patched.json()).toMatchObject({ price: 12.5 });
      expect((await app().inject({ method: 'GET', url: `/orders/${order.id}` })).json()).toMatchObject({ unit_price: 10, total_price: 10 });
      expect((await createOrder(app(), { product_id: product.id, quantity: 2 })).total_price).toBe(25);
    });

    it('when the order does not exist, then GET is 404 problem+json', async () => {
      const response = await app().inject({ method: 'GET', url: '/orders/999999999' });
      expect(response.statusCode).toBe(404);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.json()).toMatchObject({ status: 404, code: 'order_not_found', title: expect.any(String), detail: expect.any(String), type: expect.any(String) });
    });

    it('when the product does not exist, then POST is 422 naming product_id and creates nothing', async () => {
      const response = await app().inject({ method: 'POST', url: '/orders/', payload: orderInput({ product_id: 424242 }) });
      expect(response.statusCode).toBe(422);
      expect(response.json()).toMatchObject({ code: 'unknown_product', errors: [{ field: 'product_id' }] });
    });

    it('when stock runs out, then the order is 409 and stock is unchanged', async () => {
      const product = await createProduct(app(), { price: 5, stock: 3 });
      expect((await app().inject({ method: 'POST', url: '/orders/', payload: orderInput({ product_id: product.id, quantity: 4 }) })).statusCode).toBe(409);
      await createOrder(app(), { product_id: product.id, quantity: 3 });
      const after = await app().inject({ method: 'GET', url: `/products/${product.id}` });
      expect(after.json()).toMatchObject({ stock: 0 });
      const refused = await app().inject({ method: 'POST', url: '/orders/', payload: orderInput({ product_id: product.id, quantity: 1 }) });
      expect(refused.statusCode).toBe(409);
      expect(refused.json()).toMatchObject({ code: 'insufficient_stock' });
    });

    it('when an order is created, then its order.created event is in the outbox in the same transaction', async () => {
      const order = await createOrder(app());
      const rows = await service.db.query<{ payload: string }>(
        'SELECT payload::text AS payload FROM outbox WHERE order_id = $1 ORDER BY sequence',
        [order.id],
      );
      expect(rows).toHaveLength(1);
      const event = JSON.parse(rows[0]!.payload);
      expect(event).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        type: 'order.created',
        schema_version: 1,
        occurred_at: order.created_at,
        order_id: order.id,
        sequence: 1,
        order,
      });
    });

    it('when the status moves along its path, then each step is recorded with a gapless sequence', async () => {
      const order = await createOrder(app());
      for (const [status, version] of [['Confirmed', 2], ['Shipped', 3], ['Delivered', 4]] as const) {
        const response = await app().inject({ method: 'PATCH', url: `/orders/${order.id}`, payload: { status } });
        expect(response.statusCode).toBe(200);
        expect(response.json()).toMatchObject({ id: order.id, status, version });
      }
      const events = await service.db.query<{ payload: string }>('SELECT payload::text AS payload FROM outbox WHERE order_id = $1 ORDER BY sequence', [order.id]);
      const parsed = events.map((e) => JSON.parse(e.payload));
      expect(parsed.map((e) => [e.type, e.sequence, e.change?.to])).toEqual([
        ['order.created', 1, undefined],
        ['order.status_changed', 2, 'Confirmed'],
        ['order.status_changed', 3, 'Shipped'],
        ['order.status_changed', 4, 'Delivered'],
      ]);
      expect(parsed[1].change).toEqual({ from: 'Pending', to: 'Confirmed' });
    });

    it('when a transition is not allowed, then it is 409 and nothing changes', async () => {
      const order = await createOrder(app());
      const skip = await app().inject({ method: 'PATCH', url: `/orders/${order.id}`, payload: { status: 'Delivered' } });
      expect(skip.statusCode).toBe(409);
      expect(skip.json()).toMatchObject({ code: 'invalid_transition' });
      const same = await app().inject({ method: 'PATCH', url: `/orders/${order.id}`, payload: { status: 'Pending' } });
      expect(same.statusCode).toBe(409);
      expect((await app().inject({ method: 'GET', url: `/orders/${order.id}` })).json()).toMatchObject({ status: 'Pending', version: 1 });
    });

    it('when an order is cancelled, then its stock returns', async () => {
      const product = await createProduct(app(), { price: 1, stock: 10 });
      const order = await createOrder(app(), { product_id: product.id, quantity: 4 });
      expect((await app().inject({ method: 'GET', url: `/products/${product.id}` })).json()).toMatchObject({ stock: 6 });
      const cancelled = await app().inject({ method: 'PATCH', url: `/orders/${order.id}`, payload: { status: 'Cancelled' } });
      expect(cancelled.json()).toMatchObject({ status: 'Cancelled' });
      expect((await app().inject({ method: 'GET', url: `/products/${product.id}` })).json()).toMatchObject({ stock: 10 });
      const again = await app().inject({ method: 'PATCH', url: `/orders/${order.id}`, payload: { status: 'Cancelled' } });
      expect(again.statusCode).toBe(409);
      expect((await app().inject({ method: 'GET', url: `/products/${product.id}` })).json()).toMatchObject({ stock: 10 });
    });

    it('when orders are listed with filters, then they come newest first in pages, and only the matching ones', async () => {
      const email = `pager-${kind}@example.com`;
      const lamp = await createProduct(app(), { price: 5 });
      const ids: number[] = [];
      // Eleven, so that at least one cursor names a two-digit id.
      for (let i = 0; i < 11; i++) ids.push((await createOrder(app(), { client_email: email, ...(i % 4 === 1 ? { product_id: lamp.id } : {}) })).id);
      await app().inject({ method: 'PATCH', url: `/orders/${ids[0]}`, payload: { status: 'Confirmed' } });
      // Newer than all of them, of another client and product: no filter below may let it in.
      const other = (await createOrder(app(), { client_email: `other-${kind}@example.com`, product_id: lamp.id })).id;
      const list = async (query: string) => {
        const answer = await app().inject({ method: 'GET', url: `/orders?${query}` });
        expect(answer.statusCode).toBe(200);
        return answer.json() as { items: { id: number }[]; next_cursor: string | null };
      };
      const byEmail = `client_email=${encodeURIComponent(email)}`;

      const page1 = await list(`${byEmail}&limit=1`);
      expect(page1.items.map((o) => o.id)).toEqual([ids[10]]);
      expect(ids[10]).toBeGreaterThan(9);
      const page2 = await list(`${byEmail}&limit=3&cursor=${page1.next_cursor}`);
      expect(page2.items.map((o) => o.id)).toEqual([ids[9], ids[8], ids[7]]);
      const page3 = await list(`${byEmail}&limit=10&cursor=${page2.next_cursor}`);
      expect(page3).toEqual({ items: [6, 5, 4, 3, 2, 1, 0].map((i) => expect.objectContaining({ id: ids[i] })), next_cursor: null });

      expect((await list(`status=Confirmed&${byEmail}`)).items.map((o) => o.id)).toEqual([ids[0]]);
      expect((await list(`product_id=${lamp.id}`)).items.map((o) => o.id)).toEqual([other, ids[9], ids[5], ids[1]]);
      expect((await list(`product_id=${lamp.id}&${byEmail}`)).items.map((o) => o.id)).toEqual([ids[9], ids[5], ids[1]]);
      expect((await list('limit=1')).items.map((o) => o.id)).toEqual([other]);
      const bad = await app().inject({ method: 'GET', url: '/orders?cursor=bm9wZQ&status=Lost' });
      expect(bad.statusCode).toBe(422);
      expect(bad.json().errors.map((e: { field: string }) => e.field)).toContain('status');
    });

    it('when the catalog is used, then products can be listed, read, created and updated', async () => {
      const one = (await app().inject({ method: 'GET', url: '/products/1' })).json();
      expect(one).toEqual({ id: 1, name: expect.any(String), price: 100, stock: null });
      const created = await app().inject({ method: 'POST', url: '/products/', payload: { name: '  Lamp ', price: 49.9, stock: 7 } });
      expect(created.statusCode).toBe(201);
      expect(created.json()).toEqual({ id: expect.any(Number), name: 'Lamp', price: 49.9, stock: 7 });
      const id = created.json().id;
      expect((await app().inject({ method: 'PATCH', url: `/products/${id}`, payload: { stock: null } })).json()).toMatchObject({ stock: null });
      const list = (await app().inject({ method: 'GET', url: '/products?limit=200' })).json();
      expect(list.items.map((p: { id: number }) => p.id)).toContain(id);
      expect((await app().inject({ method: 'GET', url: '/products/777777' })).statusCode).toBe(404);
      expect((await app().inject({ method: 'PATCH', url: '/products/777777', payload: { price: 1 } })).statusCode).toBe(404);
      expect((await app().inject({ method: 'POST', url: '/products', payload: { name: 'x', price: 1.999 } })).statusCode).toBe(422);
    });
  });
}

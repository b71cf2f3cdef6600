import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrder, createProduct, orderInput } from '../helpers/factories.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { sampleOf, scrape } from '../metrics/scrape.js';

describe('orders through their whole life', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService({ database: 'pglite' });
  });
  afterAll(() => service?.close());

  const post = (payload: Record<string, unknown>, headers: Record<string, string> = {}) =>
    service.app.inject({ method: 'POST', url: '/orders', payload, headers });
  const patch = (id: number, status: string, headers: Record<string, string> = {}) =>
    service.app.inject({ method: 'PATCH', url: `/orders/${id}`, payload: { status }, headers });

  it('when the order keeps changing under the request, then it tries five times and answers 409 concurrent_update', async () => {
    const order = await createOrder(service.app);
    // Every write finds the order changed since it was read, as under a stream of concurrent writers.
    await service.db.query('CREATE TABLE status_attempts (order_id bigint)');
    await service.db.query(`CREATE FUNCTION always_changed() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO status_attempts VALUES (OLD.id); RETURN NULL; END $$`);
    await service.db.query(`CREATE TRIGGER always_changed BEFORE UPDATE ON orders FOR EACH ROW WHEN (OLD.id = ${order.id}) EXECUTE FUNCTION always_changed()`);
    try {
      const response = await patch(order.id, 'Confirmed');
      expect(response.statusCode).toBe(409);
      expect(response.json()).toMatchObject({ code: 'concurrent_update', detail: `Order ${order.id} kept changing while this request ran; retry it.` });
    } finally {
      await service.db.query('DROP TRIGGER always_changed ON orders');
      await service.db.query('DROP FUNCTION always_changed()');
    }
    expect((await service.db.query<{ n: number }>('SELECT count(*)::int AS n FROM status_attempts'))[0]!.n).toBe(5);
    expect((await service.app.inject({ method: 'GET', url: `/orders/${order.id}` })).json()).toMatchObject({ status: 'Pending', version: 1 });
    expect(await service.db.query('SELECT 1 FROM outbox WHERE order_id = $1 AND sequence > 1', [order.id])).toEqual([]);
  });

  it('when orders are created, replayed, refused and moved, then only what was written is counted', async () => {
    const before = await scrape(service.app);
    const created = (text: string) => sampleOf(text, 'orders_created_total');
    const moved = (text: string) => sampleOf(text, 'order_status_changes_total', { from: 'Pending', to: 'Cancelled' });
    const body = orderInput();
    // Two created, three replayed, one refused: each kind counts differently, so counting the wrong one shows.
    const first = await post(body, { 'idempotency-key': 'counted-once' });
    expect((await post(orderInput())).statusCode).toBe(201);
    for (let i = 0; i < 3; i++) expect((await post(body, { 'idempotency-key': 'counted-once' })).headers['idempotent-replayed']).toBe('true');
    expect((await post(orderInput({ product_id: 424242 }))).statusCode).toBe(422);
    expect((await patch(first.json<{ id: number }>().id, 'Cancelled')).statusCode).toBe(200);

    const after = await scrape(service.app);
    expect(created(after) - created(before)).toBe(2);
    expect(moved(after) - (Number.isNaN(moved(before)) ? 0 : moved(before))).toBe(1);
  });

  it('when a request carries X-Request-Id, then the events it writes carry it too', async () => {
    const created = await post(orderInput(), { 'x-request-id': 'orders-req-create' });
    const { id } = created.json<{ id: number }>();
    expect((await patch(id, 'Confirmed', { 'x-request-id': 'orders-req-confirm' })).statusCode).toBe(200);
    const keyed = await post(orderInput(), { 'x-request-id': 'orders-req-keyed', 'idempotency-key': 'with-request-id' });
    const rows = await service.db.query<{ order_id: number; sequence: number; request_id: string }>(
      'SELECT order_id::int AS order_id, sequence::int AS sequence, request_id FROM outbox WHERE order_id IN ($1, $2) ORDER BY order_id, sequence',
      [id, keyed.json<{ id: number }>().id],
    );
    expect(rows.map((r) => r.request_id)).toEqual(['orders-req-create', 'orders-req-confirm', 'orders-req-keyed']);
  });

  it("when an order's events reach the change log, then its history lists them oldest first", async () => {
    // A service of its own: the history route's handler is fixed when it is registered, and mutation testing
    // (Stryker) credits a test only with the code that runs inside it, not in a beforeAll.
    const own = await startTestService({ database: 'pglite' });
    try {
      const order = await createOrder(own.app);
      expect((await own.app.inject({ method: 'PATCH', url: `/orders/${order.id}`, payload: { status: 'Confirmed' } })).statusCode).toBe(200);
      await expect
        .poll(async () => (await own.app.inject({ method: 'GET', url: `/orders/${order.id}/history` })).json<{ type: string }[]>().map((e) => e.type), {
          timeout: 15_000,
        })
        .toEqual(['order.created', 'order.status_changed']);
      const history = await own.app.inject({ method: 'GET', url: `/orders/${order.id}/history` });
      expect(history.statusCode).toBe(200);
      expect(history.headers['content-type']).toMatch(/^application\/json/);
      expect(history.json()[1]).toMatchObject({ order_id: order.id, sequence: 2, change: { from: 'Pending', to: 'Confirmed' } });
    } finally {
      await own.close();
    }
  });

  it('when a refusal is replayed, then it has no Location, and answers that are not in progress carry no Retry-After', async () => {
    const product = await createProduct(service.app, { price: 1, stock: 0 });
    const body = orderInput({ product_id: product.id });
    const refused = await post(body, { 'idempotency-key': 'refusal-replayed' });
    const again = await post(body, { 'idempotency-key': 'refusal-replayed' });
    for (const response of [refused, again]) {
      expect(response.statusCode).toBe(409);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.headers.location).toBeUndefined();
      expect(response.headers['retry-after']).toBeUndefined();
    }
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(refused.headers['idempotent-replayed']).toBeUndefined();
    const created = await post(orderInput(), { 'idempotency-key': 'created-fresh' });
    expect(created.headers['retry-after']).toBeUndefined();
    expect(created.headers['idempotent-replayed']).toBeUndefined();
  });

  it('when a page is exactly full, then there is no next page; filters by product and status narrow the list', async () => {
    const product = await createProduct(service.app, { price: 3 });
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) ids.push((await createOrder(service.app, { product_id: product.id })).id);
    expect((await patch(ids[1]!, 'Confirmed')).statusCode).toBe(200);
    const list = async (query: string) => (await service.app.inject({ method: 'GET', url: `/orders?${query}` })).json<{ items: { id: number }[]; next_cursor: string | null }>();

    const all = await list(`product_id=${product.id}&limit=3`);
    expect(all.items.map((o) => o.id)).toEqual([ids[2], ids[1], ids[0]]);
    expect(all.next_cursor).toBeNull();
    const firstTwo = await list(`product_id=${product.id}&limit=2`);
    expect(firstTwo.items.map((o) => o.id)).toEqual([ids[2], ids[1]]);
    expect(Buffer.from(firstTwo.next_cursor!, 'base64url').toString()).toBe(`o:${ids[1]}`);
    expect((await list(`product_id=${product.id}&status=Confirmed`)).items.map((o) => o.id)).toEqual([ids[1]]);
    expect((await list(`product_id=${product.id}&status=Pending&cursor=${firstTwo.next_cursor}`)).items.map((o) => o.id)).toEqual([ids[0]]);
  });

  it('when an order is changed, then the answer carries its new entity tag and the read answers 304 for it', async () => {
    const order = await createOrder(service.app);
    const changed = await patch(order.id, 'Confirmed', { 'if-match': '"1"' });
    expect(changed.headers.etag).toBe('"2"');
    expect(changed.headers['content-type']).toMatch(/^application\/json/);
    const read = await service.app.inject({ method: 'GET', url: `/orders/${order.id}`, headers: { 'if-none-match': 'W/"2"' } });
    expect(read.statusCode).toBe(304);
    const strongOnly = await patch(order.id, 'Shipped', { 'if-match': 'W/"2"' });
    expect(strongOnly.statusCode).toBe(412);
  });
});

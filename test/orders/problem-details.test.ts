import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrder, createProduct, orderInput } from '../helpers/factories.js';
import { startTestService, type TestService } from '../helpers/service.js';

// The texts a client reads in problem+json `detail`: each names what was wrong and what to do.
describe('problem details of the order routes', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService({ database: 'pglite' });
  });
  afterAll(() => service?.close());

  const patch = (id: number, status: string, headers: Record<string, string> = {}) =>
    service.app.inject({ method: 'PATCH', url: `/orders/${id}`, payload: { status }, headers });
  const moveTo = async (id: number, ...steps: string[]) => {
    for (const status of steps) expect((await patch(id, status)).statusCode).toBe(200);
  };

  it('when a transition is refused, then the detail names both statuses and where the order can go, or that it is final', async () => {
    const pending = await createOrder(service.app);
    const skipped = await patch(pending.id, 'Delivered');
    expect(skipped.statusCode).toBe(409);
    expect(skipped.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(skipped.json()).toMatchObject({
      code: 'invalid_transition',
      detail: 'An order that is Pending cannot become Delivered: it can move to Confirmed or Cancelled.',
    });

    const shipped = await createOrder(service.app);
    await moveTo(shipped.id, 'Confirmed', 'Shipped');
    expect((await patch(shipped.id, 'Cancelled')).json().detail).toBe('An order that is Shipped cannot become Cancelled: it can move to Delivered.');

    const cancelled = await createOrder(service.app);
    await moveTo(cancelled.id, 'Cancelled');
    expect((await patch(cancelled.id, 'Confirmed')).json().detail).toBe('An order that is Cancelled cannot become Confirmed: it is final.');
  });

  it('when an order or its history does not exist, then the detail names its id', async () => {
    for (const url of ['/orders/987654321', '/orders/987654321/history']) {
      const response = await service.app.inject({ method: 'GET', url });
      expect(response.statusCode).toBe(404);
      expect(response.json()).toMatchObject({ code: 'order_not_found', detail: 'There is no order 987654321.' });
    }
    expect((await patch(987654321, 'Confirmed')).json()).toMatchObject({ code: 'order_not_found', detail: 'There is no order 987654321.' });
  });

  it('when the product is unknown or short of stock, then the detail names the product and the quantity', async () => {
    const unknown = await service.app.inject({ method: 'POST', url: '/orders', payload: orderInput({ product_id: 424242 }) });
    expect(unknown.statusCode).toBe(422);
    expect(unknown.json()).toMatchObject({
      code: 'unknown_product',
      detail: 'There is no product 424242.',
      errors: [{ field: 'product_id', message: 'no such product' }],
    });

    const product = await createProduct(service.app, { price: 2, stock: 1 });
    const short = await service.app.inject({ method: 'POST', url: '/orders', payload: orderInput({ product_id: product.id, quantity: 5 }) });
    expect(short.statusCode).toBe(409);
    expect(short.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(short.json()).toMatchObject({ code: 'insufficient_stock', detail: `Product ${product.id} has fewer than 5 in stock.` });
  });

  it('when If-Match names another version, then the detail gives the current one', async () => {
    const order = await createOrder(service.app);
    await moveTo(order.id, 'Confirmed');
    const stale = await patch(order.id, 'Shipped', { 'if-match': '"1"' });
    expect(stale.statusCode).toBe(412);
    expect(stale.json()).toMatchObject({
      code: 'precondition_failed',
      detail: `Order ${order.id} is at version 2, not the one in If-Match; read it again before changing it.`,
    });
  });

  it('when the cursor is not one the API issued, then it is 422 naming the cursor', async () => {
    const forged = ['o:0', 'x:12', 'xo:12', 'o:12 ', 'o:9999999999999999'].map((text) => Buffer.from(text).toString('base64url'));
    for (const cursor of forged) {
      const response = await service.app.inject({ method: 'GET', url: `/orders?cursor=${cursor}` });
      expect(response.statusCode, cursor).toBe(422);
      expect(response.json()).toMatchObject({
        code: 'validation_failed',
        detail: 'The cursor is not one this API issued.',
        errors: [{ field: 'cursor', message: 'invalid cursor' }],
      });
    }
  });

  it('when an Idempotency-Key comes back with another body, then the detail says to use a new key', async () => {
    const body = orderInput();
    const post = (payload: Record<string, unknown>) =>
      service.app.inject({ method: 'POST', url: '/orders', payload, headers: { 'idempotency-key': 'details-reused' } });
    expect((await post(body)).statusCode).toBe(201);
    expect((await post({ ...body, quantity: 1 })).json()).toMatchObject({
      code: 'idempotency_key_reused',
      detail: 'This Idempotency-Key was first used with a different body; use a new key for a new request.',
    });
  });
});

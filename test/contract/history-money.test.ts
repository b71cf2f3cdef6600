import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from '../helpers/databases.js';
import { createOrder, createProduct } from '../helpers/factories.js';
import { startTestService, type TestService } from '../helpers/service.js';

describe.each(databaseKinds())('money in an order\'s history, on $kind', ({ kind, skip }) => {
  let service: TestService;
  beforeAll(async () => {
    if (!skip) service = await startTestService({ database: kind });
  });
  afterAll(() => service?.close());

  it.skipIf(skip)('when the history is read, then its events write money exactly as the order does, with two decimals', async () => {
    const product = await createProduct(service.app, { price: 164017.89 });
    const order = await createOrder(service.app, { product_id: product.id, quantity: 3 });
    await service.app.inject({ method: 'PATCH', url: `/orders/${order.id}`, payload: { status: 'Confirmed' } });
    const read = () => service.app.inject({ method: 'GET', url: `/orders/${order.id}/history` });
    await expect.poll(async () => (await read()).json().length, { timeout: 10_000 }).toBe(2);

    const history = (await read()).body;
    expect(history.match(/"total_price":492053\.67,"unit_price":164017\.89/g)).toHaveLength(2);
    const current = (await service.app.inject({ method: 'GET', url: `/orders/${order.id}` })).body;
    expect(current).toContain('"total_price":492053.67,"unit_price":164017.89');

    const demo = await createOrder(service.app, { product_id: 1, quantity: 2 });
    await expect.poll(async () => (await service.app.inject({ method: 'GET', url: `/orders/${demo.id}/history` })).body, { timeout: 10_000 }).toContain(
      '"total_price":200.00,"unit_price":100.00',
    );
  });
});

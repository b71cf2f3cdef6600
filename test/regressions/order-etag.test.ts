import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from '../helpers/databases.js';
import { createOrder } from '../helpers/factories.js';
import { startTestService, type TestService } from '../helpers/service.js';

// DESIGN.md: GET /orders/{id} sends an ETag made from the order's version; a PATCH whose If-Match
// no longer matches is refused with 412. Found missing while writing the model of the contract.
for (const { kind, skip } of databaseKinds()) {
  describe.skipIf(skip)(`conditional status changes on ${kind}`, () => {
    let service: TestService;
    beforeAll(async () => {
      service = await startTestService({ database: kind });
    });
    afterAll(() => service?.close());

    it('when an order is read, then it carries an ETag that changes with its version', async () => {
      const order = await createOrder(service.app);
      const first = await service.app.inject({ method: 'GET', url: `/orders/${order.id}` });
      await service.app.inject({ method: 'PATCH', url: `/orders/${order.id}`, payload: { status: 'Confirmed' } });
      const second = await service.app.inject({ method: 'GET', url: `/orders/${order.id}` });
      expect(first.headers.etag).toEqual(expect.any(String));
      expect(second.headers.etag).toEqual(expect.any(String));
      expect(second.headers.etag).not.toBe(first.headers.etag);
    });

    it('when a PATCH carries an If-Match the order no longer matches, then it is 412 and nothing changes', async () => {
      const order = await createOrder(service.app);
      const read = await service.app.inject({ method: 'GET', url: `/orders/${order.id}` });
      const etag = String(read.headers.etag);
      await service.app.inject({ method: 'PATCH', url: `/orders/${order.id}`, payload: { status: 'Confirmed' } });

      const stale = await service.app.inject({ method: 'PATCH', url: `/orders/${order.id}`, payload: { status: 'Cancelled' }, headers: { 'if-match': etag } });

      expect(stale.statusCode).toBe(412);
      expect(stale.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect((await service.app.inject({ method: 'GET', url: `/orders/${order.id}` })).json()).toMatchObject({ status: 'Confirmed', version: 2 });
    });
  });
}

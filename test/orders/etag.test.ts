import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etagOf, namesVersion } from '../../src/http/etag.js';
import { databaseKinds } from '../helpers/databases.js';
import { createOrder } from '../helpers/factories.js';
import { startTestService, type TestService } from '../helpers/service.js';

describe('entity tags', () => {
  it('when a header lists tags, then strong comparison needs a strong tag and weak comparison takes either', () => {
    expect(etagOf(3)).toBe('"3"');
    expect(namesVersion('"3"', 3, 'strong')).toBe(true);
    expect(namesVersion('W/"3"', 3, 'strong')).toBe(false);
    expect(namesVersion('W/"3"', 3, 'weak')).toBe(true);
    expect(namesVersion('"1", "2" ,"3"', 3, 'strong')).toBe(true);
    expect(namesVersion('"1", "2"', 3, 'weak')).toBe(false);
    expect(namesVersion(' * ', 3, 'strong')).toBe(true);
    expect(namesVersion('"33"', 3, 'weak')).toBe(false);
    expect(namesVersion('"12"', 12, 'strong')).toBe(true);
    expect(namesVersion('"1", W/"12"', 12, 'weak')).toBe(true);
    for (const bad of ['3', '"3', 'x"3"', '', '"2" junk "3"']) expect(namesVersion(bad, 3, 'weak'), bad).toBe(false);
  });
});

for (const { kind, skip } of databaseKinds()) {
  describe.skipIf(skip)(`conditional requests on orders on ${kind}`, () => {
    let service: TestService;
    beforeAll(async () => {
      service = await startTestService({ database: kind });
    });
    afterAll(() => service?.close());
    const get = (id: number, headers: Record<string, string> = {}) => service.app.inject({ method: 'GET', url: `/orders/${id}`, headers });
    const patch = (id: number, status: string, headers: Record<string, string> = {}) =>
      service.app.inject({ method: 'PATCH', url: `/orders/${id}`, payload: { status }, headers });

    it('when the client already has the current version, then GET is 304 with no body, and 200 once it changed', async () => {
      const order = await createOrder(service.app);
      const first = await get(order.id);
      expect(first.headers.etag).toBe('"1"');
      const unchanged = await get(order.id, { 'if-none-match': first.headers.etag as string });
      expect(unchanged.statusCode).toBe(304);
      expect(unchanged.body).toBe('');
      expect(unchanged.headers.etag).toBe('"1"');

      const changed = await patch(order.id, 'Confirmed');
      expect(changed.headers.etag).toBe('"2"');
      const again = await get(order.id, { 'if-none-match': '"1"' });
      expect(again.statusCode).toBe(200);
      expect(again.json()).toMatchObject({ status: 'Confirmed', version: 2 });
    });

    it('when If-Match names the current version (or *), then PATCH applies; a weak or stale tag is 412 and changes nothing', async () => {
      const order = await createOrder(service.app);
      expect((await patch(order.id, 'Confirmed', { 'if-match': '"1"' })).statusCode).toBe(200);
      expect((await patch(order.id, 'Shipped', { 'if-match': 'W/"2"' })).statusCode).toBe(412);
      const stale = await patch(order.id, 'Shipped', { 'if-match': '"1"' });
      expect(stale.statusCode).toBe(412);
      expect(stale.json()).toMatchObject({ code: 'precondition_failed', status: 412 });
      expect((await get(order.id)).json()).toMatchObject({ status: 'Confirmed', version: 2 });
      expect((await patch(order.id, 'Shipped', { 'if-match': '*' })).statusCode).toBe(200);
    });

    it('when If-Match is stale for an unknown order, then it is 404: there is nothing to compare', async () => {
      expect((await patch(987654, 'Confirmed', { 'if-match': '"1"' })).statusCode).toBe(404);
    });
  });
}

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orderInput } from '../helpers/factories.js';
import { rawRequest, requestText, upgradeHeaders } from './raw-http.js';
import { bearer, setups, startListening, type ListeningService } from './setups.js';

/** The requests that got through with `API_KEYS=k1,k2` and no key, as the issue found them. */
const FOUND: { method: string; target: (port: number) => string; body?: unknown }[] = [
  { method: 'GET', target: () => '/%6Frders/1' },
  { method: 'GET', target: () => '/orde%72s' },
  { method: 'GET', target: () => '/%6Frders/1/history' },
  { method: 'GET', target: () => '/%70roducts' },
  { method: 'POST', target: () => '/%6Frders/', body: orderInput() },
  { method: 'PATCH', target: () => '/%6Frders/1', body: { status: 'Cancelled' } },
  { method: 'PATCH', target: () => '/%70roducts/1', body: { price: 0.01 } },
  { method: 'GET', target: () => '/orders#' },
  { method: 'GET', target: (port) => `http://127.0.0.1:${port}/orders/1` },
];

for (const setup of setups()) {
  describe.skipIf(setup.skip)(`the attacks of issue 7 on ${setup.name}`, () => {
    let s: ListeningService;
    beforeAll(async () => {
      s = await startListening(setup, { API_KEYS: 'k1,k2' });
      const created = await s.service.app.inject({ method: 'POST', url: '/orders/', payload: orderInput({ client_email: 'victim@example.com' }), headers: bearer('k1') });
      expect(created.statusCode).toBe(201);
    });
    afterAll(() => s?.service.close());

    it.each(FOUND.map((f) => [`${f.method} ${f.target(8001)}`, f] as const))('when %s is sent without a key, then it is 401 and no data leaves or changes', async (_name, found) => {
      const answer = await rawRequest(s.port, requestText(found.method, found.target(s.port), s.port, {}, found.body));

      expect(answer.status).toBe(401);
      expect(answer.headers['www-authenticate']).toBe('Bearer');
      expect(answer.headers['content-type']).toContain('application/problem+json');
      expect(answer.body).not.toContain('victim@example.com');
      const [state] = await s.service.db.query<{ orders: number; status: string; price: string }>(
        `SELECT (SELECT count(*)::int FROM orders) AS orders, (SELECT status FROM orders WHERE id = 1) AS status, (SELECT price::text FROM products WHERE id = 1) AS price`,
      );
      expect(state).toEqual({ orders: 1, status: 'Pending', price: '100.00' });
    });

    it('when a WebSocket upgrade on /%77s/notifications comes without a key, then it is 401 and the server closes the connection', async () => {
      const answer = await rawRequest(s.port, requestText('GET', '/%77s/notifications', s.port, upgradeHeaders({ connection: 'Upgrade' })), { waitForCloseMs: 2000 });

      expect(answer.status).toBe(401);
      expect(answer.headers['content-type']).toContain('application/problem+json');
      expect(answer.closedByServer).toBe(true);
    });

    it('when the bearer scheme is written in any case, then the key is accepted', async () => {
      for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
        const answer = await rawRequest(s.port, requestText('GET', '/orders/1', s.port, { authorization: `${scheme} k2` }));
        expect(answer.status, scheme).toBe(200);
      }
    });
  });
}

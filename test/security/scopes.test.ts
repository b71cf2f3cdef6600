import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { orderInput } from '../helpers/factories.js';
import { openEventClient } from '../helpers/ws-client.js';
import { bearer, setups, startListening, type ListeningService } from './setups.js';

describe('key settings', () => {
  it('when API_READ_KEYS is set, then its keys are read-only and API_KEYS keep full access', () => {
    const config = loadConfig({ API_KEYS: 'k1, k2', API_READ_KEYS: 'reader-1,reader-2' });
    expect(config.apiKeys).toEqual(['k1', 'k2']);
    expect(config.readKeys).toEqual(['reader-1', 'reader-2']);
  });

  it.each([
    [{ API_KEYS: 'k1', API_READ_KEYS: 'k1' }, /API_READ_KEYS.*both/],
    [{ API_KEYS: 'k1,has space' }, /API_KEYS/],
    [{ API_READ_KEYS: 'r1,"quoted"' }, /API_READ_KEYS/],
  ])('when the keys are %o, then start-up stops with a message naming the setting and not showing the keys', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
    try {
      loadConfig(env);
    } catch (error) {
      expect((error as Error).message).not.toMatch(/has space|quoted/);
    }
  });

  it('when only read-only keys are set, then the service may listen beyond loopback', () => {
    expect(loadConfig({ HOST: '0.0.0.0', API_READ_KEYS: 'reader' }).readKeys).toEqual(['reader']);
  });
});

for (const setup of setups()) {
  describe.skipIf(setup.skip)(`a read-only key on ${setup.name}`, () => {
    let s: ListeningService;
    beforeAll(async () => {
      s = await startListening(setup, { API_KEYS: 'writer', API_READ_KEYS: 'reader' });
      expect((await s.service.app.inject({ method: 'POST', url: '/orders/', payload: orderInput(), headers: bearer('writer') })).statusCode).toBe(201);
    });
    afterAll(() => s?.service.close());

    const call = (method: 'GET' | 'POST' | 'PATCH', url: string, payload?: object) =>
      s.service.app.inject({ method, url, headers: bearer('reader'), ...(payload ? { payload } : {}) });

    it('when it reads orders, an order, its history and the catalog, then it is served', async () => {
      for (const url of ['/orders', '/orders/1', '/orders/1/history', '/products', '/products/1']) {
        expect((await call('GET', url)).statusCode, url).toBe(200);
      }
    });

    it('when it creates an order, changes a status, a price or stock, or adds a product, then it is 403 problem+json and nothing changes', async () => {
      const attempts = [
        call('POST', '/orders/', orderInput()),
        call('PATCH', '/orders/1', { status: 'Cancelled' }),
        call('PATCH', '/products/1', { price: 0.01 }),
        call('PATCH', '/products/1', { stock: 0 }),
        call('POST', '/products', { name: 'Lamp', price: 1 }),
      ];
      for (const response of await Promise.all(attempts)) {
        expect(response.statusCode).toBe(403);
        expect(response.headers['content-type']).toContain('application/problem+json');
        expect(response.json().code).toBe('forbidden');
      }
      const [state] = await s.service.db.query<{ orders: number; products: number; status: string; price: string; stock: number | null }>(
        `SELECT (SELECT count(*)::int FROM orders) AS orders, (SELECT count(*)::int FROM products) AS products,
                (SELECT status FROM orders WHERE id = 1) AS status, price::text AS price, stock FROM products WHERE id = 1`,
      );
      expect(state).toMatchObject({ orders: 1, status: 'Pending', price: '100.00', stock: null });
    });

    it('when it subscribes, by header or by access_token, then it receives events', async () => {
      const byHeader = await openEventClient(`ws://127.0.0.1:${s.port}/ws/notifications`, bearer('reader'));
      const byToken = await openEventClient(`ws://127.0.0.1:${s.port}/ws/notifications?access_token=reader`);
      try {
        const created = await s.service.app.inject({ method: 'POST', url: '/orders/', payload: orderInput(), headers: bearer('writer') });
        expect(created.statusCode).toBe(201);
        // Events of orders made by earlier tests may still be on their way: wait for this one's.
        const id = created.json<{ id: number }>().id;
        for (const client of [byHeader, byToken]) {
          await expect.poll(() => client.events.some((e) => e.order_id === id), { timeout: 10_000 }).toBe(true);
        }
      } finally {
        byHeader.close();
        byToken.close();
      }
    });
  });
}

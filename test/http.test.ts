import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orderInput } from './helpers/factories.js';
import { startTestService, type TestService } from './helpers/service.js';

describe('docs and health', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService({ database: 'pglite' });
  });
  afterAll(() => service?.close());

  it('when /openapi.json is read, then it documents every route from the validating schemas', async () => {
    const response = await service.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(response.statusCode).toBe(200);
    const doc = response.json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/orders', '/orders/{id}', '/orders/{id}/history', '/products', '/products/{id}', '/healthz', '/readyz']));
    const create = doc.paths['/orders'].post;
    expect(create.requestBody.content['application/json'].schema.properties.quantity).toMatchObject({ type: 'integer', minimum: 1, maximum: 10000 });
    expect(create.requestBody.content['application/json'].schema.additionalProperties).toBe(false);
    expect(Object.keys(create.responses)).toEqual(expect.arrayContaining(['201', '409', '422']));
  });

  it('when /docs is opened, then the interactive docs are served', async () => {
    const response = await service.app.inject({ method: 'GET', url: '/docs/' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/text\/html/);
    expect(response.body).toMatch(/swagger/i);
  });

  it('when /healthz and /readyz are asked, then they report the process, its database, broker and change log', async () => {
    expect((await service.app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
    const ready = await service.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready', checks: { database: 'up', broker: 'up', changelog: 'up', event_log: 'up', notifications: 'up' } });
  });
});

describe('API keys', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService({ database: 'pglite', env: { API_KEYS: 'key-one,key-two' } });
  });
  afterAll(() => service?.close());

  it('when no key or a wrong key is sent, then the API answers 401 and creates nothing', async () => {
    for (const headers of [{}, { authorization: 'Bearer nope' }, { authorization: 'Basic a2V5LW9uZQ==' }]) {
      const response = await service.app.inject({ method: 'POST', url: '/orders/', payload: orderInput(), headers });
      expect(response.statusCode).toBe(401);
      expect(response.headers['www-authenticate']).toBe('Bearer');
      expect(response.json().code).toBe('unauthorized');
    }
    expect((await service.app.inject({ method: 'GET', url: '/products' })).statusCode).toBe(401);
    const [row] = await service.db.query<{ n: number }>('SELECT count(*)::int AS n FROM orders');
    expect(row!.n).toBe(0);
  });

  it('when a known key is sent, then the API serves; health stays open', async () => {
    const response = await service.app.inject({ method: 'POST', url: '/orders/', payload: orderInput(), headers: { authorization: 'Bearer key-two' } });
    expect(response.statusCode).toBe(201);
    expect((await service.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });

  it('when two callers use the same Idempotency-Key, then their requests are kept apart', async () => {
    const body = orderInput();
    const one = await service.app.inject({ method: 'POST', url: '/orders/', payload: body, headers: { authorization: 'Bearer key-one', 'idempotency-key': 'shared' } });
    const two = await service.app.inject({ method: 'POST', url: '/orders/', payload: { ...body, quantity: 5 }, headers: { authorization: 'Bearer key-two', 'idempotency-key': 'shared' } });
    expect([one.statusCode, two.statusCode]).toEqual([201, 201]);
    expect(one.json().id).not.toBe(two.json().id);
  });
});

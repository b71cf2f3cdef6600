import Fastify from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { recordRouteAccess } from '../../src/http/auth.js';
import { orderInput } from '../helpers/factories.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { bearer } from './setups.js';

const UNAUTHORIZED = 'Send Authorization: Bearer <key> with one of the API keys.';
const FORBIDDEN = 'This key may only read; changing orders or the catalog needs a key from API_KEYS.';

describe('how a key is presented', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService({ database: 'pglite', env: { API_KEYS: 'k1,k2', API_READ_KEYS: 'reader' } });
  });
  afterAll(() => service?.close());

  const get = (url: string, headers: Record<string, string> = {}) => service.app.inject({ method: 'GET', url, headers });

  it.each(['Bearer k1', 'Bearer  k1', 'Bearer\tk1', 'Bearer \t k1', 'Bearer k1 ', 'Bearer k1\t \t', 'bearer k2'])(
    'when the header is %j, then the key is read from it',
    async (authorization) => {
      expect((await get('/orders', { authorization })).statusCode).toBe(200);
    },
  );

  it.each(['Bearer', 'Bearer ', 'Bearerk1', 'Bearer k1 k2', 'Bearer k1 x', 'x Bearer k1', 'Token Bearer k1', 'Bearer "k1"', 'Bearer k1,', 'k1'])(
    'when the header is %j, then no key is presented: 401 problem+json that says how to send one',
    async (authorization) => {
      const answer = await get('/orders', { authorization });
      expect(answer.statusCode).toBe(401);
      expect(answer.headers['www-authenticate']).toBe('Bearer');
      expect(answer.headers['content-type']).toContain('application/problem+json');
      expect(answer.json()).toMatchObject({ status: 401, code: 'unauthorized', detail: UNAUTHORIZED });
    },
  );

  it('when a read-only key asks to change something, then the 403 says why', async () => {
    const answer = await service.app.inject({ method: 'POST', url: '/orders/', payload: orderInput(), headers: bearer('reader') });
    expect(answer.statusCode).toBe(403);
    expect(answer.headers['www-authenticate']).toBeUndefined();
    expect(answer.json()).toMatchObject({ status: 403, code: 'forbidden', detail: FORBIDDEN });
  });

  it('when the key comes as ?access_token= on the WebSocket route, then it is accepted there (426: upgrade) and nowhere else', async () => {
    expect((await get('/ws/notifications?access_token=k1')).statusCode).toBe(426);
    expect((await get('/ws/notifications?access_token=reader')).statusCode).toBe(426);
    expect((await get('/ws/notifications')).statusCode).toBe(401);
    for (const url of ['/orders?access_token=k1', '/orders/1?access_token=k1', '/products?access_token=reader']) {
      const answer = await get(url);
      expect(answer.statusCode, url).toBe(401);
      expect(answer.json().detail).toBe(UNAUTHORIZED);
    }
  });

  it.each([
    ['an empty token', '/ws/notifications?access_token='],
    ['a wrong token', '/ws/notifications?access_token=k3'],
    ['the token twice', '/ws/notifications?access_token=k1&access_token=k1'],
  ])('when the WebSocket route gets %s, then it is 401', async (_name, url) => {
    const answer = await get(url);
    expect(answer.statusCode).toBe(401);
    expect(answer.json().code).toBe('unauthorized');
  });

  it('when an Authorization header is sent, then it alone decides: a token in the query does not rescue a bad header', async () => {
    expect((await get('/ws/notifications?access_token=k1', { authorization: 'Basic azE6' })).statusCode).toBe(401);
    expect((await get('/ws/notifications?access_token=k1', { authorization: 'Bearer nope' })).statusCode).toBe(401);
    expect((await get('/ws/notifications?access_token=nope', bearer('k1'))).statusCode).toBe(426);
  });

  it('when an unknown route is asked for with a read-only key, whatever the method, then it is 404, not 403', async () => {
    for (const method of ['GET', 'POST', 'PATCH', 'DELETE'] as const) {
      const answer = await service.app.inject({ method, url: '/no-such-route', headers: bearer('reader'), ...(method === 'GET' ? {} : { payload: {} }) });
      expect(answer.statusCode, method).toBe(404);
      expect(answer.json().code).toBe('route_not_found');
    }
    expect((await service.app.inject({ method: 'DELETE', url: '/no-such-route' })).statusCode).toBe(401);
  });

  it('when two keys send the same Idempotency-Key, then each gets its own order; the same key gets its first answer again', async () => {
    const payload = orderInput();
    const create = (key: string) => service.app.inject({ method: 'POST', url: '/orders/', payload, headers: { ...bearer(key), 'idempotency-key': 'same-key-1' } });
    const first = await create('k1');
    const other = await create('k2');
    const again = await create('k1');
    expect([first.statusCode, other.statusCode, again.statusCode]).toEqual([201, 201, 201]);
    expect(other.json().id).not.toBe(first.json().id);
    expect(other.headers['idempotent-replayed']).toBeUndefined();
    expect(again.json().id).toBe(first.json().id);
    expect(again.headers['idempotent-replayed']).toBe('true');
  });
});

describe('who counts against the rate limit', () => {
  let service: TestService | undefined;
  afterEach(async () => {
    await service?.close();
    service = undefined;
  });

  const get = (url: string, remoteAddress: string, headers: Record<string, string> = {}) =>
    service!.app.inject({ method: 'GET', url, headers, remoteAddress });

  it('when a key calls from several addresses, then its calls count together; callers without a key count per address', async () => {
    service = await startTestService({ database: 'pglite', env: { API_KEYS: 'k1,k2', RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW_MS: '60000' } });

    const byKey = [await get('/products', '127.0.0.2', bearer('k1')), await get('/products', '127.0.0.3', bearer('k1')), await get('/products', '127.0.0.4', bearer('k1'))];
    expect(byKey.map((r) => r.statusCode)).toEqual([200, 200, 429]);
    expect(byKey[2]!.json()).toMatchObject({ code: 'rate_limited', detail: expect.stringMatching(/^At most 2 requests per 60 s for each key; retry in \d+ (minute|second)s?\.$/) });
    expect((await get('/products', '127.0.0.4', bearer('k2'))).statusCode).toBe(200);

    // A public route, without a key: per address, and not with the key that called from the same address.
    const anonymous = [await get('/openapi.json', '127.0.0.2'), await get('/openapi.json', '127.0.0.2'), await get('/openapi.json', '127.0.0.2')];
    expect(anonymous.map((r) => r.statusCode)).toEqual([200, 200, 429]);
    expect((await get('/openapi.json', '127.0.0.5')).statusCode).toBe(200);
  });

  it('when a wrong key calls a public route, then it counts by its address, like no key', async () => {
    service = await startTestService({ database: 'pglite', env: { API_KEYS: 'k1', RATE_LIMIT_MAX: '1', RATE_LIMIT_WINDOW_MS: '60000' } });

    expect((await get('/openapi.json', '127.0.0.2', bearer('wrong-1'))).statusCode).toBe(200);
    expect((await get('/openapi.json', '127.0.0.3', bearer('wrong-1'))).statusCode).toBe(200);
    expect((await get('/openapi.json', '127.0.0.2', bearer('wrong-2'))).statusCode).toBe(429);
  });
});

describe('route access as registered', () => {
  const apps: ReturnType<typeof Fastify>[] = [];
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
  });
  const bare = () => {
    const app = Fastify();
    apps.push(app);
    recordRouteAccess(app);
    return app;
  };

  it('when routes are registered, then each method of each route is listed with its declared access, or read for safe methods and write for others', async () => {
    const app = bare();
    app.route({ method: ['GET', 'POST'], url: '/a', handler: async () => 'a' });
    app.route({ method: ['HEAD', 'OPTIONS', 'PUT', 'DELETE'], url: '/b', handler: async () => 'b' });
    app.get('/c', { config: { access: 'public' } }, async () => 'c');
    app.post('/d', { config: { access: 'read' } }, async () => 'd');
    await app.ready();

    expect(app.routeAccess).toEqual(
      expect.arrayContaining([
        { method: 'GET', url: '/a', access: 'read' },
        { method: 'POST', url: '/a', access: 'write' },
        { method: 'HEAD', url: '/b', access: 'read' },
        { method: 'OPTIONS', url: '/b', access: 'read' },
        { method: 'PUT', url: '/b', access: 'write' },
        { method: 'DELETE', url: '/b', access: 'write' },
        { method: 'GET', url: '/c', access: 'public' },
        { method: 'POST', url: '/d', access: 'read' },
      ]),
    );
  });

  it('when a route declares an access that does not exist, then the app does not start, naming the route', async () => {
    const app = bare();
    app.get('/fine', async () => 'ok');
    app.get('/admin', { config: { access: 'admin' as never } }, async () => 'secret');

    await expect(app.ready()).rejects.toThrow('route GET /admin declares access "admin"; use one of public, read, write');
  });
});

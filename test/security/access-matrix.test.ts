import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orderInput } from '../helpers/factories.js';
import { rawRequest, requestText } from './raw-http.js';
import { bearer, setups, startListening, type ListeningService } from './setups.js';

const FULL_KEY = 'k1';
const READ_KEY = 'reader-key';
const ENV = { API_KEYS: `${FULL_KEY},k2`, API_READ_KEYS: READ_KEY, CORS_ORIGINS: 'https://dashboard.example' };

/** Every spelling of a path that an attacker tried: each must reach the same decision as the plain one. */
function spellings(path: string, port: number): { form: string; target: string }[] {
  const segments = path.split('/').slice(1);
  const literal = segments.filter((s) => /^[a-z]/.test(s));
  const encodeAt = (segment: string, i: number) => `${segment.slice(0, i)}%${segment.charCodeAt(i).toString(16).toUpperCase()}${segment.slice(i + 1)}`;
  const replaceSegment = (segment: string, by: string) => `/${segments.map((s) => (s === segment ? by : s)).join('/')}`;
  const first = literal[0]!;
  const last = literal.at(-1)!;
  return [
    { form: 'plain', target: path },
    { form: 'first letter %-encoded', target: replaceSegment(first, encodeAt(first, 0)) },
    { form: 'first letter %-encoded, lower-case hex', target: replaceSegment(first, encodeAt(first, 0).toLowerCase()) },
    { form: 'inner letter %-encoded', target: replaceSegment(first, encodeAt(first, Math.max(first.length - 2, 0))) },
    { form: 'last segment %-encoded', target: replaceSegment(last, encodeAt(last, 0)) },
    { form: 'fragment in the request line', target: `${path}#` },
    { form: 'empty query', target: `${path}?` },
    { form: 'absolute form', target: `http://127.0.0.1:${port}${path}` },
    { form: 'double slash', target: `/${path}` },
    { form: 'upper case', target: path.toUpperCase() },
    { form: 'trailing slash', target: `${path}/` },
    { form: 'dot segment', target: `/x/..${path}` },
    { form: 'encoded slash', target: path.lastIndexOf('/') > 0 ? path.replace(/\/(?=[^/]*$)/, '%2F') : `${path}%2F` },
  ];
}

const CREDENTIALS: { name: string; headers: Record<string, string> }[] = [
  { name: 'no key', headers: {} },
  { name: 'a wrong key', headers: bearer('not-a-key') },
  { name: 'the key in another scheme', headers: { authorization: `Basic ${Buffer.from(`${FULL_KEY}:`).toString('base64')}` } },
  { name: 'the key without a scheme', headers: { authorization: FULL_KEY } },
];

/** A concrete path for a route pattern, and a body that would change data if it got through. */
function sample(method: string, url: string): { path: string; body?: unknown } {
  const path = url === '*' || url === '/*' ? '/orders' : url.replace(/:[a-z_]+/g, '1').replace(/\*$/, 'swagger-ui.css');
  const bodies: Record<string, unknown> = {
    'POST /orders': orderInput(),
    'PATCH /orders/:id': { status: 'Cancelled' },
    'POST /products': { name: 'Free lunch', price: 0.01 },
    'PATCH /products/:id': { price: 0.01 },
  };
  const body = bodies[`${method} ${url}`];
  return body === undefined ? { path } : { path, body };
}

for (const setup of setups()) {
  describe.skipIf(setup.skip)(`every route, every spelling, on ${setup.name}`, () => {
    let s: ListeningService;
    beforeAll(async () => {
      s = await startListening(setup, ENV);
      const created = await s.service.app.inject({ method: 'POST', url: '/orders/', payload: orderInput(), headers: bearer(FULL_KEY) });
      expect(created.statusCode).toBe(201);
    });
    afterAll(() => s?.service.close());

    const routes = () => s.service.app.routeAccess;
    const protectedRoutes = () => routes().filter((r) => r.access !== 'public');
    const snapshot = async () =>
      (
        await s.service.db.query<{ orders: number; products: number; status: string; price: string }>(
          `SELECT (SELECT count(*)::int FROM orders) AS orders, (SELECT count(*)::int FROM products) AS products,
                  (SELECT status FROM orders WHERE id = 1) AS status, (SELECT price::text FROM products WHERE id = 1) AS price`,
        )
      )[0];

    it('when the registered routes are listed, then every API route is among them and only health, docs, the OpenAPI document and the console are public', () => {
      const listed = routes().map((r) => `${r.method} ${r.url}`);
      expect(listed).toEqual(
        expect.arrayContaining([
          'POST /orders', 'GET /orders', 'GET /orders/:id', 'PATCH /orders/:id', 'GET /orders/:id/history',
          'GET /products', 'GET /products/:id', 'POST /products', 'PATCH /products/:id', 'GET /ws/notifications',
          'GET /healthz', 'GET /readyz', 'GET /openapi.json', 'GET /docs', 'GET /metrics', 'GET /',
        ]),
      );
      const publicUrls = routes().filter((r) => r.access === 'public').map((r) => r.url);
      // The console's files are routes of their own (one per built file): other URLs still need a key.
      const consoleFile = (url: string) => url === '/' || url === '/index.html' || /^\/assets\/[\w.-]+$/.test(url) || /^\/[\w-]+\.(svg|png|ico)$/.test(url);
      expect(publicUrls.filter((url) => !['/healthz', '/readyz', '/openapi.json', '/docs'].includes(url) && !url.startsWith('/docs/') && !consoleFile(url))).toEqual([]);
      expect(routes().find((r) => r.url === '/metrics')?.access).toBe('read');
      expect(protectedRoutes().length).toBeGreaterThanOrEqual(12);
    });

    it('when a protected route is called without a valid key, in any spelling, then it answers 401 problem+json and changes nothing', async () => {
      const before = await snapshot();
      const failures: string[] = [];
      let requests = 0;
      for (const route of protectedRoutes()) {
        const { path, body } = sample(route.method, route.url);
        for (const { form, target } of spellings(path, s.port)) {
          for (const credential of CREDENTIALS) {
            const answer = await rawRequest(s.port, requestText(route.method, target, s.port, credential.headers, body));
            requests++;
            const problem =
              answer.status === 401 &&
              answer.headers['content-type']?.startsWith('application/problem+json') &&
              (route.method === 'HEAD' || JSON.parse(answer.body).code === 'unauthorized');
            if (!problem) failures.push(`${route.method} ${target} with ${credential.name} (${form}) → ${answer.status}`);
          }
        }
      }
      expect(failures).toEqual([]);
      expect(await snapshot()).toEqual(before);
      console.error(`access matrix on ${setup.name}: ${protectedRoutes().length} protected routes × ${spellings('/a/b', s.port).length} spellings × ${CREDENTIALS.length} credentials = ${requests} requests, all 401`);
    });

    it('when a public route is called without a key, then it is not refused', async () => {
      for (const route of routes().filter((r) => r.access === 'public')) {
        const { path } = sample(route.method, route.url);
        const answer = await rawRequest(s.port, requestText(route.method, path, s.port));
        expect(answer.status, `${route.method} ${path}`).not.toBe(401);
      }
    });

    it('when the right key is sent, in any spelling, then no route answers 401 or 403', async () => {
      const failures: string[] = [];
      for (const route of protectedRoutes()) {
        const { path, body } = sample(route.method, route.url);
        for (const { form, target } of spellings(path, s.port)) {
          const answer = await rawRequest(s.port, requestText(route.method, target, s.port, bearer(FULL_KEY), body));
          if (answer.status === 401 || answer.status === 403) failures.push(`${route.method} ${target} (${form}) → ${answer.status}`);
        }
      }
      expect(failures).toEqual([]);
    });

    it('when a read-only key is sent, then reads are served and every other method answers 403 problem+json', async () => {
      const failures: string[] = [];
      for (const route of protectedRoutes()) {
        const { path, body } = sample(route.method, route.url);
        const answer = await rawRequest(s.port, requestText(route.method, path, s.port, bearer(READ_KEY), body));
        const reads = ['GET', 'HEAD', 'OPTIONS'].includes(route.method);
        const code = /json/.test(answer.headers['content-type'] ?? '') && answer.body ? (JSON.parse(answer.body) as { code?: string }).code : undefined;
        if (reads ? answer.status === 401 || answer.status === 403 : answer.status !== 403 || code !== 'forbidden') {
          failures.push(`${route.method} ${path} with a read-only key → ${answer.status} ${code ?? ''}`);
        }
      }
      expect(failures).toEqual([]);
    });

    it('when an unknown route is asked for, then without a key it is 401 like any other, and with a key 404', async () => {
      const without = await rawRequest(s.port, requestText('GET', '/no-such-route', s.port));
      expect(without.status).toBe(401);
      const withKey = await rawRequest(s.port, requestText('GET', '/no-such-route', s.port, bearer(READ_KEY)));
      expect(withKey.status).toBe(404);
      expect(JSON.parse(withKey.body).code).toBe('route_not_found');
    });
  });
}

import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { helmetHeaders, installSecurity, type SecurityOptions } from '../../src/http/security.js';
import { startTestService, type TestService } from '../helpers/service.js';

// Each test builds what it checks inside itself: what a service registers at start is then credited to the
// test that looks at it (mutation tests).

describe('the headers helmet decides, worked out once', () => {
  it('when the API policy is asked for, then every header comes named in lower case with helmet\'s value', () => {
    const headers = helmetHeaders({ contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"] } } });

    expect(headers).toMatchObject({
      'content-security-policy': "default-src 'none'",
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'SAMEORIGIN',
      'strict-transport-security': 'max-age=31536000; includeSubDomains',
    });
    expect(Object.keys(headers).every((name) => name === name.toLowerCase())).toBe(true);
  });

  it('when helmet refuses a policy while it sets the headers, then the refusal is thrown, not a policy left out', () => {
    // A directive worked out per request is checked then, and helmet passes the refusal to its callback.
    const perRequest = { contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: [() => "'self'; script-src *"] } } };

    expect(() => helmetHeaders(perRequest)).toThrow(/Content-Security-Policy/);
  });
});

describe('what the security layer registers', () => {
  let service: TestService | undefined;
  afterEach(async () => {
    await service?.close();
    service = undefined;
  });

  it('when CORS_ORIGINS is unset, then OPTIONS is no route: 404 problem+json, no CORS header, even for a preflight', async () => {
    service = await startTestService({ database: 'pglite', env: {} });

    const answer = await service.app.inject({ method: 'OPTIONS', url: '/orders/', headers: { origin: 'https://dashboard.example', 'access-control-request-method': 'POST' } });

    expect(answer.statusCode).toBe(404);
    expect(answer.json()).toMatchObject({ code: 'route_not_found' });
    expect(Object.keys(answer.headers).filter((name) => name.startsWith('access-control-'))).toEqual([]);
  });

  it('when a JSON answer is sent, then it carries the API policy: no source at all, no framing', async () => {
    service = await startTestService({ database: 'pglite', env: {} });

    const answer = await service.app.inject({ method: 'GET', url: '/products' });

    expect(answer.headers['content-security-policy']).toBe("default-src 'none';frame-ancestors 'none';base-uri 'none';form-action 'none'");
  });

  it('when one route serves a safe and a changing method, then it declares the refusals of a write: 401 and 403', async () => {
    const app = Fastify();
    const declared = new Map<string, string[]>();
    const options: SecurityOptions = { keys: { full: ['k1'], read: ['r1'] }, rateLimit: { max: 0, windowMs: 1000 }, corsOrigins: [], websocket: { total: 0, perCaller: 0 } };
    try {
      app.addSchema({ $id: 'Problem', type: 'object' });
      await installSecurity(app, options);
      // Registered after the security layer's hook, so it sees the schema that hook left.
      app.addHook('onRoute', (route) => {
        declared.set(`${[route.method].flat().join(',')} ${route.url}`, Object.keys((route.schema?.response as object | undefined) ?? {}));
      });
      app.route({ method: ['GET', 'POST'], url: '/mixed', schema: { response: { 200: { type: 'string' } } }, handler: async () => 'ok' });
      app.route({ method: ['GET', 'HEAD'], url: '/safe', schema: { response: { 200: { type: 'string' } } }, handler: async () => 'ok' });
      app.get('/hidden', { schema: { hide: true } }, async () => 'ok');
      await app.ready();
    } finally {
      await app.close();
    }

    expect(declared.get('GET,POST /mixed')).toEqual(['200', '401', '403']);
    expect(declared.get('GET,HEAD /safe')).toEqual(['200', '401']);
    expect(declared.get('GET /hidden')).toEqual([]);
  });
});

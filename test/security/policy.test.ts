import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { builtConsoleFixture } from '../helpers/console-fixture.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { bearer } from './setups.js';

const DASHBOARD = 'https://dashboard.example';

describe('CORS for the named origins', () => {
  let service: TestService;
  beforeEach(async () => {
    service = await startTestService({ database: 'pglite', env: { API_KEYS: 'k1', CORS_ORIGINS: `${DASHBOARD},http://localhost:3000` } });
  });
  afterEach(() => service?.close());

  const options = (headers: Record<string, string>) => service.app.inject({ method: 'OPTIONS', url: '/orders/', headers });

  it('when a listed origin sends a preflight, then it is told exactly which methods and headers it may use and may read, for 10 minutes', async () => {
    const answer = await options({ origin: 'http://localhost:3000', 'access-control-request-method': 'PATCH' });

    expect(answer.statusCode).toBe(204);
    expect(answer.headers).toMatchObject({
      'access-control-allow-origin': 'http://localhost:3000',
      'access-control-allow-methods': 'GET, HEAD, POST, PATCH',
      'access-control-allow-headers': 'Authorization, Content-Type, Idempotency-Key, If-Match, X-Request-Id',
      'access-control-expose-headers': 'Location, ETag, Retry-After, Idempotent-Replayed, X-Request-Id, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset',
      'access-control-max-age': '600',
    });
  });

  it('when an OPTIONS request is not a preflight (no Access-Control-Request-Method), then it is an ordinary request and needs a key', async () => {
    const answer = await options({ origin: DASHBOARD });

    expect(answer.statusCode).toBe(401);
    expect(answer.json().code).toBe('unauthorized');
    expect(answer.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('when an origin that is not listed sends a preflight or a call, then nothing allows it, and the preflight needs a key', async () => {
    const preflight = await options({ origin: 'https://evil.example', 'access-control-request-method': 'POST' });
    const noOrigin = await options({ 'access-control-request-method': 'POST' });
    const call = await service.app.inject({ method: 'GET', url: '/products', headers: { ...bearer('k1'), origin: 'https://dashboard.example.evil' } });

    expect(preflight.statusCode).toBe(401);
    expect(noOrigin.statusCode).toBe(401);
    for (const answer of [preflight, noOrigin, call]) expect(answer.headers['access-control-allow-origin']).toBeUndefined();
    expect(call.statusCode).toBe(200);
  });
});

describe('caching', () => {
  let service: TestService;
  const built = builtConsoleFixture();
  beforeEach(async () => {
    service = await startTestService({ database: 'pglite', env: { API_KEYS: 'k1' }, consoleRoot: built.root });
  });
  afterEach(() => service?.close());
  afterAll(() => built.remove());

  it('when the console page is served, then its own cache policy is kept; API answers say no-store', async () => {
    const page = await service.app.inject({ method: 'GET', url: '/' });
    const api = await service.app.inject({ method: 'GET', url: '/products', headers: bearer('k1') });

    expect(page.statusCode).toBe(200);
    expect(page.headers['cache-control']).toBe('no-cache');
    expect(api.headers['cache-control']).toBe('no-store');
  });

  it('when an answer is sent, then the API policy forbids any other source or framing', async () => {
    const api = await service.app.inject({ method: 'GET', url: '/products', headers: bearer('k1') });
    expect(api.headers['content-security-policy']).toBe("default-src 'none';frame-ancestors 'none';base-uri 'none';form-action 'none'");
  });
});

describe('refusals in the OpenAPI document', () => {
  let service: TestService | undefined;
  afterEach(async () => {
    await service?.close();
    service = undefined;
  });

  const responses = async (env: Record<string, string>) => {
    service = await startTestService({ database: 'pglite', env });
    const doc = (await service.app.inject({ method: 'GET', url: '/openapi.json', headers: bearer('reader') })).json() as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    };
    return (path: string, method: string) => Object.keys(doc.paths[path]![method]!.responses);
  };

  it('when only read-only keys are set and limits are off, then routes declare 401, writes 403 too, and none 429', async () => {
    const of = await responses({ API_READ_KEYS: 'reader', RATE_LIMIT_MAX: '0' });

    expect(of('/orders', 'post')).toEqual(expect.arrayContaining(['401', '403']));
    expect(of('/orders', 'get')).toContain('401');
    expect(of('/orders', 'get')).not.toContain('403');
    expect(of('/healthz', 'get')).not.toContain('401');
    for (const [path, method] of [['/orders', 'post'], ['/orders', 'get'], ['/metrics', 'get']] as const) expect(of(path, method)).not.toContain('429');
  });

  it('when the service runs open with limits on, then routes declare 429 (health none) and no 401 or 403', async () => {
    const of = await responses({});

    expect(of('/orders', 'post')).toContain('429');
    expect(of('/orders/{id}', 'patch')).toContain('429');
    expect(of('/healthz', 'get')).not.toContain('429');
    for (const [path, method] of [['/orders', 'post'], ['/orders', 'get'], ['/products/{id}', 'patch']] as const) {
      expect(of(path, method)).not.toContain('401');
      expect(of(path, method)).not.toContain('403');
    }
  });
});

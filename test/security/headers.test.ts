import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { securityOptions } from '../../src/http/security.js';
import { orderInput } from '../helpers/factories.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { bearer, setups } from './setups.js';

const DASHBOARD = 'https://dashboard.example';

for (const setup of setups()) {
  describe.skipIf(setup.skip)(`response headers on ${setup.name}`, () => {
    let service: TestService;
    // Each test starts its own service, so that what the service registers at start counts as tested (mutation tests).
    beforeEach(async () => {
      service = await startTestService({ database: setup.database, env: { API_KEYS: 'k1' } });
    });
    afterEach(() => service?.close());

    it('when anything is answered (data, errors, docs, health), then it carries X-Content-Type-Options: nosniff', async () => {
      const answers = await Promise.all([
        service.app.inject({ method: 'GET', url: '/products', headers: bearer('k1') }),
        service.app.inject({ method: 'POST', url: '/orders/', payload: { quantity: 0 }, headers: bearer('k1') }),
        service.app.inject({ method: 'GET', url: '/orders/999', headers: bearer('k1') }),
        service.app.inject({ method: 'GET', url: '/orders' }),
        service.app.inject({ method: 'GET', url: '/nowhere', headers: bearer('k1') }),
        service.app.inject({ method: 'GET', url: '/docs/' }),
        service.app.inject({ method: 'GET', url: '/openapi.json' }),
        service.app.inject({ method: 'GET', url: '/healthz' }),
      ]);
      expect(answers.map((a) => a.statusCode)).toEqual([200, 422, 404, 401, 404, 200, 200, 200]);
      for (const answer of answers) expect(answer.headers['x-content-type-options']).toBe('nosniff');
    });

    it('when the API answers, success or error, then it says Cache-Control: no-store', async () => {
      const created = await service.app.inject({ method: 'POST', url: '/orders/', payload: orderInput(), headers: bearer('k1') });
      const answers = [
        created,
        await service.app.inject({ method: 'GET', url: `/orders/${created.json().id}`, headers: bearer('k1') }),
        await service.app.inject({ method: 'GET', url: '/orders', headers: bearer('k1') }),
        await service.app.inject({ method: 'GET', url: '/orders' }),
        await service.app.inject({ method: 'GET', url: '/readyz' }),
      ];
      for (const answer of answers) expect(answer.headers['cache-control']).toBe('no-store');
    });

    it('when /docs is served, then its Content-Security-Policy allows only its own scripts and styles, and everything the page loads is served from here', async () => {
      const page = await service.app.inject({ method: 'GET', url: '/docs/' });
      const csp = String(page.headers['content-security-policy']);
      expect(csp).toMatch(/default-src 'self'/);
      expect(csp).toMatch(/script-src 'self'(;|$)/);
      expect(csp).toMatch(/object-src 'none'/);
      expect(csp).toMatch(/frame-ancestors 'self'/);
      expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/);
      // No inline scripts or styles, which the policy would block: every asset is a same-origin file.
      expect(page.body).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>|<style|\sstyle=/i);
      const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => new URL(m[1]!, 'http://127.0.0.1/docs/').pathname);
      expect(assets.length).toBeGreaterThanOrEqual(5);
      for (const asset of [...assets, '/docs/json']) {
        const answer = await service.app.inject({ method: 'GET', url: asset });
        expect(answer.statusCode, asset).toBe(200);
      }
      const initializer = await service.app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' });
      expect(initializer.body).toMatch(/SwaggerUIBundle/);
    });
  });
}

describe('readiness detail', () => {
  let app: Awaited<ReturnType<typeof buildApp>>;
  afterEach(() => app?.close());

  it('when a dependency is down, then /readyz without a key says "down" and nothing more; with a key it says why', async () => {
    const config = loadConfig({ API_KEYS: 'k1' });
    app = await buildApp({
      logger: pino({ level: 'silent' }),
      security: securityOptions(config),
      readiness: {
        database: { critical: true, check: () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:16401')) },
        broker: { critical: false, check: () => 'connecting' },
      },
    });

    const anonymous = await app.inject({ method: 'GET', url: '/readyz' });
    const wrongKey = await app.inject({ method: 'GET', url: '/readyz', headers: bearer('nope') });
    const trusted = await app.inject({ method: 'GET', url: '/readyz', headers: bearer('k1') });

    expect(anonymous.statusCode).toBe(503);
    expect(anonymous.json()).toEqual({ status: 'not ready', checks: { database: 'down', broker: 'down' } });
    expect(wrongKey.json()).toEqual(anonymous.json());
    expect(trusted.json()).toEqual({ status: 'not ready', checks: { database: 'down: connect ECONNREFUSED 127.0.0.1:16401', broker: 'connecting' } });
  });
});

describe('CORS', () => {
  let service: TestService | undefined;
  afterEach(async () => {
    await service?.close();
    service = undefined;
  });
  const preflight = () =>
    service!.app.inject({
      method: 'OPTIONS',
      url: '/orders/',
      headers: { origin: DASHBOARD, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type,idempotency-key' },
    });

  it('when CORS_ORIGINS is unset, then no origin is allowed; when it names a dashboard, then its preflight is answered without a key and its calls may read the answers', async () => {
    service = await startTestService({ database: 'pglite', env: { API_KEYS: 'k1' } });
    const closed = [await preflight(), await service.app.inject({ method: 'GET', url: '/products', headers: { ...bearer('k1'), origin: DASHBOARD } })];
    expect(closed.map((a) => a.headers['access-control-allow-origin'])).toEqual([undefined, undefined]);
    await service.close();

    service = await startTestService({ database: 'pglite', env: { API_KEYS: 'k1', CORS_ORIGINS: `${DASHBOARD},http://localhost:3000` } });

    const answer = await preflight();
    const created = await service.app.inject({ method: 'POST', url: '/orders/', payload: orderInput(), headers: { ...bearer('k1'), origin: DASHBOARD } });
    const stranger = await service.app.inject({ method: 'GET', url: '/products', headers: { ...bearer('k1'), origin: 'https://evil.example' } });

    expect(answer.statusCode).toBe(204);
    expect(answer.headers['access-control-allow-origin']).toBe(DASHBOARD);
    expect(String(answer.headers['access-control-allow-methods'])).toMatch(/POST/);
    expect(String(answer.headers['access-control-allow-headers']).toLowerCase()).toMatch(/authorization/);
    expect(created.statusCode).toBe(201);
    expect(created.headers['access-control-allow-origin']).toBe(DASHBOARD);
    expect(String(created.headers['access-control-expose-headers']).toLowerCase()).toMatch(/location/);
    expect(stranger.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('when CORS_ORIGINS is not a list of origins, then start-up stops naming it', () => {
    expect(() => loadConfig({ CORS_ORIGINS: 'dashboard.example' })).toThrow(/CORS_ORIGINS/);
    expect(() => loadConfig({ CORS_ORIGINS: 'https://dashboard.example/path' })).toThrow(/CORS_ORIGINS/);
  });
});

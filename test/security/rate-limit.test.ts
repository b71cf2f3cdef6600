import { afterEach, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import { bearer, setups } from './setups.js';

let service: TestService | undefined;
afterEach(async () => {
  await service?.close();
  service = undefined;
});

const get = (url: string, headers: Record<string, string> = {}, remoteAddress?: string) =>
  service!.app.inject({ method: 'GET', url, headers, ...(remoteAddress ? { remoteAddress } : {}) });

describe('rate limits', () => {
  it.each(setups().map((setup) => [setup.name, setup] as const))(
    'when a key sends more than RATE_LIMIT_MAX requests in the window on %s, then it gets 429 problem+json with Retry-After and RateLimit headers, and other keys do not',
    async (_name, setup) => {
      if (setup.skip) return;
      service = await startTestService({ database: setup.database, env: { API_KEYS: 'k1,k2', RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000' } });

      const allowed = [];
      for (let i = 0; i < 3; i++) allowed.push(await get('/products', bearer('k1')));
      const refused = await get('/products', bearer('k1'));

      expect(allowed.map((r) => r.statusCode)).toEqual([200, 200, 200]);
      expect(allowed.map((r) => r.headers['ratelimit-remaining'])).toEqual(['2', '1', '0']);
      expect(allowed[0]!.headers['ratelimit-limit']).toBe('3');
      expect(refused.statusCode).toBe(429);
      expect(refused.headers['content-type']).toContain('application/problem+json');
      expect(refused.json()).toMatchObject({ status: 429, code: 'rate_limited' });
      const retryAfter = Number(refused.headers['retry-after']);
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(refused.headers['ratelimit-remaining']).toBe('0');
      expect(Number(refused.headers['ratelimit-reset'])).toBe(retryAfter);
      expect((await get('/products', bearer('k2'))).statusCode).toBe(200);
    },
  );

  it('when the service runs open, then the limit counts per address, and /healthz and /readyz are never limited', async () => {
    service = await startTestService({ database: 'pglite', env: { RATE_LIMIT_MAX: '2' } });

    const first = [await get('/products', {}, '127.0.0.2'), await get('/products', {}, '127.0.0.2'), await get('/products', {}, '127.0.0.2')];
    const other = await get('/products', {}, '127.0.0.3');

    expect(first.map((r) => r.statusCode)).toEqual([200, 200, 429]);
    expect(other.statusCode).toBe(200);
    const health = [];
    for (let i = 0; i < 5; i++) health.push((await get('/healthz', {}, '127.0.0.2')).statusCode, (await get('/readyz', {}, '127.0.0.2')).statusCode);
    expect(health.every((status) => status === 200)).toBe(true);
  });

  it('when RATE_LIMIT_MAX is unset, then the default limit applies; when it is 0, nothing is limited', async () => {
    service = await startTestService({ database: 'pglite' });
    expect((await get('/products')).headers['ratelimit-limit']).toBe('60000');
    await service.close();

    service = await startTestService({ database: 'pglite', env: { RATE_LIMIT_MAX: '0' } });
    const responses = [];
    for (let i = 0; i < 30; i++) responses.push(await get('/products'));

    expect(responses.every((r) => r.statusCode === 200 && r.headers['ratelimit-limit'] === undefined)).toBe(true);
  });
});

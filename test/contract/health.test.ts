import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import type { ReadinessCheck } from '../../src/http/health.js';
import { securityOptions } from '../../src/http/security.js';

let app: Awaited<ReturnType<typeof buildApp>> | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

const start = async (readiness: Record<string, ReadinessCheck>, env: Record<string, string> = {}) => {
  app = await buildApp({ logger: pino({ level: 'silent' }), security: securityOptions(loadConfig(env)), readiness });
  return app;
};
const readyz = async (headers: Record<string, string> = {}) => {
  const answer = await app!.inject({ method: 'GET', url: '/readyz', headers });
  return { status: answer.statusCode, body: answer.json() as { status: string; checks: Record<string, string> } };
};

describe('readiness', () => {
  it('when every check is up, then it is 200 ready; /healthz says ok whatever the checks', async () => {
    await start({ database: { critical: true, check: () => 'up' }, broker: { critical: false, check: async () => 'up' } });

    expect(await readyz()).toEqual({ status: 200, body: { status: 'ready', checks: { database: 'up', broker: 'up' } } });
    const health = await app!.inject({ method: 'GET', url: '/healthz' });
    expect([health.statusCode, health.json()]).toEqual([200, { status: 'ok' }]);
  });

  it('when only a check that is not critical is down, then the process is still ready and says what is down', async () => {
    await start({ database: { critical: true, check: () => 'up' }, broker: { critical: false, check: () => 'connecting' } });

    expect(await readyz()).toEqual({ status: 200, body: { status: 'ready', checks: { database: 'up', broker: 'connecting' } } });
  });

  it('when a critical check is anything but up, then it is 503 not ready', async () => {
    await start({ database: { critical: true, check: () => 'connecting' } });

    expect(await readyz()).toEqual({ status: 503, body: { status: 'not ready', checks: { database: 'connecting' } } });
  });

  it('when it is 503, then it carries Retry-After: 5, as every 503 does; a 200 carries none', async () => {
    await start({ database: { critical: true, check: () => 'connecting' } });
    expect((await app!.inject({ method: 'GET', url: '/readyz' })).headers['retry-after']).toBe('5');
    await app!.close();

    await start({ database: { critical: true, check: () => 'up' } });
    expect((await app!.inject({ method: 'GET', url: '/readyz' })).headers['retry-after']).toBeUndefined();
  });

  it('when a critical check is in a state it names as acceptable, then the process is ready and says which; any other state is still 503', async () => {
    await start({ broker: { critical: true, check: () => 'blocked', acceptable: ['blocked'] } });
    expect(await readyz()).toEqual({ status: 200, body: { status: 'ready', checks: { broker: 'blocked' } } });
    await app!.close();

    await start({ broker: { critical: true, check: () => 'connecting', acceptable: ['blocked'] }, database: { critical: true, check: () => 'up' } });
    expect(await readyz()).toEqual({ status: 503, body: { status: 'not ready', checks: { broker: 'connecting', database: 'up' } } });
  });

  it('when a check throws, rejects with something that is not an Error, or never answers, then it is down, saying why; the answer comes within about 2 s', async () => {
    await start({
      database: { critical: true, check: () => { throw new Error('password authentication failed'); } },
      broker: { critical: false, check: () => Promise.reject('socket hang up') },
      changelog: { critical: false, check: () => new Promise<string>(() => {}) },
    });

    const began = Date.now();
    const answer = await readyz();
    const took = Date.now() - began;

    expect(answer).toEqual({
      status: 503,
      body: { status: 'not ready', checks: { database: 'down: password authentication failed', broker: 'down: socket hang up', changelog: 'down: no answer within 2 s' } },
    });
    expect(took).toBeGreaterThanOrEqual(1900);
    expect(took).toBeLessThan(4000);
  });

  it('when keys are on, then a caller without a valid key sees only up or down; a read-only key sees why', async () => {
    await start(
      { database: { critical: true, check: () => 'up' }, broker: { critical: false, check: () => 'connecting' } },
      { API_KEYS: 'k1', API_READ_KEYS: 'reader' },
    );

    expect((await readyz()).body.checks).toEqual({ database: 'up', broker: 'down' });
    expect((await readyz({ authorization: 'Bearer reader' })).body.checks).toEqual({ database: 'up', broker: 'connecting' });
  });
});

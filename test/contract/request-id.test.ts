import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { securityOptions } from '../../src/http/security.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('request ids, in process', () => {
  let app: Awaited<ReturnType<typeof buildApp>>;
  let logged = '';
  // Built for each test, so that what it registers at start is credited to the test that checks it (mutation tests).
  const sink = () =>
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        logged += chunk.toString();
        done();
      },
    });
  beforeEach(async () => {
    logged = '';
    app = await buildApp({ logger: pino({ level: 'info' }, sink()), security: securityOptions(loadConfig({ API_KEYS: 'k1' })), readiness: {} });
  });
  afterEach(() => app?.close());

  const idOf = async (given?: string) => {
    const answer = await app.inject({ method: 'GET', url: '/healthz', headers: given === undefined ? {} : { 'x-request-id': given } });
    return answer.headers['x-request-id'];
  };

  it.each(['abc', 'A-z_0.9:/+=', 'x'.repeat(128), 'c0ffee00-1111-4222-8333-444455556666'])('when a caller sends X-Request-Id %s, then it is kept and echoed', async (given) => {
    expect(await idOf(given)).toBe(given);
  });

  it.each([
    ['none', undefined],
    ['an empty one', ''],
    ['one of 129 characters', 'x'.repeat(129)],
    ['one with a space', 'a b'],
    ['one with a quote', 'a"b'],
    ['one with a line break escape', 'a%0Ab'],
    ['one with a character before its valid part', '!abc'],
    ['one with a character after its valid part', 'abc!'],
  ])('when a caller sends %s, then a new UUID is used and echoed', async (_case, given) => {
    expect(await idOf(given)).toMatch(UUID);
  });

  it('when a request is answered, refused or not found, then one line says so with its method, path (no query), route, status and time, under its id', async () => {
    const started = performance.now();
    await app.inject({ method: 'GET', url: '/healthz?probe=1', headers: { 'x-request-id': 'req-1' } });
    await app.inject({ method: 'GET', url: '/orders?status=x', headers: { 'x-request-id': 'req-2' } });
    const wall = performance.now() - started;
    const lines = logged.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.msg === 'request answered');

    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ request_id: 'req-1', method: 'GET', path: '/healthz', route: '/healthz', status: 422, level: 30 });
    expect(lines[1]).toMatchObject({ request_id: 'req-2', method: 'GET', path: '/orders', status: 401 });
    for (const line of lines) {
      expect(typeof line.ms).toBe('number');
      expect(Math.round((line.ms as number) * 10) / 10).toBe(line.ms);
      // Milliseconds, to a tenth: no request took longer than both together.
      expect(line.ms as number).toBeLessThanOrEqual(Math.ceil(wall * 10) / 10);
    }
  });

  it('when the logger is at warn, then no line is written for an answered request', async () => {
    const quiet = await buildApp({ logger: pino({ level: 'warn' }, sink()), security: securityOptions(loadConfig({})), readiness: {} });
    try {
      logged = '';
      const answer = await quiet.inject({ method: 'GET', url: '/healthz' });
      expect(answer.statusCode).toBe(200);
      expect(answer.headers['x-request-id']).toMatch(UUID);
      expect(logged).toBe('');
    } finally {
      await quiet.close();
    }
  });
});

import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { rawRequest, requestText, upgradeHeaders, type RawResponse } from './raw-http.js';
import { bearer, setups, startListening, type ListeningService } from './setups.js';

const openDescriptors = () => readdirSync('/proc/self/fd').length;
const serverConnections = (s: ListeningService) =>
  new Promise<number>((resolve, reject) => s.service.app.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));

const upgrade = (s: ListeningService, target: string, headers: Record<string, string> = {}) =>
  rawRequest(s.port, requestText('GET', target, s.port, upgradeHeaders(headers)), { waitForCloseMs: 3000 });

function expectRefused(answer: RawResponse, status: number, code: string): void {
  expect(answer.status).toBe(status);
  expect(answer.headers['content-type']).toContain('application/problem+json');
  expect(JSON.parse(answer.body).code).toBe(code);
  expect(answer.headers['connection']).toBe('close');
  expect(answer.closedByServer).toBe(true);
}

let s: ListeningService | undefined;
afterEach(async () => {
  await s?.service.close();
  s = undefined;
});

describe('refused WebSocket upgrades', () => {
  it.each(setups().map((setup) => [setup.name, setup] as const))(
    'when 500 upgrades are refused (401, 404, 400, 422, 429) on %s, then each is answered with problem+json and closed, and no socket or descriptor is left',
    async (_name, setup) => {
      if (setup.skip) return;
      s = await startListening(setup, { API_KEYS: 'k1,k2,k3', RATE_LIMIT_MAX: '50', RATE_LIMIT_WINDOW_MS: '600000' });
      const attempts: { target: string; headers: Record<string, string>; expect: [number, string] | 'limited' }[] = [
        ...Array.from({ length: 200 }, () => ({ target: '/ws/notifications', headers: {}, expect: [401, 'unauthorized'] as [number, string] })),
        ...Array.from({ length: 100 }, () => ({ target: '/ws/no-such-socket', headers: bearer('k1'), expect: [404, 'route_not_found'] as [number, string] })),
        ...Array.from({ length: 50 }, () => ({ target: '/ws/notifications', headers: { ...bearer('k3'), 'sec-websocket-version': '7' }, expect: [400, 'bad_upgrade_request'] as [number, string] })),
        ...Array.from({ length: 150 }, () => ({ target: '/ws/notifications?order_id=0', headers: bearer('k2'), expect: 'limited' as const })),
      ];
      // Warm-up: whatever the process opens once (database files, timers) is opened before the baseline.
      await upgrade(s, '/ws/notifications');
      const before = { descriptors: openDescriptors(), connections: await serverConnections(s) };

      const answers: RawResponse[] = [];
      for (let i = 0; i < attempts.length; i += 25) {
        answers.push(...(await Promise.all(attempts.slice(i, i + 25).map((a) => upgrade(s!, a.target, a.headers)))));
      }
      answers.forEach((answer, i) => {
        const wanted = attempts[i]!.expect;
        if (wanted !== 'limited') return expectRefused(answer, ...wanted);
        expect([422, 429]).toContain(answer.status);
        expectRefused(answer, answer.status, answer.status === 422 ? 'validation_failed' : 'rate_limited');
      });
      expect(answers.filter((a) => a.status === 429)).toHaveLength(100);

      await expect.poll(() => serverConnections(s!), { timeout: 5000 }).toBe(before.connections);
      await expect.poll(openDescriptors, { timeout: 5000 }).toBeLessThanOrEqual(before.descriptors);
      console.error(`500 refused upgrades on ${setup.name}: open descriptors ${before.descriptors} before, ${openDescriptors()} after; server connections ${before.connections} before, ${await serverConnections(s)} after`);
    },
  );

  it('when GET /ws/notifications comes without an upgrade, then it is 426 problem+json naming the protocol', async () => {
    s = await startListening({ database: 'pglite', rabbitmq: false }, { API_KEYS: 'k1' });

    const answer = await rawRequest(s.port, requestText('GET', '/ws/notifications', s.port, bearer('k1')));

    expect(answer.status).toBe(426);
    expect(answer.headers['upgrade']).toBe('websocket');
    expect(answer.headers['content-type']).toContain('application/problem+json');
    expect(JSON.parse(answer.body).code).toBe('upgrade_required');
  });

  it('when the service is shutting down, then an upgrade and a request are refused with 503 problem+json and their connections closed', async () => {
    const listening = await startListening({ database: 'pglite', rabbitmq: false }, { API_KEYS: 'k1' });
    // A client that never answers the close handshake keeps the shutdown in its grace period.
    const stuck = net.connect(listening.port, '127.0.0.1');
    stuck.on('error', () => {});
    await once(stuck, 'connect');
    stuck.write(
      `GET /ws/notifications HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    expect(String((await once(stuck, 'data'))[0])).toMatch(/^HTTP\/1\.1 101/);
    stuck.pause();

    const stopped = listening.service.close();
    try {
      let answer = await upgrade(listening, '/ws/notifications', bearer('k1'));
      for (let i = 0; i < 50 && answer.status !== 503; i++) {
        await sleep(20);
        answer = await upgrade(listening, '/ws/notifications', bearer('k1'));
      }
      expectRefused(answer, 503, 'service_unavailable');
      const request = await rawRequest(listening.port, requestText('GET', '/orders', listening.port, { ...bearer('k1'), connection: 'keep-alive' }), { waitForCloseMs: 3000 });
      expectRefused(request, 503, 'service_unavailable');
    } finally {
      stuck.destroy();
      await stopped;
    }
  });
});

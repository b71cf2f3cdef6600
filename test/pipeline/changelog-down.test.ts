import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { orderInput } from '../helpers/factories.js';
import { spawnService } from '../helpers/process.js';
import { openEventClient } from '../helpers/ws-client.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('the embedded service with its MongoDB change log away', () => {
  it('when MongoDB cannot be reached, then orders are taken, WebSocket clients still get every event, and SIGTERM still stops it cleanly', async () => {
    const DATA_DIR = mkdtempSync(path.join(tmpdir(), 'order-mongo-down-'));
    dirs.push(DATA_DIR);
    const service = await spawnService({ DATA_DIR, MONGODB_URL: `mongodb://127.0.0.1:${await closedPort()}`, SHUTDOWN_TIMEOUT_MS: '15000' });
    try {
      const client = await openEventClient(`${service.url.replace(/^http/, 'ws')}/ws/notifications`);
      // The in-process broker confirms a batch only once the change log took it: the relay must not wait on it for ever.
      for (let i = 0; i < 6; i++) {
        const response = await fetch(`${service.url}/orders/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(orderInput()) });
        expect(response.status).toBe(201);
      }
      await client.waitFor(6, 30_000);
      expect(new Set(client.events.map((e) => e.id)).size).toBe(6);
      client.close();
    } finally {
      const stoppedAt = performance.now();
      expect(await service.stop(20_000)).toBe(0);
      expect(performance.now() - stoppedAt).toBeLessThan(10_000);
    }
  });
});

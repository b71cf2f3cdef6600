import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import type { OrderEvent } from '../../src/events/envelope.js';
import { createTestDatabase } from '../helpers/databases.js';
import { orderInput } from '../helpers/factories.js';
import { spawnService, type ServiceProcess } from '../helpers/process.js';
import { openEventClient, sequencesByOrder } from '../helpers/ws-client.js';

const postgresUrl = inject('postgresUrl');
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const wsUrl = (base: string, after?: string) => `${base.replace(/^http/, 'ws')}/ws/notifications${after ? `?after=${after}` : ''}`;

const json = { 'content-type': 'application/json' };

/** A product of the test's own: a real database starts with no catalog. */
async function createProduct(url: string): Promise<number> {
  const response = await fetch(`${url}/products`, { method: 'POST', headers: json, body: JSON.stringify({ name: 'Lamp', price: 10, stock: null }) });
  expect(response.status).toBe(201);
  return ((await response.json()) as { id: number }).id;
}

let productId = 1;
async function postOrders(url: string, count: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < count; i++) {
    const response = await fetch(`${url}/orders/`, { method: 'POST', headers: json, body: JSON.stringify(orderInput({ product_id: productId })) });
    expect(response.status).toBe(201);
    ids.push(((await response.json()) as { id: number }).id);
  }
  return ids;
}

/**
 * The seam that broke before: a client saw event X, the service died before it recorded X as shipped,
 * and after the restart the client resumed from X. It must get every later event, once, however the
 * restarted relay re-ships what the dead one had in flight.
 */
const targets = [
  { name: 'the embedded database', skip: false, env: async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'order-resume-'));
    dirs.push(dir);
    return { env: { DATA_DIR: dir }, drop: async () => {} };
  } },
  { name: 'PostgreSQL', skip: !postgresUrl, env: async () => {
    const db = await createTestDatabase('postgres');
    return { env: { DATABASE_URL: db.url!, DATA_DIR: ':memory:' }, drop: () => db.drop() };
  } },
];

for (const target of targets) {
  describe.skipIf(target.skip)(`resume across a crash on ${target.name}`, () => {
    it('when the service is killed mid-stream and restarted, then a client resuming from its last event gets every later event exactly once', async () => {
      const { env, drop } = await target.env();
      let service: ServiceProcess | undefined;
      try {
        service = await spawnService(env);
        productId = await createProduct(service.url);
        const live = await openEventClient(wsUrl(service.url));
        await postOrders(service.url, 5);
        await live.waitFor(5);
        // Orders keep coming; the kill lands while their events are being shipped.
        const streaming = postOrders(service.url, 40).catch(() => undefined);
        await live.waitFor(12);
        await service.kill('SIGKILL');
        await streaming;
        live.close();
        const seen = [...live.events];
        const lastSeen = seen.at(-1)!;

        service = await spawnService(env);
        const after = await postOrders(service.url, 5);
        // The client comes back late, once the restarted relay has shipped everything, re-sent events included.
        const base = service.url;
        const everyOrder = await fetch(`${base}/orders?limit=200`).then((r) => r.json() as Promise<{ items: { id: number }[] }>);
        const total = everyOrder.items.length;
        const logged = async () => {
          const histories = await Promise.all(everyOrder.items.map((o) => fetch(`${base}/orders/${o.id}/history`).then((r) => r.json() as Promise<unknown[]>)));
          return histories.filter((h) => h.length === 1).length;
        };
        await expect.poll(logged, { timeout: 60_000, interval: 200 }).toBe(total);
        const resumed = await openEventClient(wsUrl(service.url, lastSeen.id));

        // Every order now stored has exactly one order.created; the client must end with all of them.
        const seenIds = new Set(seen.map((e) => e.id));
        const expected = total - new Set(seen.map((e) => e.order_id)).size;
        await resumed.waitFor(expected, 30_000);
        await new Promise((r) => setTimeout(r, 300));
        resumed.close();

        const got: OrderEvent[] = resumed.events;
        const ids = got.map((e) => e.id);
        expect(ids.filter((id) => seenIds.has(id)), 'replayed again although already seen').toEqual([]);
        expect(new Set(ids).size, 'an event arrived twice').toBe(ids.length);
        const ordersNow = new Set([...seen, ...got].map((e) => e.order_id));
        expect(ordersNow.size).toBe(total);
        for (const id of after) expect(ordersNow.has(id)).toBe(true);
        for (const [orderId, sequences] of sequencesByOrder(got)) expect(sequences, `order ${orderId}`).toEqual([1]);
      } finally {
        await service?.stop();
        await drop();
      }
    });
  });
}

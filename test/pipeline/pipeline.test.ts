import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { orderInput } from '../helpers/factories.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { openEventClient, sequencesByOrder, type EventClient } from '../helpers/ws-client.js';

const setups = [
  { name: 'PGlite and the in-process broker', database: 'pglite' as const, rabbitmq: false, skip: false },
  { name: 'PostgreSQL and RabbitMQ', database: 'postgres' as const, rabbitmq: true, skip: !inject('postgresUrl') || !inject('rabbitmqUrl') },
];

for (const setup of setups) {
  describe.skipIf(setup.skip)(`order events end to end on ${setup.name}`, () => {
    let service: TestService;
    let base: string;
    let observer: EventClient;
    beforeAll(async () => {
      service = await startTestService({ database: setup.database, ...(setup.rabbitmq ? { rabbitmqUrl: inject('rabbitmqUrl') } : {}) });
      await service.app.listen({ host: '127.0.0.1', port: 0 });
      base = `127.0.0.1:${(service.app.server.address() as AddressInfo).port}`;
      observer = await openEventClient(`ws://${base}/ws/notifications`);
    });
    afterAll(async () => {
      observer?.close();
      await service?.close();
    });

    /** Waits until the notifier has broadcast an order's event, so a client opened now gets only later ones. */
    const broadcast = (orderId: number, sequence: number) =>
      expect.poll(() => observer.events.some((e) => e.order_id === orderId && e.sequence === sequence), { timeout: 20_000 }).toBe(true);

    const post = async (body = orderInput()) => {
      const response = await fetch(`http://${base}/orders/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect(response.status).toBe(201);
      return (await response.json()) as Record<string, unknown> & { id: number };
    };
    const patch = async (id: number, status: string) => {
      const response = await fetch(`http://${base}/orders/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ status }) });
      expect(response.status).toBe(200);
      return (await response.json()) as Record<string, unknown>;
    };

    it('when an order is created and confirmed, then a WebSocket client gets both envelopes, field by field, and the history has them', async () => {
      const client = await openEventClient(`ws://${base}/ws/notifications`);
      try {
        const order = await post();
        const confirmed = await patch(order.id, 'Confirmed');
        const mine = () => client.events.filter((e) => e.order_id === order.id);
        await expect.poll(() => mine().length, { timeout: 20_000 }).toBe(2);
        const [created, changed] = mine();
        expect(created).toEqual({
          id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/),
          type: 'order.created',
          schema_version: 1,
          occurred_at: order.created_at,
          order_id: order.id,
          sequence: 1,
          order,
        });
        expect(changed).toEqual({
          id: expect.any(String),
          type: 'order.status_changed',
          schema_version: 1,
          occurred_at: confirmed.updated_at,
          order_id: order.id,
          sequence: 2,
          order: confirmed,
          change: { from: 'Pending', to: 'Confirmed' },
        });
        expect(created!.id).not.toBe(changed!.id);

        await expect
          .poll(async () => (await (await fetch(`http://${base}/orders/${order.id}/history`)).json()), { timeout: 20_000 })
          .toEqual([created, changed]);
      } finally {
        client.close();
      }
    });

    it('when clients filter by order or email, then each gets only its events', async () => {
      const email = `filter-${setup.database}@example.com`;
      const mine = await post(orderInput({ client_email: email }));
      await broadcast(mine.id, 1);
      const byOrder = await openEventClient(`ws://${base}/ws/notifications?order_id=${mine.id}`);
      const byEmail = await openEventClient(`ws://${base}/ws/notifications?client_email=${encodeURIComponent(email)}`);
      try {
        await post();
        await patch(mine.id, 'Cancelled');
        const other = await post(orderInput({ client_email: email }));
        await byEmail.waitFor(2);
        await byOrder.waitFor(1);
        await new Promise((r) => setTimeout(r, 300));
        expect(byOrder.events.map((e) => [e.order_id, e.type])).toEqual([[mine.id, 'order.status_changed']]);
        expect(byEmail.events.map((e) => e.order_id)).toEqual([mine.id, other.id]);
      } finally {
        byOrder.close();
        byEmail.close();
      }
    });

    it('when a client resumes after an event id, then it gets what it missed, then live events, each once', async () => {
      const first = await post();
      await broadcast(first.id, 1);
      const watcher = await openEventClient(`ws://${base}/ws/notifications?order_id=${first.id}`);
      await patch(first.id, 'Confirmed');
      const [seen] = await watcher.waitFor(1);
      watcher.close();
      await patch(first.id, 'Shipped');
      await patch(first.id, 'Delivered');
      const resumed = await openEventClient(`ws://${base}/ws/notifications?order_id=${first.id}&after=${seen!.id}`);
      try {
        await resumed.waitFor(2);
        await new Promise((r) => setTimeout(r, 300));
        expect(resumed.events.map((e) => e.sequence)).toEqual([3, 4]);
      } finally {
        resumed.close();
      }
    });

    it('when 200 orders arrive in a burst, then every client gets every event exactly once, in order per order', async () => {
      const clients = await Promise.all(Array.from({ length: 3 }, () => openEventClient(`ws://${base}/ws/notifications`)));
      try {
        const orders = await Promise.all(Array.from({ length: 200 }, () => post()));
        await Promise.all(orders.slice(0, 50).map((o) => patch(o.id, 'Confirmed')));
        const ids = new Set(orders.map((o) => o.id));
        for (const client of clients) {
          await expect.poll(() => client.events.filter((e) => ids.has(e.order_id)).length, { timeout: 30_000 }).toBe(250);
          const mine = client.events.filter((e) => ids.has(e.order_id));
          expect(new Set(mine.map((e) => e.id)).size).toBe(250);
          for (const sequences of sequencesByOrder(mine).values()) expect(sequences).toEqual(sequences.length === 2 ? [1, 2] : [1]);
        }
        await expect
          .poll(async () => (await service.db.query<{ n: number }>('SELECT count(*)::int AS n FROM order_changes WHERE order_id = ANY($1::bigint[])', [[...ids]]))[0]!.n, { timeout: 30_000 })
          .toBe(250);
      } finally {
        clients.forEach((c) => c.close());
      }
    });
  });
}

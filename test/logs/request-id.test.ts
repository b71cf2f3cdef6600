import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { orderInput } from '../helpers/factories.js';
import { spawnService, type ServiceProcess } from '../helpers/process.js';
import { openEventClient } from '../helpers/ws-client.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const setups = [
  { name: 'the embedded default', real: false, skip: false },
  { name: 'PostgreSQL and RabbitMQ', real: true, skip: !inject('postgresUrl') || !inject('rabbitmqUrl') },
];

interface LogLine {
  msg: string;
  request_id?: string;
  [field: string]: unknown;
}

for (const setup of setups) {
  describe.skipIf(setup.skip)(`request ids on ${setup.name}`, () => {
    let service: ServiceProcess;
    let database: TestDatabase | undefined;
    const exchange = `orders.test.${randomUUID().slice(0, 8)}`;
    beforeAll(async () => {
      database = setup.real ? await createTestDatabase('postgres') : undefined;
      service = await spawnService({
        DATA_DIR: ':memory:',
        OUTBOX_SWEEP_MS: '200',
        ...(database?.url ? { DATABASE_URL: database.url, RABBITMQ_URL: inject('rabbitmqUrl'), RABBITMQ_EXCHANGE: exchange, RABBITMQ_CHANGELOG_QUEUE: `${exchange}.changelog` } : {}),
      });
      if (database) await seed(service.url);
    });
    afterAll(async () => {
      await service?.stop();
      await database?.drop();
    });

    const lines = (): LogLine[] =>
      service
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as LogLine);
    const linesOf = (id: string) => lines().filter((l) => l.request_id === id);
    const send = (path: string, init: RequestInit = {}) => fetch(`${service.url}${path}`, { ...init, headers: { 'content-type': 'application/json', ...init.headers } });

    it('when an order is created and moved with X-Request-Id, then each answer echoes it and the request, change-log and broadcast lines of that event carry it', async () => {
      const client = await openEventClient(`${service.url.replace('http', 'ws')}/ws/notifications`);
      try {
        const createdId = `create-${randomUUID()}`;
        const created = await send('/orders/', { method: 'POST', headers: { 'x-request-id': createdId }, body: JSON.stringify(orderInput()) });
        expect(created.status).toBe(201);
        expect(created.headers.get('x-request-id')).toBe(createdId);
        const order = (await created.json()) as { id: number };

        const changedId = `confirm-${randomUUID()}`;
        const changed = await send(`/orders/${order.id}`, { method: 'PATCH', headers: { 'x-request-id': changedId }, body: JSON.stringify({ status: 'Confirmed' }) });
        expect(changed.headers.get('x-request-id')).toBe(changedId);
        await client.waitFor(2);

        for (const [id, sequence] of [[createdId, 1], [changedId, 2]] as const) {
          await expect.poll(() => linesOf(id).map((l) => l.msg).sort(), { timeout: 10_000 }).toEqual(['notification broadcast', 'order change logged', 'request answered']);
          for (const line of linesOf(id).filter((l) => l.msg !== 'request answered')) expect(line).toMatchObject({ order_id: order.id, sequence });
        }
        expect(linesOf(createdId).find((l) => l.msg === 'request answered')).toMatchObject({ method: 'POST', route: '/orders', status: 201 });
      } finally {
        client.close();
      }
    });

    it('when X-Request-Id is missing, longer than 128 characters or has unsafe characters, then a new id is made, echoed and logged', async () => {
      for (const given of [undefined, 'a'.repeat(129), 'two words', '<script>', 'ok"quote']) {
        const response = await send('/orders?limit=1', given === undefined ? {} : { headers: { 'x-request-id': given } });
        const id = response.headers.get('x-request-id')!;
        expect(id).toMatch(UUID);
        await expect.poll(() => linesOf(id).map((l) => l.msg)).toEqual(['request answered']);
      }
      const kept = 'trace.01:ab/c+d=_-';
      expect((await send('/orders?limit=1', { headers: { 'x-request-id': kept } })).headers.get('x-request-id')).toBe(kept);
      expect((await send('/orders?limit=1', { headers: { 'x-request-id': 'b'.repeat(128) } })).headers.get('x-request-id')).toBe('b'.repeat(128));
    });

    it('when a request is refused or matches no route, then its answer still carries its id', async () => {
      const unknown = await send('/no/such/route', { headers: { 'x-request-id': 'unknown-route-1' } });
      expect(unknown.status).toBe(404);
      expect(unknown.headers.get('x-request-id')).toBe('unknown-route-1');
      const invalid = await send('/orders/', { method: 'POST', headers: { 'x-request-id': 'invalid-body-1' }, body: '{"quantity": 0}' });
      expect(invalid.status).toBe(422);
      expect(invalid.headers.get('x-request-id')).toBe('invalid-body-1');
    });

    it.skipIf(!setup.real)('when an order is published to RabbitMQ, then its message carries the request id in x-request-id', async () => {
      const connection = await amqp.connect(inject('rabbitmqUrl'));
      try {
        const channel = await connection.createChannel();
        const { queue } = await channel.assertQueue('', { exclusive: true });
        await channel.bindQueue(queue, exchange, '#');
        const headers: unknown[] = [];
        await channel.consume(queue, (m) => m && headers.push(m.properties.headers?.['x-request-id']), { noAck: true });
        const id = `amqp-${randomUUID()}`;
        expect((await send('/orders/', { method: 'POST', headers: { 'x-request-id': id }, body: JSON.stringify(orderInput()) })).status).toBe(201);
        await expect.poll(() => headers, { timeout: 10_000 }).toContain(id);
      } finally {
        await connection.close();
      }
    });
  });
}

/** A real database starts without the demo catalog; the test orders product 1 at 100.00. */
async function seed(url: string): Promise<void> {
  const response = await fetch(`${url}/products`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Demo', price: 100 }) });
  if (response.status !== 201) throw new Error(`could not seed: ${response.status}`);
}

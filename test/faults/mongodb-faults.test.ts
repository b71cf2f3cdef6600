import { MongoClient } from 'mongodb';
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { OrderEvent } from '../../src/events/envelope.js';
import { createProduct, orderInput } from '../helpers/factories.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

const mongodbUrl = inject('mongodbUrl');
const rabbitmqUrl = inject('rabbitmqUrl');
const postgres = inject('postgresUrl');
// MongoDB cannot be installed on the development machine: this runs wherever MONGODB_URL is set.
const skip = !mongodbUrl || !rabbitmqUrl || !postgres;

const FAULTS = [
  { name: 'reset', apply: (p: TcpProxy) => p.reset() },
  { name: 'blackholed', apply: (p: TcpProxy) => p.blackhole() },
  { name: 'slowed by 3 s', apply: (p: TcpProxy) => p.latency(3_000) },
];

describe.skipIf(skip)(`the MongoDB change log behind a fault proxy${skip ? ' (skipped: MONGODB_URL not set)' : ''}`, () => {
  let service: TestService | undefined;
  let proxy: TcpProxy | undefined;
  let database: string | undefined;
  afterEach(async () => {
    await service?.close();
    await proxy?.close();
    if (database) {
      const client = new MongoClient(mongodbUrl);
      await client.db(database).dropDatabase().finally(() => client.close());
    }
  });

  for (const fault of FAULTS) {
    it(`when MongoDB is ${fault.name} for 5 s while orders stream in, then orders keep being taken and every event is logged exactly once afterwards`, { timeout: 120_000 }, async () => {
      const target = new URL(mongodbUrl);
      proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 27017) });
      target.host = `127.0.0.1:${proxy.port}`;
      target.searchParams.set('directConnection', 'true');
      database = `order_fault_${Date.now()}`;
      service = await startTestService({ database: 'postgres', rabbitmqUrl, env: { MONGODB_URL: target.toString(), MONGODB_DB: database } });
      const product = await createProduct(service.app, { price: 5, stock: null });

      const ids: number[] = [];
      const post = async () => {
        const response = await service!.app.inject({ method: 'POST', url: '/orders/', payload: orderInput({ product_id: product.id }) });
        expect(response.statusCode).toBe(201);
        ids.push(response.json<{ id: number }>().id);
      };
      for (let i = 0; i < 20; i++) await post();
      fault.apply(proxy);
      const cutUntil = Date.now() + 5_000;
      while (Date.now() < cutUntil) {
        await post();
        await new Promise((r) => setTimeout(r, 50));
      }
      const during = await service.app.inject({ method: 'GET', url: `/orders/${ids[0]}/history` });
      expect([200, 503]).toContain(during.statusCode);
      proxy.restore();
      for (let i = 0; i < 20; i++) await post();

      const history = async (id: number) => {
        const response = await service!.app.inject({ method: 'GET', url: `/orders/${id}/history` });
        return response.statusCode === 200 ? response.json<OrderEvent[]>() : undefined;
      };
      await expect
        .poll(async () => (await Promise.all(ids.map(history))).filter((h) => h?.length === 1).length, { timeout: 60_000, interval: 500 })
        .toBe(ids.length);
      for (const id of ids) expect((await history(id))!.map((e) => e.type)).toEqual(['order.created']);
      expect(service.changeLogWriter!.stats.written).toBe(ids.length);
    });
  }
});

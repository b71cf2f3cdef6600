import net from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createOrder } from '../helpers/factories.js';
import { startTestService, type TestService } from '../helpers/service.js';

/** A loopback port nothing listens on: connections are refused at once. */
async function closedPort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A listener that accepts connections and never answers, as a silent partition looks. */
async function blackhole(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const unreachable = [
  { name: 'refuses connections', open: async () => ({ port: await closedPort(), close: async () => {} }) },
  { name: 'accepts connections and never answers', open: blackhole },
];

for (const { name, open } of unreachable) {
  describe(`the change log while MongoDB ${name}`, () => {
    let mongo: { port: number; close(): Promise<void> };
    let service: TestService;
    beforeAll(async () => {
      mongo = await open();
      service = await startTestService({ database: 'pglite', env: { MONGODB_URL: `mongodb://127.0.0.1:${mongo.port}/?directConnection=true` } });
    });
    afterAll(async () => {
      // The in-process broker confirms a publish once the change-log writer acks it, which it cannot
      // while MongoDB is away; closing the broker first releases the relay's wait.
      await service?.broker.close();
      await service?.close();
      await mongo?.close();
    });

    it('when an order history is read, then it is 503 problem+json within about 2 s, and orders are still taken', async () => {
      const order = await createOrder(service.app);
      const started = Date.now();
      const response = await service.app.inject({ method: 'GET', url: `/orders/${order.id}/history` });
      const elapsed = Date.now() - started;
      expect(response.statusCode).toBe(503);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.json()).toMatchObject({ status: 503, code: 'service_unavailable', detail: expect.stringMatching(/change log/) });
      expect(elapsed).toBeLessThan(2500);
    });

    it('when /readyz is asked, then it reports the change log down without making the API unready', async () => {
      const started = Date.now();
      const response = await service.app.inject({ method: 'GET', url: '/readyz' });
      expect(Date.now() - started).toBeLessThan(2500);
      expect(response.statusCode).toBe(200);
      expect(response.json().checks.changelog).toMatch(/^down/);
    });
  });
}

describe('the change log in the embedded database', () => {
  it('when /readyz is asked, then it reports the change log up', async () => {
    const service = await startTestService({ database: 'pglite' });
    try {
      const response = await service.app.inject({ method: 'GET', url: '/readyz' });
      expect(response.json().checks).toMatchObject({ database: 'up', changelog: 'up' });
    } finally {
      await service.close();
    }
  });
});

const postgresUrl = inject('postgresUrl');
const rabbitmqUrl = inject('rabbitmqUrl');
describe.skipIf(!postgresUrl || !rabbitmqUrl)('a changelog-only process while MongoDB is unreachable', () => {
  it('when /readyz is asked, then it is 503: the process cannot do its one job', async () => {
    const port = await closedPort();
    const service = await startTestService({
      database: 'postgres',
      rabbitmqUrl,
      env: { ROLE: 'changelog', MONGODB_URL: `mongodb://127.0.0.1:${port}/?directConnection=true` },
    });
    try {
      await expect.poll(() => service.broker.state(), { timeout: 10_000 }).toBe('up');
      const response = await service.app.inject({ method: 'GET', url: '/readyz' });
      expect(response.statusCode).toBe(503);
      expect(response.json().checks).toMatchObject({ database: 'up', broker: 'up', changelog: expect.stringMatching(/^down/) });
    } finally {
      await service.close();
    }
  });
});

import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { databaseKinds } from '../helpers/databases.js';
import { createOrder } from '../helpers/factories.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { openEventClient } from '../helpers/ws-client.js';
import { sampleOf, scrape } from './scrape.js';

for (const { kind, skip } of databaseKinds()) {
  describe.skipIf(skip)(`/metrics on ${kind}`, () => {
    let service: TestService;
    beforeAll(async () => {
      service = await startTestService({ database: kind });
      await service.app.listen({ host: '127.0.0.1', port: 0 });
    });
    afterAll(() => service?.close());
    const metrics = () => scrape(service.app);

    it('when orders are created, moved and read, then requests are counted and timed by route and status, and orders and status changes are counted', async () => {
      const order = await createOrder(service.app);
      await createOrder(service.app);
      expect((await service.app.inject({ method: 'PATCH', url: `/orders/${order.id}`, payload: { status: 'Confirmed' } })).statusCode).toBe(200);
      expect((await service.app.inject({ method: 'GET', url: '/orders/999999999' })).statusCode).toBe(404);
      expect((await service.app.inject({ method: 'GET', url: `/no-such-route/${randomUUID()}` })).statusCode).toBe(404);

      const text = await metrics();
      expect(sampleOf(text, 'orders_created_total')).toBe(2);
      expect(sampleOf(text, 'order_status_changes_total', { from: 'Pending', to: 'Confirmed' })).toBe(1);
      expect(sampleOf(text, 'http_requests_total', { method: 'POST', route: '/orders', status: '201' })).toBe(2);
      expect(sampleOf(text, 'http_requests_total', { method: 'GET', route: '/orders/:id', status: '404' })).toBe(1);
      // Unknown URLs share one series, so a scan cannot grow the number of series.
      expect(sampleOf(text, 'http_requests_total', { method: 'GET', route: 'unmatched', status: '404' })).toBe(1);
      expect(text).not.toContain('no-such-route');
      expect(sampleOf(text, 'http_request_duration_seconds_count', { method: 'PATCH', route: '/orders/:id', status: '200' })).toBe(1);
      expect(sampleOf(text, 'http_request_duration_seconds_sum', { method: 'PATCH', route: '/orders/:id', status: '200' })).toBeGreaterThan(0);
    });

    it('when events flow, then the relay, the change log and the WebSocket clients are reported, and the backlog drains to zero', async () => {
      const client = await openEventClient(`ws://127.0.0.1:${(service.app.server.address() as { port: number }).port}/ws/notifications`);
      try {
        // Quiet first: every event written so far is in the change log.
        const written = (text: string) => sampleOf(text, 'changelog_events_written_total');
        const events = (text: string) => sampleOf(text, 'orders_created_total') + sampleOf(text, 'order_status_changes_total', { from: 'Pending', to: 'Confirmed' });
        await expect.poll(async () => { const text = await metrics(); return written(text) === events(text); }, { timeout: 10_000 }).toBe(true);
        const before = await metrics();
        await createOrder(service.app);
        await client.waitFor(1);
        await expect.poll(async () => sampleOf(await metrics(), 'changelog_events_written_total'), { timeout: 10_000 }).toBe(sampleOf(before, 'changelog_events_written_total') + 1);
        const text = await metrics();
        expect(sampleOf(text, 'websocket_clients')).toBe(1);
        expect(sampleOf(text, 'websocket_frames_sent_total')).toBe(sampleOf(before, 'websocket_frames_sent_total') + 1);
        expect(sampleOf(text, 'outbox_relay_events_total')).toBeGreaterThan(sampleOf(before, 'outbox_relay_events_total'));
        expect(sampleOf(text, 'outbox_relay_confirm_seconds_count')).toBeGreaterThan(sampleOf(before, 'outbox_relay_confirm_seconds_count'));
        expect(sampleOf(text, 'outbox_relay_active')).toBe(1);
        expect(sampleOf(text, 'changelog_events_consumed_total')).toBeGreaterThanOrEqual(sampleOf(text, 'changelog_events_written_total'));
        expect(sampleOf(text, 'changelog_up')).toBe(1);
        expect(sampleOf(text, 'broker_state', { state: 'up' })).toBe(1);
        await expect.poll(async () => sampleOf(await metrics(), 'outbox_backlog_events'), { timeout: 10_000 }).toBe(0);
        expect(sampleOf(await metrics(), 'outbox_oldest_unsent_age_seconds')).toBe(0);
      } finally {
        client.close();
      }
      await expect.poll(async () => sampleOf(await metrics(), 'websocket_clients')).toBe(0);
    });

    it('when run through npm, then the service runs on Node.js 22 or newer (the node-linux-* package\'s Node 24 on Linux) and /metrics names that version', async () => {
      expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(22);
      const binary = fileURLToPath(new URL(`../../node_modules/node-${process.platform}-${process.arch}/package.json`, import.meta.url));
      if (existsSync(binary)) expect(process.version).toBe(`v${(JSON.parse(readFileSync(binary, 'utf8')) as { version: string }).version}`);
      expect(sampleOf(await metrics(), 'nodejs_version_info', { version: process.version })).toBe(1);
    });

    it('when scraped, then the process metrics (CPU, memory, event-loop lag) are there, and the pool on PostgreSQL', async () => {
      const text = await metrics();
      for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_heap_size_used_bytes']) {
        expect(sampleOf(text, name)).toBeGreaterThanOrEqual(0);
      }
      expect(sampleOf(text, 'service_info', { role: 'all', database: kind, broker: 'in-process', changelog: 'embedded' })).toBe(1);
      if (kind === 'postgres') {
        expect(sampleOf(text, 'db_pool_connections_max')).toBe(20);
        expect(sampleOf(text, 'db_pool_connections_open')).toBeGreaterThan(0);
        expect(sampleOf(text, 'db_pool_waiting_requests')).toBe(0);
      } else {
        expect(text).not.toContain('db_pool_');
      }
    });
  });
}

describe('/metrics and the API keys', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService({ database: 'pglite', env: { API_KEYS: 'full-key-1', API_READ_KEYS: 'read-key-1' } });
  });
  afterAll(() => service?.close());

  it('when keys are on, then /metrics needs one like the API: 401 without, 200 with a full or a read-only key', async () => {
    const without = await service.app.inject({ method: 'GET', url: '/metrics' });
    expect(without.statusCode).toBe(401);
    expect(without.headers['content-type']).toMatch(/^application\/problem\+json/);
    for (const key of ['full-key-1', 'read-key-1']) {
      const scraped = await service.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${key}` } });
      expect(scraped.statusCode).toBe(200);
      expect(scraped.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    }
  });
});

describe('/metrics while the broker is away', () => {
  let service: TestService | undefined;
  afterEach(async () => {
    await service?.close();
    service = undefined;
  });

  it('when RabbitMQ cannot be reached, then events wait: the backlog counts them, the oldest one ages and the broker is not up', async () => {
    // Nothing listens on port 1: the broker never connects and the relay cannot ship.
    service = await startTestService({ database: 'pglite', env: { RABBITMQ_URL: 'amqp://guest:guest@127.0.0.1:1' } });
    await createOrder(service.app);
    await createOrder(service.app);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const text = await scrape(service.app);
    expect(sampleOf(text, 'outbox_backlog_events')).toBe(2);
    expect(sampleOf(text, 'outbox_oldest_unsent_age_seconds')).toBeGreaterThanOrEqual(1);
    expect(sampleOf(text, 'broker_state', { state: 'up' })).toBe(0);
    expect(sampleOf(text, 'outbox_relay_failures_total', { dependency: 'broker' })).toBeGreaterThan(0);
  });
});

const realServices = !inject('postgresUrl') || !inject('rabbitmqUrl');

describe.skipIf(realServices)('each role exposes what it runs', () => {
  const started: TestService[] = [];
  afterAll(async () => {
    for (const s of started) await s.close();
  });
  const start = async (role: string) => {
    const s = await startTestService({ database: 'postgres', rabbitmqUrl: inject('rabbitmqUrl'), env: { ROLE: role } });
    started.push(s);
    return scrape(s.app);
  };

  it('when a process runs one role, then its metrics are those of that role', async () => {
    const api = await start('api');
    expect(api).toContain('outbox_backlog_events');
    expect(api).toContain('orders_created_total');
    expect(api).not.toContain('websocket_clients');
    expect(api).not.toContain('changelog_events_written_total');

    const notifier = await start('notifier');
    expect(notifier).toContain('websocket_clients');
    expect(notifier).toContain('broker_state');
    expect(notifier).not.toContain('outbox_backlog_events');
    expect(notifier).not.toContain('changelog_up');

    const changelog = await start('changelog');
    expect(changelog).toContain('changelog_events_written_total');
    expect(changelog).toContain('changelog_up');
    expect(changelog).not.toContain('websocket_clients');
    expect(changelog).not.toContain('outbox_backlog_events');
    for (const text of [api, notifier, changelog]) expect(text).toContain('nodejs_eventloop_lag_seconds');
  });
});

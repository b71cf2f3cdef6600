import { Counter, Gauge, type Registry } from 'prom-client';

// What each part reports, as plain readers: src/runtime.ts hands them over, so the metrics import no part.

/** The outbox's backlog, read from the database the relay ships: any API instance reports the same log. */
export interface OutboxFigures {
  backlog(): Promise<number>;
  oldestUnsentAge(): Promise<number>;
  /** True while this process holds the relay lock and ships the log. */
  active(): boolean;
}

const BROKER_STATES = ['up', 'blocked', 'connecting', 'down'] as const;
/** The broker connection's state, a label of broker_state. */
export type BrokerStateLabel = (typeof BROKER_STATES)[number];

/** Counts the change-log writer keeps as it works, read at scrape time. */
export interface ChangeLogWriterFigures {
  readonly consumed: number;
  readonly written: number;
  readonly duplicates: number;
  readonly failures: number;
}

export interface HubFigures {
  readonly clients: number;
  readonly bufferedBytes: number;
  readonly framesSent: number;
  readonly slowConsumerDisconnects: number;
  readonly resumes: number;
  readonly duplicatesDropped: number;
  readonly staleDropped: number;
}

export interface PoolFigures {
  readonly open: number;
  readonly idle: number;
  readonly waiting: number;
  readonly max: number;
}

/** A scrape waits at most this long for a dependency; past it the value is NaN (unknown), not a stale number. */
const COLLECT_TIMEOUT_MS = 1500;

function bounded(read: () => number | Promise<number>): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<number>((resolve) => (timer = setTimeout(resolve, COLLECT_TIMEOUT_MS, NaN)));
  const value = Promise.resolve()
    .then(read)
    .catch(() => NaN);
  return Promise.race([value, late]).finally(() => clearTimeout(timer));
}

function gauge(registry: Registry, name: string, help: string, read: () => number | Promise<number>): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    async collect() {
      this.set(await bounded(read));
    },
  });
}

/** A counter whose count is kept by the part itself (its stats), read at scrape time. */
function counter(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

export function watchOutbox(registry: Registry, outbox: OutboxFigures): void {
  gauge(registry, 'outbox_backlog_events', 'Events written to the outbox and not yet confirmed by the broker', () => outbox.backlog());
  gauge(registry, 'outbox_oldest_unsent_age_seconds', 'Age of the first event after the relay checkpoint; 0 when nothing waits', () =>
    outbox.oldestUnsentAge(),
  );
  gauge(registry, 'outbox_relay_active', '1 when this process holds the relay lock and ships the log, 0 on standby', () =>
    outbox.active() ? 1 : 0,
  );
}

export function watchBroker(registry: Registry, current: () => BrokerStateLabel): void {
  new Gauge({
    name: 'broker_state',
    help: "The broker connection's state: 1 for the current one",
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const now = current();
      for (const state of BROKER_STATES) this.set({ state }, state === now ? 1 : 0);
    },
  });
}

/** `state` is the change log's: 'up' when MongoDB or the embedded table answers. */
export function watchChangeLog(registry: Registry, state: () => Promise<string>): void {
  gauge(registry, 'changelog_up', '1 when the change log (MongoDB or the embedded table) answers', async () =>
    (await state()) === 'up' ? 1 : 0,
  );
}

export function watchChangeLogWriter(registry: Registry, stats: ChangeLogWriterFigures): void {
  counter(
    registry,
    'changelog_events_consumed_total',
    'Deliveries taken from the change-log queue, redeliveries included',
    () => stats.consumed,
  );
  counter(registry, 'changelog_events_written_total', 'Events written to the change log for the first time', () => stats.written);
  counter(registry, 'changelog_duplicates_total', 'Deliveries whose event was already in the change log', () => stats.duplicates);
  counter(
    registry,
    'changelog_write_failures_total',
    'Batches whose write failed and were handed back for redelivery',
    () => stats.failures,
  );
}

export function watchHub(registry: Registry, now: () => HubFigures): void {
  gauge(registry, 'websocket_clients', 'WebSocket clients connected to /ws/notifications', () => now().clients);
  gauge(registry, 'websocket_buffered_bytes', "Bytes waiting in all clients' send buffers", () => now().bufferedBytes);
  counter(registry, 'websocket_frames_sent_total', 'Event frames written to WebSocket clients, live and replayed', () => now().framesSent);
  counter(
    registry,
    'websocket_slow_consumer_evictions_total',
    'Clients disconnected (4008) because they stopped reading',
    () => now().slowConsumerDisconnects,
  );
  counter(registry, 'websocket_resumes_total', 'Connections that resumed with ?after=', () => now().resumes);
  new Counter({
    name: 'notifications_dropped_total',
    help: 'Deliveries not broadcast: redeliveries already sent (duplicate) or older than what was sent (stale)',
    labelNames: ['reason'] as const,
    registers: [registry],
    collect() {
      const { duplicatesDropped, staleDropped } = now();
      this.reset();
      this.inc({ reason: 'duplicate' }, duplicatesDropped);
      this.inc({ reason: 'stale' }, staleDropped);
    },
  });
}

/** PostgreSQL's pool only: the embedded database has none. */
export function watchPool(registry: Registry, use: () => PoolFigures): void {
  gauge(registry, 'db_pool_connections_open', 'PostgreSQL connections open in the pool', () => use().open);
  gauge(registry, 'db_pool_connections_idle', 'PostgreSQL connections open and idle', () => use().idle);
  gauge(registry, 'db_pool_waiting_requests', 'Queries waiting for a pooled connection', () => use().waiting);
  gauge(registry, 'db_pool_connections_max', 'DATABASE_POOL_SIZE', () => use().max);
}

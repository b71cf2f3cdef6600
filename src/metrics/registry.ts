import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { processRegistry } from './process.js';

/** What the outbox relay calls as it works. */
export interface RelayHooks {
  /** The broker confirmed a batch of `events`, `seconds` after it was handed to it. */
  confirmed(events: number, seconds: number): void;
  /** A pass failed and will be retried after a back-off; `dependency` is what failed. */
  failed(dependency: string): void;
}

export interface ServiceInfo {
  role: string;
  database: string;
  broker: string;
  changelog: string;
}

/**
 * One service's metrics: counters its parts call as they work, and gauges read from their state at
 * scrape time. Parts a role does not run are never watched, so each role exposes what it runs.
 */
export class ServiceMetrics {
  readonly registry = new Registry();
  readonly httpRequests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from request to answer, by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  private readonly ordersCreated = new Counter({ name: 'orders_created_total', help: 'Orders created', registers: [this.registry] });
  private readonly statusChanges = new Counter({
    name: 'order_status_changes_total',
    help: 'Order status changes, by the status left and the status entered',
    labelNames: ['from', 'to'] as const,
    registers: [this.registry],
  });

  private readonly rewinds = new Counter({
    name: 'event_log_rewinds_total',
    help: 'Times the database turned out to lack events already shipped or broadcast (a failover that lost transactions)',
    registers: [this.registry],
  });

  constructor(info: ServiceInfo) {
    new Gauge({
      name: 'service_info',
      help: 'What this process runs: its role, database, broker and change log (always 1)',
      labelNames: ['role', 'database', 'broker', 'changelog'] as const,
      registers: [this.registry],
    }).set({ ...info }, 1);
  }

  orderCreated(): void {
    this.ordersCreated.inc();
  }

  statusChanged(from: string, to: string): void {
    this.statusChanges.inc({ from, to });
  }

  eventLogRewound(): void {
    this.rewinds.inc();
  }

  /** Hooks for the outbox relay: confirm latency and batches, failures by dependency. */
  relayHooks(): RelayHooks {
    const batches = new Counter({ name: 'outbox_relay_batches_total', help: 'Batches the broker confirmed', registers: [this.registry] });
    const events = new Counter({
      name: 'outbox_relay_events_total',
      help: 'Events the broker confirmed (a batch shipped again counts again)',
      registers: [this.registry],
    });
    const confirm = new Histogram({
      name: 'outbox_relay_confirm_seconds',
      help: 'Time from handing a batch to the broker to its publisher confirm',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers: [this.registry],
    });
    const failures = new Counter({
      name: 'outbox_relay_failures_total',
      help: 'Relay passes that failed and were retried after a back-off, by the dependency that failed',
      labelNames: ['dependency'] as const,
      registers: [this.registry],
    });
    return {
      confirmed(n, seconds) {
        batches.inc();
        events.inc(n);
        confirm.observe(seconds);
      },
      failed: (dependency) => failures.inc({ dependency }),
    };
  }

  /** Exposition text: this service's metrics, then the process's. */
  async render(): Promise<string> {
    const [own, process] = await Promise.all([this.registry.metrics(), processRegistry().metrics()]);
    return `${own}\n${process}`;
  }

  readonly contentType = this.registry.contentType;
}

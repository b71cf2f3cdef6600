import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import type { ChangeLog } from './changelog/changelog.js';
import { createEmbeddedChangeLog } from './changelog/embedded.js';
import { startChangeLogWriter, type ChangeLogWriter } from './changelog/writer.js';
import type { Config } from './config.js';
import { openDatabase, type Database } from './db/client.js';
import { lockDataDir } from './db/data-dir-lock.js';
import { migrate } from './db/migrate.js';
import type { ReadinessCheck } from './http/health.js';
import { securityOptions } from './http/security.js';
import type { Broker } from './messaging/broker.js';
import { createInProcessBroker } from './messaging/in-process.js';
import { ServiceMetrics } from './metrics/registry.js';
import { watchBroker, watchChangeLog, watchChangeLogWriter, watchHub, watchOutbox, watchPool } from './metrics/watch.js';
import { createDatabaseHealth } from './db/health.js';
import { createEpisodes } from './episodes.js';
import { createNotifierFeed, type NotifierFeed } from './notifications/feed.js';
import { createNotificationHub, type NotificationHub } from './notifications/hub.js';
import { deleteExpiredKeys, releaseInFlightKeys } from './orders/idempotency.js';
import { createOrderService } from './orders/service.js';
import { seedDemoCatalog } from './products/repository.js';
import { deleteShippedBefore, eventsAfter, holdsEvent, logHead, readAfter } from './outbox/store.js';
import { startOutboxRelay, type OutboxRelay } from './outbox/relay.js';

export interface Service {
  readonly app: FastifyInstance;
  readonly db: Database;
  readonly broker: Broker;
  readonly relay: OutboxRelay | undefined;
  readonly hub: NotificationHub | undefined;
  readonly changeLog: ChangeLog | undefined;
  readonly changeLogWriter: ChangeLogWriter | undefined;
  readonly metrics: ServiceMetrics;
  /** Stops taking work, finishes what is in flight, and closes every connection. */
  stop(): Promise<void>;
}

export interface ServiceOptions {
  logger: FastifyBaseLogger;
  now?: () => Date;
  newId?: () => string;
  /** The built console to serve at / (default: dist/console). */
  consoleRoot?: string;
  /** What a new embedded database starts from (DatabaseOptions.image). */
  embeddedImage?: Blob;
}

const MAINTENANCE_MS = 15 * 60_000;
const REPLAY_LIMIT = 10_000;

/** Opens what the configured role needs and wires it together; server.ts only adds a port and signals. */
export async function startService(config: Config, options: ServiceOptions): Promise<Service> {
  const { logger } = options;
  const runs = (role: Config['ROLE']) => config.ROLE === 'all' || config.ROLE === role;
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async () => {
    for (const close of closers.reverse()) await close().catch((err: unknown) => logger.warn({ err }, 'error while closing'));
  };

  try {
    if (!config.DATABASE_URL && config.DATA_DIR !== ':memory:') {
      // Two processes on one embedded database would each overwrite what the other acknowledged.
      const lock = await lockDataDir(config.DATA_DIR);
      closers.push(async () => lock.release());
    }
    const db = await openDatabase({
      url: config.DATABASE_URL,
      dataDir: config.DATA_DIR,
      image: options.embeddedImage,
      poolSize: config.DATABASE_POOL_SIZE,
      timeouts: {
        connectMs: config.DATABASE_CONNECT_TIMEOUT_MS,
        queryMs: config.DATABASE_QUERY_TIMEOUT_MS,
        statementMs: config.DATABASE_STATEMENT_TIMEOUT_MS,
        idleInTransactionMs: config.DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS,
      },
    });
    closers.push(() => db.close());
    const episodes = createEpisodes(logger);
    closers.push(async () => episodes.close());
    const health = createDatabaseHealth(db, episodes);
    // Once the log has moved back under this process (a failover lost events), /readyz says so until it restarts.
    let rewound = false;
    const onRewind = () => {
      rewound = true;
      metrics.eventLogRewound();
    };
    const metrics = new ServiceMetrics({
      role: config.ROLE,
      database: db.kind,
      broker: config.RABBITMQ_URL ? 'rabbitmq' : 'in-process',
      changelog: runs('changelog') || runs('api') ? (config.MONGODB_URL ? 'mongodb' : 'embedded') : 'none',
    });
    const poolUse = db.poolUse?.bind(db);
    if (poolUse) watchPool(metrics.registry, poolUse);
    await migrate(db);
    if (!config.DATABASE_URL) {
      await seedIfEmpty(db);
      // This process owns the embedded database, so a key still in flight belonged to one that died.
      const keys = await releaseInFlightKeys(db);
      if (keys) logger.info({ keys }, 'released Idempotency-Keys left in flight by a process that stopped');
    }

    let changeLog: ChangeLog | undefined;
    if (runs('changelog') || runs('api')) {
      // Adapters load only when configured: the embedded default starts without their code.
      changeLog = config.MONGODB_URL
        ? (await import('./changelog/mongodb.js')).createMongoChangeLog({ url: config.MONGODB_URL, database: config.MONGODB_DB })
        : createEmbeddedChangeLog(db);
      closers.push(() => changeLog!.close());
      watchChangeLog(metrics.registry, () => changeLog!.state());
    }

    const broker = config.RABBITMQ_URL
      ? (await import('./messaging/rabbitmq.js')).createRabbitMqBroker({
          url: config.RABBITMQ_URL,
          exchange: config.RABBITMQ_EXCHANGE,
          logger,
          // Declared by every role, so events published before any change-log writer ever ran wait for it.
          declareQueues: [config.RABBITMQ_CHANGELOG_QUEUE],
          durableQueueType: config.RABBITMQ_CHANGELOG_QUEUE_TYPE,
        })
      : createInProcessBroker({ logger });
    closers.push(() => broker.close());
    watchBroker(metrics.registry, () => broker.state());
    // The durable consumer exists before the relay publishes, so the in-process broker holds events for it.
    let changeLogWriter: ChangeLogWriter | undefined;
    if (runs('changelog')) {
      changeLogWriter = await startChangeLogWriter({ broker, changeLog: changeLog!, logger, queue: config.RABBITMQ_CHANGELOG_QUEUE });
      watchChangeLogWriter(metrics.registry, changeLogWriter.stats);
    }

    let hub: NotificationHub | undefined;
    let feed: NotifierFeed | undefined;
    if (runs('notifier')) {
      hub = createNotificationHub({ pingIntervalMs: config.WS_PING_INTERVAL_MS, maxBufferedBytes: config.WS_MAX_BUFFERED_BYTES });
      const notifier = hub;
      closers.push(async () => notifier.close());
      watchHub(metrics.registry, () => notifier.stats());
      const notifierFeed = createNotifierFeed({
        hub,
        logger,
        onRewind,
        log: {
          after: (at, limit) => readAfter(db, at, limit),
          head: () => logHead(db),
          holds: (eventId) => holdsEvent(db, eventId),
        },
      });
      feed = notifierFeed;
      await broker.consume(
        { durable: false, prefetch: 1024, onSubscribed: notifierFeed.subscribed, onUnsubscribed: notifierFeed.unsubscribed },
        (delivery) => notifierFeed.deliver(delivery),
      );
    }

    let relay: OutboxRelay | undefined;
    if (runs('api')) {
      relay = startOutboxRelay({
        db,
        broker,
        logger,
        sweepMs: config.OUTBOX_SWEEP_MS,
        // RabbitMQ confirms take a disk flush: keep publishing meanwhile. PGlite runs one statement
        // at a time, so there one batch at a time lets batches grow instead of multiplying claims.
        maxInFlight: db.kind === 'pglite' ? 1 : 16,
        metrics: metrics.relayHooks(),
        onRewind,
      });
      const outboxRelay = relay;
      watchOutbox(metrics.registry, {
        backlog: () => outboxRelay.backlog(),
        oldestUnsentAge: () => outboxRelay.oldestUnsentAge(),
        active: () => outboxRelay.isActive(),
      });
      closers.push(() => outboxRelay.stop());
      const maintenance = setInterval(() => void maintain(db, config, logger), MAINTENANCE_MS);
      maintenance.unref();
      closers.push(async () => clearInterval(maintenance));
    }

    const readiness: Record<string, ReadinessCheck> = {
      // A read-only database still serves a notifier's replays and a change-log writer's reads, not an API's writes.
      database: { critical: true, check: () => health.check(), ...(runs('api') ? {} : { acceptable: ['read_only'] }) },
      // Orders wait in the outbox while the broker is away or blocks publishers; a notifier or writer needs it up.
      broker: {
        critical: config.ROLE === 'notifier' || config.ROLE === 'changelog',
        check: () => broker.state(),
        // A blocked connection still delivers.
        acceptable: ['blocked'],
      },
      event_log: { critical: false, check: () => (rewound ? 'rewound' : 'up') },
    };
    const subscribed = feed;
    // Clients that connect before the notifier's queue exists would miss what it was not there for.
    if (subscribed)
      readiness.notifications = { critical: config.ROLE === 'notifier', check: () => (subscribed.ready() ? 'up' : 'not subscribed') };
    const log = changeLog;
    // Events wait in the queue while the change log is away; a changelog-only process then has nothing to do.
    if (log) readiness.changelog = { critical: config.ROLE === 'changelog', check: () => log.state() };
    const app = await buildApp({
      logger,
      metrics,
      ...(options.consoleRoot ? { consoleRoot: options.consoleRoot } : {}),
      security: securityOptions(config),
      readiness,
      ...(relay && changeLog
        ? {
            api: {
              catalog: db.drizzle,
              orders: createOrderService({
                db,
                now: options.now ?? (() => new Date()),
                newId: options.newId ?? randomUUID,
                eventsWritten: (change) => {
                  relay.wake();
                  if (change.type === 'order.created') metrics.orderCreated();
                  else metrics.statusChanged(change.from, change.to);
                },
                history: (id, createdAt) => changeLog.history(id, createdAt),
              }),
            },
          }
        : {}),
      ...(hub && feed
        ? { notifications: { hub, whenReady: feed.whenReady, replayAfter: (id: string) => eventsAfter(db, id, REPLAY_LIMIT) } }
        : {}),
      reportFault: (error: unknown) => health.noteFailure(error),
    });
    // The app closes first: no new requests, in-flight ones finish, then the parts behind them close.
    closers.push(() => app.close());

    return { app, db, broker, relay, hub, changeLog, changeLogWriter, metrics, stop: closeAll };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

async function seedIfEmpty(db: Database): Promise<void> {
  const [row] = await db.query<{ empty: boolean }>('SELECT NOT EXISTS (SELECT 1 FROM products) AS empty');
  if (row?.empty) await seedDemoCatalog(db.drizzle);
}

async function maintain(db: Database, config: Config, logger: FastifyBaseLogger): Promise<void> {
  try {
    const events = await deleteShippedBefore(db, config.OUTBOX_RETENTION_HOURS);
    const keys = await deleteExpiredKeys(db, config.IDEMPOTENCY_TTL_HOURS);
    if (events || keys) logger.info({ events, keys }, 'removed shipped events and expired idempotency keys');
  } catch (err) {
    logger.warn({ err }, 'maintenance failed; will try again');
  }
}

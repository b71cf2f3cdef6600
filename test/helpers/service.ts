import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import { seedDemoCatalog } from '../../src/products/repository.js';
import { startService, type Service } from '../../src/runtime.js';
import { embeddedImage } from './embedded-image.js';
import { createTestDatabase, type DatabaseKind, type TestDatabase } from './databases.js';
import { checkAnswersAgainstOpenApi } from './openapi-validation.js';

export interface TestService extends Service {
  database: TestDatabase;
  /** Stops the service and drops its database. */
  close(): Promise<void>;
}

export interface TestServiceOptions {
  database: DatabaseKind;
  /** Real RabbitMQ URL; the in-process broker when absent. */
  rabbitmqUrl?: string;
  env?: Record<string, string>;
  /** Where the built console is served from; `dist/console` when absent. */
  consoleRoot?: string;
}

/** The whole service as `npm start` wires it, on a fresh database, with a unique broker topology. */
export async function startTestService(options: TestServiceOptions): Promise<TestService> {
  const database = await createTestDatabase(options.database);
  const suffix = randomUUID().slice(0, 8);
  const config = loadConfig({
    DATA_DIR: ':memory:',
    LOG_LEVEL: 'silent',
    OUTBOX_SWEEP_MS: '200',
    ...(database.url ? { DATABASE_URL: database.url } : {}),
    ...(options.rabbitmqUrl ? { RABBITMQ_URL: options.rabbitmqUrl } : {}),
    RABBITMQ_EXCHANGE: `orders.test.${suffix}`,
    RABBITMQ_CHANGELOG_QUEUE: `orders.changelog.test.${suffix}`,
    ...options.env,
  });
  const service = await startService(config, {
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    ...(options.consoleRoot ? { consoleRoot: options.consoleRoot } : {}),
    ...(database.url ? {} : { embeddedImage: embeddedImage() }),
  });
  checkAnswersAgainstOpenApi(service.app);
  // PGlite seeds itself; a real database gets the demo catalog as an operator would load it.
  if (database.url) await seedDemoCatalog(service.db.drizzle);
  return {
    ...service,
    database,
    async close() {
      await service.stop();
      await database.drop();
      if (options.rabbitmqUrl) await deleteTopology(options.rabbitmqUrl, config.RABBITMQ_EXCHANGE, config.RABBITMQ_CHANGELOG_QUEUE);
    },
  };
}

/** Removes a test's exchange and change-log queue from RabbitMQ. */
export async function deleteTopology(url: string, exchange: string, queue: string): Promise<void> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    await channel.deleteQueue(queue);
    await channel.deleteExchange(exchange);
  } finally {
    await connection.close();
  }
}

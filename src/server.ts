import dotenv from 'dotenv';
import { pino, type DestinationStream } from 'pino';
import { loadConfig, ROLES, type Config } from './config.js';
import { ConfigError } from './errors.js';
import { loggerOptions } from './http/security.js';
import { startService } from './runtime.js';
import { describeStartupFailure, type StartupContext } from './startup-failure.js';

// Filled in as start-up learns it, so a failure can name the setting behind it.
let context: StartupContext | undefined;
let verbose = false;

/** The process: read settings, start the role, listen, and close cleanly on a signal. */
async function main(): Promise<void> {
  dotenv.config({ quiet: true });
  const role = process.argv[2];
  if (role !== undefined && !(ROLES as readonly string[]).includes(role)) {
    throw new ConfigError(`unknown role "${role}": use one of ${ROLES.join(', ')}`);
  }
  const config: Config = loadConfig({ ...process.env, ...(role ? { ROLE: role } : {}) });
  verbose = config.LOG_LEVEL === 'debug' || config.LOG_LEVEL === 'trace';
  context = {
    host: config.HOST,
    port: config.PORT,
    databaseUrl: config.DATABASE_URL,
    databaseSetting: process.env.DATABASE_URL
      ? 'DATABASE_URL'
      : 'DATABASE_HOST, DATABASE_PORT, DATABASE_NAME, DATABASE_USER and DATABASE_PASSWORD',
  };
  const logger = pino(loggerOptions({ level: config.LOG_LEVEL, secrets: [...config.apiKeys, ...config.readKeys] }), await logDestination());
  const service = await startService(config, { logger });
  const address = await service.app.listen({ host: config.HOST, port: config.PORT }).catch(async (error: unknown) => {
    await service.stop();
    throw error;
  });
  logger.info(
    { role: config.ROLE, database: service.db.kind, broker: config.RABBITMQ_URL ? 'rabbitmq' : 'in-process' },
    `order service listening on ${address}`,
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    const deadline = setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, config.SHUTDOWN_TIMEOUT_MS);
    await service.stop();
    clearTimeout(deadline);
    logger.info('stopped');
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

/**
 * Logs are JSON lines, for whatever collects them; in a terminal they are pretty (pino-pretty, a development
 * dependency: an install without it logs JSON there too).
 */
async function logDestination(): Promise<DestinationStream | undefined> {
  if (!process.stdout.isTTY) return undefined;
  try {
    const { default: pretty } = await import('pino-pretty');
    return pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' });
  } catch {
    return undefined;
  }
}

main().catch((error: unknown) => {
  console.error(describeStartupFailure(error, context));
  if (verbose && error instanceof Error && !(error instanceof ConfigError)) console.error(error.stack);
  process.exit(1);
});

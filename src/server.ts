import dotenv from 'dotenv';
import { pino } from 'pino';
import { ConfigError, loadConfig, ROLES, type Config } from './config.js';
import { loggerOptions } from './http/security.js';
import { startService } from './runtime.js';

/** The process: read settings, start the role, listen, and close cleanly on a signal. */
async function main(): Promise<void> {
  dotenv.config({ quiet: true });
  const role = process.argv[2];
  if (role !== undefined && !(ROLES as readonly string[]).includes(role)) {
    throw new ConfigError(`unknown role "${role}": use one of ${ROLES.join(', ')}`);
  }
  const config: Config = loadConfig({ ...process.env, ...(role ? { ROLE: role } : {}) });
  const logger = pino(loggerOptions({ level: config.LOG_LEVEL, secrets: [...config.apiKeys, ...config.readKeys] }));
  const service = await startService(config, { logger });
  const address = await service.app.listen({ host: config.HOST, port: config.PORT });
  logger.info({ role: config.ROLE, database: service.db.kind, broker: config.RABBITMQ_URL ? 'rabbitmq' : 'in-process' }, `order service listening on ${address}`);

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

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    console.error(`order service: ${error.message}`);
  } else {
    console.error('order service failed to start:', error);
  }
  process.exit(1);
});

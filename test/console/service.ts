import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import { embeddedImage } from '../helpers/embedded-image.js';
import { startService, type Service } from '../../src/runtime.js';

export interface ConsoleService extends Service {
  readonly url: string;
  close(): Promise<void>;
}

/** The embedded service on a loopback port, serving the console built into `consoleRoot`. */
export async function startConsoleService(consoleRoot: string, env: Record<string, string> = {}): Promise<ConsoleService> {
  const config = loadConfig({ DATA_DIR: ':memory:', LOG_LEVEL: 'silent', OUTBOX_SWEEP_MS: '200', ...env });
  const service = await startService(config, { logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }), consoleRoot, embeddedImage: embeddedImage() });
  const url = `${await service.app.listen({ host: '127.0.0.1', port: 0 })}/`;
  return { ...service, url, close: () => service.stop() };
}

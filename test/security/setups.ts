import type { AddressInfo } from 'node:net';
import { inject } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';

export interface Setup {
  name: string;
  database: 'pglite' | 'postgres';
  rabbitmq: boolean;
  skip: boolean;
}

/** Security holds on the embedded default and on the real services alike. */
export function setups(): Setup[] {
  return [
    { name: 'the embedded default (PGlite, in-process broker)', database: 'pglite', rabbitmq: false, skip: false },
    { name: 'PostgreSQL and RabbitMQ', database: 'postgres', rabbitmq: true, skip: !inject('postgresUrl') || !inject('rabbitmqUrl') },
  ];
}

export interface ListeningService {
  service: TestService;
  port: number;
}

/** The whole service on a real loopback socket, so raw requests reach it as sent. */
export async function startListening(setup: Pick<Setup, 'database' | 'rabbitmq'>, env: Record<string, string>): Promise<ListeningService> {
  const service = await startTestService({ database: setup.database, ...(setup.rabbitmq ? { rabbitmqUrl: inject('rabbitmqUrl') } : {}), env });
  await service.app.listen({ host: '127.0.0.1', port: 0 });
  return { service, port: (service.app.server.address() as AddressInfo).port };
}

export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

import net from 'node:net';
import type { TestProject } from 'vitest/node';

/** Probes the real services once; tests against them run when they answer, and CI requires that they do. */
export default async function setup(project: TestProject): Promise<void> {
  const postgresUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const rabbitmqUrl = process.env.TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
  const [postgres, rabbitmq] = await Promise.all([reachable(postgresUrl), reachable(rabbitmqUrl)]);
  const required = process.env.REQUIRE_REAL_SERVICES === '1';
  for (const [name, up] of [['PostgreSQL', postgres], ['RabbitMQ', rabbitmq]] as const) {
    if (up) continue;
    if (required) throw new Error(`REQUIRE_REAL_SERVICES=1 but ${name} is not reachable`);
    console.error(`note: ${name} is not reachable; its tests are skipped (set REQUIRE_REAL_SERVICES=1 to fail instead)`);
  }
  project.provide('postgresUrl', postgres ? postgresUrl : '');
  project.provide('rabbitmqUrl', rabbitmq ? rabbitmqUrl : '');
  project.provide('mongodbUrl', process.env.MONGODB_URL ?? '');
}

function reachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  const defaultPort = url.startsWith('amqp') ? 5672 : 5432;
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port || defaultPort), timeout: 2000 });
    const done = (up: boolean) => {
      socket.destroy();
      resolve(up);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string;
    rabbitmqUrl: string;
    mongodbUrl: string;
  }
}

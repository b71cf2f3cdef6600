import { randomUUID } from 'node:crypto';
import { startPgCluster, type PgCluster } from '../../helpers/pg-cluster.js';
import { spawnService, type ServiceProcess } from '../../helpers/process.js';
import { deleteTopology } from '../../helpers/service.js';
import { sleep } from '../../helpers/timing.js';
import { Load } from './load.js';
import { startSwitchableProxy, type SwitchableProxy } from './switchable-proxy.js';
import { FailoverClient } from './ws-client.js';

const CLIENTS = 3;

/** A primary and a standby, the service reaching PostgreSQL through a proxy that can be re-pointed, writers and WebSocket clients. */
export interface Failover {
  cluster: PgCluster;
  /** The service's way to PostgreSQL: the primary's address until re-pointed. */
  database: SwitchableProxy;
  service: ServiceProcess;
  base: string;
  load: Load;
  clients: FailoverClient[];
  /** Moves the service's database address to the standby. */
  repoint(): void;
  /** The service's output and both servers' logs, for a failure's message. */
  tail(): string;
  close(): Promise<void>;
}

/** Builds the cluster, starts the service on it and a few WebSocket clients that have all seen a first order. */
export async function startFailover(options: { synchronous: boolean; rabbitmqUrl: string }): Promise<Failover> {
  const steps: (() => Promise<unknown>)[] = [];
  const close = async () => {
    for (const step of steps.splice(0).reverse()) await step().catch((error: unknown) => console.error('failover cleanup:', error));
  };
  try {
    const cluster = await startPgCluster({ synchronous: options.synchronous, databases: ['orders'] });
    steps.push(() => cluster.cleanup());
    const database = await startSwitchableProxy({ host: '127.0.0.1', port: cluster.primary.port });
    steps.push(() => database.close());
    const suffix = `failover.${randomUUID().slice(0, 8)}`;
    const topology = { RABBITMQ_EXCHANGE: `orders.test.${suffix}`, RABBITMQ_CHANGELOG_QUEUE: `orders.changelog.test.${suffix}` };
    steps.push(() => deleteTopology(options.rabbitmqUrl, topology.RABBITMQ_EXCHANGE, topology.RABBITMQ_CHANGELOG_QUEUE));
    const service = await spawnService({
      ROLE: 'all',
      DATABASE_URL: `postgres://postgres@127.0.0.1:${database.port}/orders`,
      DATABASE_POOL_SIZE: '10',
      RABBITMQ_URL: options.rabbitmqUrl,
      ...topology,
      OUTBOX_SWEEP_MS: '200',
      LOG_LEVEL: 'info',
    });
    steps.push(() => service.stop(5_000));
    const base = service.url;
    const product = await fetch(`${base}/products`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Failover widget', price: 12.5 }),
      signal: AbortSignal.timeout(10_000),
    });
    if (product.status !== 201) throw new Error(`POST /products answered ${product.status}: ${await product.text()}`);
    const load = new Load(base, ((await product.json()) as { id: number }).id, suffix);
    steps.push(() => load.stop());

    // One client stays, the others drop their own sockets now and then, so resumes with ?after= cross the failover.
    const clients = Array.from({ length: CLIENTS }, (_, i) => new FailoverClient(base, i === 0 ? undefined : 1_500 * i));
    steps.push(() => Promise.all(clients.map((c) => c.stop())));
    await Promise.all(clients.map((c) => c.start()));
    await load.createOne('genesis');
    const deadline = performance.now() + 15_000;
    while (!clients.every((c) => c.received.length > 0)) {
      if (performance.now() > deadline) throw new Error(`the first order's event did not reach every client within 15 s:\n${service.output().slice(-3_000)}`);
      await sleep(50);
    }
    return {
      cluster,
      database,
      service,
      base,
      load,
      clients,
      repoint: () => database.switchTo({ host: '127.0.0.1', port: cluster.standby.port }),
      tail: () => `--- service output\n${service.output().split('\n').slice(-40).join('\n')}\n${cluster.logs(15)}`,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

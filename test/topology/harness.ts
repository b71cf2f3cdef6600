import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import { openDatabase, type Database } from '../../src/db/client.js';
import { migrate } from '../../src/db/migrate.js';
import { seedDemoCatalog } from '../../src/products/repository.js';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { spawnService, type ServiceProcess } from '../helpers/process.js';
import { deleteTopology } from '../helpers/service.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { sleep } from '../faults/crash/http.js';

export type Role = 'api' | 'notifier' | 'changelog';

/** Why the real services are not there (empty when they are): such a suite skips, unless REQUIRE_REAL_SERVICES=1. */
export function unreachableServices(): string[] {
  return [!inject('postgresUrl') && 'PostgreSQL', !inject('rabbitmqUrl') && 'RabbitMQ'].filter((s): s is string => Boolean(s));
}

export const realServicesRequired = process.env.REQUIRE_REAL_SERVICES === '1';

const START_TIMEOUT_MS = 60_000;
const START_ATTEMPTS = 10;

/**
 * One process of the topology, with its own proxies in front of PostgreSQL and RabbitMQ, so that its
 * connections can be cut alone. Killed and started again on a new port; `whenUp()` waits while it is down.
 */
export class Member {
  starts = 0;
  failedStarts = 0;
  kills = 0;
  private current: ServiceProcess | undefined;
  private up!: Promise<string>;
  private markUp!: (url: string) => void;
  private readonly outputs: (() => string)[] = [];

  constructor(
    readonly name: string,
    readonly role: Role,
    readonly postgres: TcpProxy,
    readonly rabbitmq: TcpProxy,
    private readonly env: Record<string, string>,
  ) {
    this.markDown();
  }

  /** The running process's base URL, or undefined while it is down. */
  get url(): string | undefined {
    return this.current?.url;
  }

  whenUp(): Promise<string> {
    return this.up;
  }

  /**
   * Starts the process; one that exits before it listens (its start-up met a cut: migrations need
   * PostgreSQL) is started again, as an orchestrator would, within a bounded number of tries.
   */
  async start(): Promise<string> {
    let lastError: unknown;
    for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
      this.starts++;
      // Half the starts name the role by argument and half by ROLE, as an operator may do either.
      const byArgument = this.starts % 2 === 1;
      try {
        const service = await spawnService(byArgument ? this.env : { ...this.env, ROLE: this.role }, byArgument ? [this.role] : [], { startTimeoutMs: START_TIMEOUT_MS });
        this.current = service;
        this.outputs.push(() => service.output());
        this.markUp(service.url);
        return service.url;
      } catch (error) {
        lastError = error;
        this.failedStarts++;
        await sleep(500);
      }
    }
    throw new Error(`${this.name} did not start in ${START_ATTEMPTS} tries: ${String(lastError)}`);
  }

  /** SIGKILL: nothing flushed, nothing closed. */
  async kill(): Promise<void> {
    const service = this.current;
    if (!service) return;
    this.current = undefined;
    this.markDown();
    await service.kill('SIGKILL');
    this.kills++;
  }

  async stop(): Promise<void> {
    const service = this.current;
    this.current = undefined;
    if (service) await service.stop(10_000);
  }

  /** The last lines of each of its processes, for a failure's message. */
  tail(lines = 12): string {
    return this.outputs.map((o, i) => `--- ${this.name} process ${i + 1}\n${o().split('\n').slice(-lines).join('\n')}`).join('\n');
  }

  private markDown(): void {
    this.up = new Promise((resolve) => (this.markUp = resolve));
  }
}

export interface TopologyOptions {
  /** Processes to run, by name and role. */
  members: readonly { name: string; role: Role }[];
  env?: Record<string, string>;
}

/**
 * A scaled-out service on one fresh PostgreSQL database and a RabbitMQ exchange and change-log queue of
 * its own, every process behind proxies of its own. `db` reaches PostgreSQL directly, for the checks.
 */
export class Topology {
  readonly members = new Map<string, Member>();
  private constructor(
    readonly db: Database,
    private readonly database: TestDatabase,
    readonly exchange: string,
    readonly queue: string,
    private readonly mongoDatabase: string,
  ) {}

  static async open(options: TopologyOptions): Promise<Topology> {
    const rabbitmqUrl = inject('rabbitmqUrl');
    const database = await createTestDatabase('postgres');
    const db = await openDatabase({ url: database.url, poolSize: 3 });
    const suffix = `topology.${randomUUID().slice(0, 8)}`;
    const topology = new Topology(db, database, `orders.test.${suffix}`, `orders.changelog.test.${suffix}`, `order_test_${suffix.replace('.', '_')}`);
    // Schema and catalog first, as an operator would before starting the instances.
    await migrate(db);
    await seedDemoCatalog(db.drizzle);
    const pgTarget = new URL(database.url!);
    const amqpTarget = new URL(rabbitmqUrl);
    for (const { name, role } of options.members) {
      const postgres = await startTcpProxy({ host: pgTarget.hostname, port: Number(pgTarget.port || 5432) });
      const rabbitmq = await startTcpProxy({ host: amqpTarget.hostname, port: Number(amqpTarget.port || 5672) });
      const viaPostgres = new URL(database.url!);
      viaPostgres.hostname = '127.0.0.1';
      viaPostgres.port = String(postgres.port);
      const viaRabbitmq = new URL(rabbitmqUrl);
      viaRabbitmq.hostname = '127.0.0.1';
      viaRabbitmq.port = String(rabbitmq.port);
      const env = {
        DATABASE_URL: viaPostgres.toString(),
        RABBITMQ_URL: viaRabbitmq.toString(),
        RABBITMQ_EXCHANGE: topology.exchange,
        RABBITMQ_CHANGELOG_QUEUE: topology.queue,
        DATABASE_POOL_SIZE: '5',
        OUTBOX_SWEEP_MS: '200',
        RATE_LIMIT_MAX: '0',
        LOG_LEVEL: 'info',
        ...(process.env.MONGODB_URL ? { MONGODB_URL: process.env.MONGODB_URL, MONGODB_DB: topology.mongoDatabase } : {}),
        ...options.env,
      };
      topology.members.set(name, new Member(name, role, postgres, rabbitmq, env));
    }
    return topology;
  }

  member(name: string): Member {
    const member = this.members.get(name);
    if (!member) throw new Error(`no member ${name}`);
    return member;
  }

  byRole(role: Role): Member[] {
    return [...this.members.values()].filter((m) => m.role === role);
  }

  /** Starts every process, two at a time (tsx start-ups crowd a small machine), and waits until each is ready. */
  async start(): Promise<void> {
    const all = [...this.members.values()];
    for (let i = 0; i < all.length; i += 2) await Promise.all(all.slice(i, i + 2).map((m) => m.start()));
    for (const member of all) await waitReady(member, 60_000);
  }

  /** Every proxy forwarding again. */
  async restoreAll(): Promise<void> {
    for (const member of this.members.values()) {
      await member.postgres.restore();
      await member.rabbitmq.restore();
    }
  }

  tails(): string {
    return [...this.members.values()].map((m) => m.tail()).join('\n');
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.members.values()].map((m) => m.stop()));
    await Promise.allSettled([...this.members.values()].flatMap((m) => [m.postgres.close(), m.rabbitmq.close()]));
    await this.db.close().catch(() => undefined);
    await this.database.drop();
    await deleteTopology(inject('rabbitmqUrl'), this.exchange, this.queue).catch(() => undefined);
    if (process.env.MONGODB_URL) await dropMongoDatabase(process.env.MONGODB_URL, this.mongoDatabase).catch(() => undefined);
  }
}

async function dropMongoDatabase(url: string, name: string): Promise<void> {
  const { MongoClient } = await import('mongodb');
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 5_000 });
  try {
    await client.db(name).dropDatabase();
  } finally {
    await client.close();
  }
}

/** Until /readyz answers 200 with the broker up: listening is not being connected (bounded). */
export async function waitReady(member: Member, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'not asked';
  while (Date.now() < deadline) {
    const base = member.url;
    if (base) {
      try {
        const response = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(2_000) });
        const body = (await response.json()) as { checks?: { broker?: string } };
        last = `${response.status} ${JSON.stringify(body.checks)}`;
        if (response.status === 200 && body.checks?.broker === 'up') return;
      } catch (error) {
        last = String(error);
      }
    }
    await sleep(100);
  }
  throw new Error(`${member.name} not ready after ${timeoutMs} ms: ${last}`);
}

/** Maps over items with at most `width` at a time. */
export async function inBatches<T, R>(items: readonly T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return results;
}

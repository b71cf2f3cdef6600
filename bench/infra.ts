import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import amqp from 'amqplib';
import pg from 'pg';

/** The PostgreSQL server the bench makes its databases on, and the RabbitMQ it declares its topology on. */
export const ADMIN_DATABASE_URL =
  process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const RABBITMQ_URL = process.env.BENCH_RABBITMQ_URL ?? process.env.TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/** Names everything this run creates, so that nothing collides with another run or with the tests. */
export const RUN_ID = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;

type Cleanup = () => Promise<void> | void;
const cleanups: { name: string; fn: Cleanup }[] = [];

/** Registers undo work; it runs (last first) at the end of the run, or on Ctrl-C. */
export function onCleanup(name: string, fn: Cleanup): () => Promise<void> {
  const entry = { name, fn };
  cleanups.push(entry);
  return async () => {
    const i = cleanups.indexOf(entry);
    if (i < 0) return;
    cleanups.splice(i, 1);
    await fn();
  };
}

export async function runCleanups(): Promise<void> {
  while (cleanups.length > 0) {
    const { name, fn } = cleanups.pop()!;
    try {
      await fn();
    } catch (err) {
      console.error(`cleanup "${name}" failed:`, err);
    }
  }
}

/** The database the bench connects to for administration (creating and dropping its own). */
export const adminDatabase = (): BenchDatabase => {
  const url = ADMIN_DATABASE_URL;
  return {
    name: new URL(url).pathname.slice(1),
    url,
    scalar: <T>(sql: string, params?: unknown[]) =>
      withClient(url, async (c) => Object.values((await c.query(sql, params)).rows[0] ?? {})[0] as T),
    drop: async () => {},
  };
};

export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export interface BenchDatabase {
  readonly name: string;
  readonly url: string;
  /** One value from one query, for counts and checks. */
  scalar<T>(sql: string, params?: unknown[]): Promise<T>;
  drop(): Promise<void>;
}

/** A fresh, empty database, dropped at the end of the run. */
export async function createDatabase(label: string): Promise<BenchDatabase> {
  const name = `bench_${RUN_ID}_${label}`;
  await withClient(ADMIN_DATABASE_URL, (c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  const drop = onCleanup(`drop database ${name}`, async () => {
    await withClient(ADMIN_DATABASE_URL, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  });
  return {
    name,
    url: url.toString(),
    scalar: <T>(sql: string, params?: unknown[]) =>
      withClient(url.toString(), async (c) => Object.values((await c.query(sql, params)).rows[0] ?? {})[0] as T),
    drop,
  };
}

export interface Topology {
  readonly exchange: string;
  readonly changelogQueue: string;
}

let topologies = 0;

/** Exchange and change-log queue names of one server start, deleted at the end of the run. */
export function uniqueTopology(): Topology {
  topologies += 1;
  const exchange = `orders.bench.${RUN_ID}.${topologies}`;
  const changelogQueue = `orders.changelog.bench.${RUN_ID}.${topologies}`;
  onCleanup(`delete ${exchange}`, async () => {
    const conn = await amqp.connect(RABBITMQ_URL);
    try {
      const channel = await conn.createChannel();
      await channel.deleteQueue(changelogQueue);
      await channel.deleteExchange(exchange);
      await channel.close();
    } finally {
      await conn.close();
    }
  });
  return { exchange, changelogQueue };
}

/** A port nobody listens on right now (loopback only). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A temporary folder, removed at the end of the run. */
export function tempDir(label: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `order-bench-${label}-`));
  onCleanup(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function checkServices(): Promise<void> {
  await withClient(ADMIN_DATABASE_URL, (c) => c.query('SELECT 1')).catch((err: unknown) => {
    throw new Error(`PostgreSQL at ${redact(ADMIN_DATABASE_URL)} does not answer (set BENCH_DATABASE_URL): ${String(err)}`);
  });
  const conn = await amqp.connect(RABBITMQ_URL).catch((err: unknown) => {
    throw new Error(`RabbitMQ at ${redact(RABBITMQ_URL)} does not answer (set BENCH_RABBITMQ_URL): ${String(err)}`);
  });
  await conn.close();
}

export function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

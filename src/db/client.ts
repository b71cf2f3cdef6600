import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import type pg from 'pg';
import * as schema from './schema.js';

export type Drizzle = PgDatabase<PgQueryResultHKT, typeof schema>;

/** What a statement runs on: the database itself, or one transaction. */
export interface Queryable {
  /**
   * Runs one statement; `name` makes it a prepared statement on PostgreSQL. Only for primary-key
   * lookups and writes: a cached plan is kept as tables grow, so a scan planned on a small table stays.
   */
  query<T>(text: string, params?: readonly unknown[], name?: string): Promise<T[]>;
}

export interface Database extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  readonly drizzle: Drizzle;
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** PostgreSQL; when absent, PGlite keeps its files in `dataDir` (in memory when that is absent or ':memory:'). */
  url?: string;
  dataDir?: string;
  poolSize?: number;
}

const INT8 = 20;

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  return options.url ? openPostgres(options.url, options.poolSize ?? 20) : openPglite(options.dataDir);
}

// Each driver loads only when used, so the embedded default starts without pg and vice versa.
async function openPglite(dataDir: string | undefined): Promise<Database> {
  // V8's optimising wasm compiler spends ~0.5 s of a 2-core machine's start-up on PostgreSQL's
  // wasm; the baseline compiler alone starts far sooner and serves orders as fast (bench/README.md).
  setFlagsFromString('--liftoff-only');
  const [{ PGlite }, { drizzle: drizzlePglite }] = await Promise.all([import('@electric-sql/pglite'), import('drizzle-orm/pglite')]);
  let dir: string | undefined;
  if (dataDir && dataDir !== ':memory:') {
    dir = path.resolve(dataDir, 'pglite');
    mkdirSync(dir, { recursive: true });
  }
  const client = await PGlite.create(dir);
  const run: Queryable['query'] = async <T>(text: string, params: readonly unknown[] = []) =>
    (await client.query<T>(text, params as unknown[])).rows;
  return {
    kind: 'pglite',
    drizzle: drizzlePglite(client, { schema }) as unknown as Drizzle,
    query: run,
    transaction: (fn) =>
      client.transaction((tx) => fn({ query: async <T>(text: string, params: readonly unknown[] = []) => (await tx.query<T>(text, params as unknown[])).rows })),
    ping: async () => {
      await client.query('SELECT 1');
    },
    close: () => client.close(),
  };
}

async function openPostgres(url: string, poolSize: number): Promise<Database> {
  const [{ default: pg }, { drizzle: drizzlePg }] = await Promise.all([import('pg'), import('drizzle-orm/node-postgres')]);
  // Ids stay well below 2^53; callers get numbers, as PGlite returns them.
  const types = {
    getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
      oid === INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
  };
  const pool = new pg.Pool({ connectionString: url, max: poolSize, types, connectionTimeoutMillis: 5000 });
  // An idle client that loses its server must not take the process down with it.
  pool.on('error', () => undefined);
  const onClient = (client: pg.PoolClient | pg.Pool): Queryable => ({
    query: async <T>(text: string, params: readonly unknown[] = [], name?: string) =>
      (await client.query<T & pg.QueryResultRow>({ text, values: params as unknown[], ...(name ? { name } : {}) })).rows as T[],
  });
  const db: Database = {
    kind: 'postgres',
    drizzle: drizzlePg(pool, { schema }) as unknown as Drizzle,
    ...onClient(pool),
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn(onClient(client));
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
    ping: async () => {
      await pool.query('SELECT 1');
    },
    close: () => pool.end(),
  };
  await db.ping();
  return db;
}

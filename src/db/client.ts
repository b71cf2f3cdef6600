import { existsSync, mkdirSync } from 'node:fs';
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

/** One connection held for work that must stay on one session: a session lock, LISTEN. */
export interface Session extends Queryable {
  /** Calls `fn` on each NOTIFY on `channel` (PostgreSQL; a no-op on PGlite, where one process owns the database). */
  listen(channel: string, fn: () => void): Promise<void>;
  /** Closes the connection: its session locks and subscriptions go with it. */
  release(error?: Error): void;
  /** Resolves when the connection is lost, so its holder knows its session locks are gone. */
  readonly lost: Promise<void>;
}

export interface Database extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  readonly drizzle: Drizzle;
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  session(): Promise<Session>;
  ping(): Promise<void>;
  close(): Promise<void>;
  /** PostgreSQL's connection pool right now, for metrics; absent on PGlite, which has one connection. */
  poolUse?(): PoolUse;
  /** PGlite only: the data folder as one uncompressed tarball, which `DatabaseOptions.image` can start from. */
  dump?(): Promise<Blob>;
}

export interface PoolUse {
  /** Connections open, idle among them, requests waiting for one, and the most the pool opens. */
  open: number;
  idle: number;
  waiting: number;
  max: number;
}

/** Bounds on every PostgreSQL call, so a database that is slow or cut off costs seconds, not a hung request. */
export interface PostgresTimeouts {
  /** Opening a connection, and waiting for a pooled one. */
  connectMs: number;
  /** Client side: a statement unanswered by then fails and its connection is destroyed (a silent network). */
  queryMs: number;
  /** Server side (`statement_timeout`): the server cancels a statement running longer; 0 leaves the server's setting. */
  statementMs: number;
  /**
   * Server side (`idle_in_transaction_session_timeout`): a transaction whose client went quiet ends and
   * frees its locks; 0 leaves the server's setting.
   */
  idleInTransactionMs: number;
}

/** The server gives up on a statement before the client does, so a slow statement fails cleanly and keeps its connection. */
export const POSTGRES_TIMEOUTS: PostgresTimeouts = { connectMs: 2000, queryMs: 2500, statementMs: 2000, idleInTransactionMs: 10_000 };

export interface DatabaseOptions {
  /** PostgreSQL; when absent, PGlite keeps its files in `dataDir` (in memory when that is absent or ':memory:'). */
  url?: string;
  dataDir?: string;
  /**
   * PGlite only: a dumped data folder (PGlite's `dumpDataDir`) that a new embedded database starts from
   * instead of being initialised, which is most of its start-up. The tests start each one from an image
   * of a migrated database made once per run (test/helpers/embedded-image.ts).
   */
  image?: Blob;
  poolSize?: number;
  timeouts?: Partial<PostgresTimeouts>;
}

const INT8 = 20;
const READ_ONLY_SQLSTATE = '25006';
// The OS probes an idle connection this soon, so one whose server is gone is dropped before it is handed out.
const KEEPALIVE_INITIAL_DELAY_MS = 5000;

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  return options.url
    ? openPostgres(options.url, options.poolSize ?? 20, { ...POSTGRES_TIMEOUTS, ...options.timeouts })
    : openPglite(options.dataDir, options.image);
}

// Each driver loads only when used, so the embedded default starts without pg and vice versa.
async function openPglite(dataDir: string | undefined, image: Blob | undefined): Promise<Database> {
  // V8's optimising wasm compiler spends ~0.5 s of a 2-core machine's start-up on PostgreSQL's
  // wasm; the baseline compiler alone starts far sooner (start to ready in 0.89 s instead of 1.43 s, when it was
  // added) and serves orders as fast.
  setFlagsFromString('--liftoff-only');
  const [{ PGlite }, { drizzle: drizzlePglite }] = await Promise.all([import('@electric-sql/pglite'), import('drizzle-orm/pglite')]);
  let dir: string | undefined;
  if (dataDir && dataDir !== ':memory:') {
    dir = path.resolve(dataDir, 'pglite');
    mkdirSync(dir, { recursive: true });
  }
  const isNew = dir === undefined || !existsSync(path.join(dir, 'PG_VERSION'));
  // One options object: PGlite.create reads its second argument only when the first is a folder.
  const client = await PGlite.create({ ...(dir ? { dataDir: dir } : {}), ...(image && isNew ? { loadDataDir: image } : {}) });
  const run: Queryable['query'] = async <T>(text: string, params: readonly unknown[] = []) =>
    (await client.query<T>(text, params as unknown[])).rows;
  return {
    kind: 'pglite',
    drizzle: drizzlePglite(client, { schema }) as unknown as Drizzle,
    query: run,
    transaction: (fn) =>
      client.transaction((tx) =>
        fn({ query: async <T>(text: string, params: readonly unknown[] = []) => (await tx.query<T>(text, params as unknown[])).rows }),
      ),
    // One process owns an embedded database (the data folder is locked), so its session is the database.
    session: async () => ({ query: run, listen: async () => {}, release: () => {}, lost: new Promise<never>(() => {}) }),
    ping: async () => {
      await client.query('SELECT 1');
    },
    close: () => client.close(),
    dump: async () => client.dumpDataDir('none'),
  };
}

async function openPostgres(url: string, poolSize: number, timeouts: PostgresTimeouts): Promise<Database> {
  const [{ default: pg }, { drizzle: drizzlePg }] = await Promise.all([import('pg'), import('drizzle-orm/node-postgres')]);
  // Ids stay well below 2^53; callers get numbers, as PGlite returns them.
  const types = {
    getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
      oid === INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
  };
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    types,
    connectionTimeoutMillis: timeouts.connectMs,
    query_timeout: timeouts.queryMs,
    statement_timeout: timeouts.statementMs,
    idle_in_transaction_session_timeout: timeouts.idleInTransactionMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_INITIAL_DELAY_MS,
  });
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
      // A statement that failed without the server's answer (a timeout, a lost socket) may leave the
      // connection mid-statement: it is destroyed rather than handed to the next caller.
      let broken: Error | undefined;
      const onLost = (error: Error): void => void (broken ??= error);
      // Checked out, the client has no pool listener: an unheard 'error' would end the process.
      client.on('error', onLost);
      const tx: Queryable = {
        async query(text, params, name) {
          try {
            return await onClient(client).query(text, params, name);
          } catch (error) {
            // A read-only server (a standby a failover left behind) is dropped too, so the pool reconnects to the primary.
            if (!(error instanceof pg.DatabaseError) || error.code === READ_ONLY_SQLSTATE) broken ??= error as Error;
            throw error;
          }
        },
      };
      try {
        await tx.query('BEGIN');
        const result = await fn(tx);
        await tx.query('COMMIT');
        return result;
      } catch (error) {
        if (!broken) await tx.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.removeListener('error', onLost);
        client.release(broken);
      }
    },
    async session() {
      const client = await pool.connect();
      let released = false;
      const lost = new Promise<void>((resolve) => {
        // Checked out, the client has no pool listener: an unheard 'error' would end the process.
        client.on('error', () => resolve());
        client.once('end', () => resolve());
      });
      return {
        ...onClient(client),
        async listen(channel, fn) {
          client.on('notification', (n) => n.channel === channel && fn());
          await client.query(`LISTEN ${client.escapeIdentifier(channel)}`);
        },
        release(error) {
          if (released) return;
          released = true;
          client.removeAllListeners('notification');
          // Never back to the pool: it may still hold a session lock or a subscription.
          client.release(error ?? true);
        },
        lost,
      };
    },
    ping: async () => {
      await pool.query('SELECT 1');
    },
    close: () => pool.end(),
    poolUse: () => ({ open: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: poolSize }),
  };
  await db.ping();
  return db;
}

import type { PgliteDatabase } from 'drizzle-orm/pglite';
import type pg from 'pg';
import { MIGRATIONS_FOLDER as migrationsFolder } from '../paths.js';
import type { Database } from './client.js';

// Any constant will do; every instance must agree on it.
const MIGRATION_LOCK = 7_340_112;

/**
 * Brings the schema up to date. On PostgreSQL an advisory lock serialises instances that start
 * together: the second waits, then finds nothing left to do.
 */
export async function migrate(db: Database): Promise<void> {
  if (db.kind === 'pglite') {
    const { migrate: migratePglite } = await import('drizzle-orm/pglite/migrator');
    await migratePglite(db.drizzle as unknown as PgliteDatabase, { migrationsFolder });
    return;
  }
  const [{ default: pg }, { drizzle }, { migrate: migratePg }] = await Promise.all([
    import('pg'),
    import('drizzle-orm/node-postgres'),
    import('drizzle-orm/node-postgres/migrator'),
  ]);
  // The lock must be held on the connection the migrator uses, so take a dedicated one. A migration
  // may rewrite a big table, and the second instance waits for the first: no statement timeouts here.
  const { options } = (db.drizzle as unknown as { $client: pg.Pool }).$client;
  const client = new pg.Client({
    ...options,
    query_timeout: undefined,
    statement_timeout: undefined,
    idle_in_transaction_session_timeout: undefined,
  });
  // A lost connection fails the statement in progress; unheard, its 'error' event would end the process.
  client.on('error', () => undefined);
  await client.connect();
  try {
    // Also lifts a statement_timeout set on the role or the database.
    await client.query('SET statement_timeout = 0');
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await migratePg(drizzle(client), { migrationsFolder });
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    await client.end();
  }
}

import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { openDatabase } from '../../../src/db/client.js';
import { migrate } from '../../../src/db/migrate.js';
import { seedDemoCatalog } from '../../../src/products/repository.js';

/** The database's name in a DATABASE_URL. */
export const databaseName = (url: string) => decodeURIComponent(new URL(url).pathname.slice(1));

/** A superuser session of the test's own, on the admin database, for what the service must not do itself. */
export async function adminSession(adminUrl: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5_000, query_timeout: 10_000 });
  // A session the test did not end itself (the server restarting) must not end the test process.
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** Ends every session on `database` but the admin's own (57P01 for each); resolves once they are gone. */
export async function terminateBackends(admin: pg.Client, database: string): Promise<number> {
  const { rows } = await admin.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
    [database],
  );
  const pids = rows.map((r) => r.pid);
  if (pids.length === 0) return 0;
  await admin.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [pids]);
  // pg_terminate_backend only signals: wait (bounded) until the backends have exited.
  for (let i = 0; i < 50; i++) {
    const { rows: left } = await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = ANY($1::int[])', [pids]);
    if (left.length === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return pids.length;
}

/** The schema and the demo catalog, as `npm run migrate` and `npm run seed` would leave them. */
export async function prepareDatabase(url: string): Promise<void> {
  const db = await openDatabase({ url, poolSize: 1 });
  try {
    await migrate(db);
    await seedDemoCatalog(db.drizzle);
  } finally {
    await db.close();
  }
}

/** A login role of the test's own with a connection limit (superusers ignore limits), owning `database`. */
export async function limitedRole(admin: pg.Client, adminUrl: string, database: string, limit: number): Promise<{ url: string; drop(): Promise<void> }> {
  const role = `order_test_role_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  await admin.query(`CREATE ROLE ${role} LOGIN CONNECTION LIMIT ${Number(limit)}`);
  await admin.query(`ALTER DATABASE ${database} OWNER TO ${role}`);
  const url = new URL(adminUrl);
  url.username = role;
  url.password = '';
  url.pathname = `/${database}`;
  return {
    url: url.toString(),
    async drop() {
      await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [role]);
      await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
    },
  };
}

import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';

export type DatabaseKind = 'pglite' | 'postgres';

export interface TestDatabase {
  /** DATABASE_URL for this test's own database, or undefined for an in-memory PGlite. */
  url: string | undefined;
  drop(): Promise<void>;
}

/** The databases every storage test runs against: PGlite always, PostgreSQL when it is reachable. */
export function databaseKinds(): { kind: DatabaseKind; skip: boolean }[] {
  return [
    { kind: 'pglite', skip: false },
    { kind: 'postgres', skip: !inject('postgresUrl') },
  ];
}

/** A fresh, empty database, so tests never see each other's rows. */
export async function createTestDatabase(kind: DatabaseKind): Promise<TestDatabase> {
  if (kind === 'pglite') return { url: undefined, drop: async () => {} };
  const adminUrl = inject('postgresUrl');
  const name = `order_test_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  await withAdmin(adminUrl, (c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => withAdmin(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}

async function withAdmin<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

import { describe, expect, inject, it } from 'vitest';
import { openDatabase } from '../../src/db/client.js';
import { migrate } from '../../src/db/migrate.js';
import { createTestDatabase } from '../helpers/databases.js';

describe.skipIf(!inject('postgresUrl'))('migrations on PostgreSQL', () => {
  it('when four instances migrate one empty database at once, then all succeed and the schema is applied once', async () => {
    const database = await createTestDatabase('postgres');
    const instances = await Promise.all(Array.from({ length: 4 }, () => openDatabase({ url: database.url!, poolSize: 2 })));
    try {
      await Promise.all(instances.map((db) => migrate(db)));
      const [applied] = await instances[0]!.query<{ n: number }>('SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations');
      expect(applied!.n).toBe(1);
      const tables = await instances[0]!.query<{ table_name: string }>(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
      );
      expect(tables.map((t) => t.table_name)).toEqual(['idempotency_keys', 'order_changes', 'orders', 'outbox', 'products']);
      await migrate(instances[1]!);
    } finally {
      await Promise.all(instances.map((db) => db.close()));
      await database.drop();
    }
  });
});

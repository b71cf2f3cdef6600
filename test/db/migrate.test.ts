import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { describe, expect, inject, it } from 'vitest';
import { openDatabase } from '../../src/db/client.js';
import { migrate } from '../../src/db/migrate.js';
import { LOG_START, readAfter, readCheckpoint } from '../../src/outbox/store.js';
import { createTestDatabase } from '../helpers/databases.js';

const journal = JSON.parse(readFileSync(new URL('../../src/db/migrations/meta/_journal.json', import.meta.url), 'utf8')) as { entries: unknown[] };

describe.skipIf(!inject('postgresUrl'))('migrations on PostgreSQL', () => {
  it('when four instances migrate one empty database at once, then all succeed and the schema is applied once', async () => {
    const database = await createTestDatabase('postgres');
    const instances = await Promise.all(Array.from({ length: 4 }, () => openDatabase({ url: database.url!, poolSize: 2 })));
    try {
      await Promise.all(instances.map((db) => migrate(db)));
      const [applied] = await instances[0]!.query<{ n: number }>('SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations');
      expect(applied!.n).toBe(journal.entries.length);
      const tables = await instances[0]!.query<{ table_name: string }>(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
      );
      expect(tables.map((t) => t.table_name)).toEqual(['idempotency_keys', 'order_changes', 'orders', 'outbox', 'outbox_checkpoint', 'products']);
      await migrate(instances[1]!);
      // The checkpoint row is written once, by the one migration that ran.
      expect(await instances[0]!.query('SELECT name, xid::text, position FROM outbox_checkpoint')).toEqual([{ name: 'relay', xid: '0', position: 0 }]);
    } finally {
      await Promise.all(instances.map((db) => db.close()));
      await database.drop();
    }
  });
});

describe('the outbox log migration on a database that ran the first schema', () => {
  it('when events were half shipped before the upgrade, then the checkpoint stands after the shipped prefix and the rest go out', async () => {
    // The schema as it was: only the first migration.
    const folder = mkdtempSync(path.join(tmpdir(), 'migrations-'));
    const source = fileURLToPath(new URL('../../src/db/migrations', import.meta.url));
    cpSync(path.join(source, '0000_init.sql'), path.join(folder, '0000_init.sql'));
    cpSync(path.join(source, 'meta'), path.join(folder, 'meta'), { recursive: true });
    writeFileSync(path.join(folder, 'meta', '_journal.json'), JSON.stringify({ ...journal, entries: journal.entries.slice(0, 1) }));
    const db = await openDatabase({});
    try {
      await migratePglite(db.drizzle as never, { migrationsFolder: folder });
      const insert = 'INSERT INTO outbox (event_id, order_id, sequence, type, payload, sent_at) VALUES (gen_random_uuid(), $1, 1, $2, $3, $4)';
      for (const [order, sent] of [[1, true], [2, true], [3, false], [4, true], [5, false]] as const) {
        await db.query(insert, [order, 'order.created', JSON.stringify({ order_id: order }), sent ? new Date().toISOString() : null]);
      }

      await migrate(db);

      const checkpoint = await readCheckpoint(db);
      expect(checkpoint.position).toBe(2);
      // Shipped again from the first unsent one: 4 goes out twice, which consumers absorb; 3 and 5 are not lost.
      expect((await readAfter(db, checkpoint, 10)).map((e) => e.orderId)).toEqual([3, 4, 5]);
      expect((await readAfter(db, LOG_START, 10)).map((e) => e.orderId)).toEqual([1, 2, 3, 4, 5]);
    } finally {
      await db.close();
      rmSync(folder, { recursive: true, force: true });
    }
  });
});

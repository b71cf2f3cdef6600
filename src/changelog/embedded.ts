import type { Queryable } from '../db/client.js';
import type { ChangeLog } from './changelog.js';

const APPEND = `
INSERT INTO order_changes (event_id, order_id, sequence, type, occurred_at, envelope)
SELECT (e->>'id')::uuid, (e->>'order_id')::bigint, (e->>'sequence')::int, e->>'type', (e->>'occurred_at')::timestamptz, e
FROM json_array_elements($1::json) AS e
ON CONFLICT (event_id) DO NOTHING
RETURNING 1`;

/** The change log kept in the order database itself, for when no MongoDB is configured. */
export function createEmbeddedChangeLog(db: Queryable): ChangeLog {
  return {
    async append(events) {
      if (events.length === 0) return 0;
      // A json (not jsonb) column keeps each body's text as published: 200.00 stays 200.00.
      return (await db.query(APPEND, [`[${events.map((e) => e.body).join(',')}]`])).length;
    },
    async history(orderId, createdAt) {
      const [row] = await db.query<{ json: string }>(
        `SELECT coalesce('[' || string_agg(envelope::text, ',' ORDER BY sequence) || ']', '[]') AS json FROM order_changes
         WHERE order_id = $1 AND ($2::text IS NULL OR envelope->'order'->>'created_at' = $2)`,
        [orderId, createdAt ?? null],
      );
      // An aggregate without GROUP BY always returns one row, and coalesce makes its json non-null.
      return row!.json;
    },
    // The log lives in the order database, whose own readiness check covers it.
    state: async () => 'up',
    async close() {},
  };
}

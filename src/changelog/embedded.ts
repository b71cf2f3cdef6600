import type { Queryable } from '../db/client.js';
import type { OrderEvent } from '../events/envelope.js';
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
      return (await db.query(APPEND, [JSON.stringify(events)])).length;
    },
    async history(orderId) {
      const rows = await db.query<{ envelope: string }>(
        'SELECT envelope::text AS envelope FROM order_changes WHERE order_id = $1 ORDER BY sequence',
        [orderId],
      );
      return rows.map((r) => JSON.parse(r.envelope) as OrderEvent);
    },
    // The log lives in the order database, whose own readiness check covers it.
    state: async () => 'up',
    async close() {},
  };
}

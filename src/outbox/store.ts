import type { Queryable } from '../db/client.js';
import type { OrderEvent } from '../events/envelope.js';

/** How long a relay may hold claimed events while publishing before another relay may take them. */
const LEASE_SECONDS = 30;

export interface ClaimedEvent {
  position: number;
  event: OrderEvent;
}

// Skips rows another relay holds, and any event whose order still has an earlier unsent event:
// that is what keeps each order's events in sequence even with several relays.
const CLAIM = `
UPDATE outbox SET claimed_until = now() + make_interval(secs => ${LEASE_SECONDS})
WHERE position IN (
  SELECT o.position FROM outbox o
  WHERE o.sent_at IS NULL AND (o.claimed_until IS NULL OR o.claimed_until < now())
    AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.order_id = o.order_id AND e.sent_at IS NULL AND e.position < o.position)
  ORDER BY o.position LIMIT $1
  FOR UPDATE SKIP LOCKED)
RETURNING position, payload::text AS payload`;

export async function claimBatch(db: Queryable, limit: number): Promise<ClaimedEvent[]> {
  const rows = await db.query<{ position: number; payload: string }>(CLAIM, [limit], 'outbox_claim');
  return rows
    .sort((a, b) => a.position - b.position)
    .map((r) => ({ position: r.position, event: JSON.parse(r.payload) as OrderEvent }));
}

export async function markSent(db: Queryable, positions: readonly number[]): Promise<void> {
  await db.query('UPDATE outbox SET sent_at = now(), claimed_until = NULL WHERE position = ANY($1::bigint[])', [positions], 'outbox_mark_sent');
}

export async function releaseClaim(db: Queryable, positions: readonly number[]): Promise<void> {
  await db.query('UPDATE outbox SET claimed_until = NULL WHERE position = ANY($1::bigint[]) AND sent_at IS NULL', [positions]);
}

/** Events recorded after `eventId`, in the order they were written; undefined when that id is not kept. */
export async function eventsAfter(db: Queryable, eventId: string, limit: number): Promise<OrderEvent[] | undefined> {
  const [anchor] = await db.query<{ position: number }>('SELECT position FROM outbox WHERE event_id = $1::uuid', [eventId]);
  if (!anchor) return undefined;
  const rows = await db.query<{ payload: string }>(
    'SELECT payload::text AS payload FROM outbox WHERE position > $1 ORDER BY position LIMIT $2',
    [anchor.position, limit],
  );
  return rows.map((r) => JSON.parse(r.payload) as OrderEvent);
}

/** Drops shipped events older than the retention that WebSocket resume promises. */
export async function deleteShippedBefore(db: Queryable, retentionHours: number): Promise<number> {
  const rows = await db.query(
    'DELETE FROM outbox WHERE sent_at < now() - make_interval(hours => $1) RETURNING 1',
    [retentionHours],
  );
  return rows.length;
}

import type { Queryable } from '../db/client.js';
import type { OrderEvent } from '../events/envelope.js';

/** How long a relay may hold claimed events while publishing before another relay may take them. */
const LEASE_SECONDS = 15;

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

// The sorted subquery numbers the batch in publish order.
const MARK_SENT = `
UPDATE outbox o SET sent_at = now(), claimed_until = NULL, shipped_seq = s.seq
FROM (SELECT position, nextval('outbox_shipped_seq') AS seq
      FROM (SELECT unnest($1::bigint[]) AS position ORDER BY 1) AS sorted) AS s
WHERE o.position = s.position`;

export async function markSent(db: Queryable, positions: readonly number[]): Promise<void> {
  await db.query(MARK_SENT, [positions], 'outbox_mark_sent');
}

export async function releaseClaim(db: Queryable, positions: readonly number[]): Promise<void> {
  await db.query('UPDATE outbox SET claimed_until = NULL WHERE position = ANY($1::bigint[]) AND sent_at IS NULL', [positions]);
}

// What a client that saw `$1` has not seen: events shipped after it, then those not shipped yet.
// Ordered by shipping, not by position: a transaction that commits late gets an early position.
const EVENTS_AFTER = `
WITH anchor AS (SELECT position, shipped_seq FROM outbox WHERE event_id = $1::uuid)
SELECT o.payload::text AS payload FROM outbox o, anchor a
WHERE o.position <> a.position AND (
  o.shipped_seq > a.shipped_seq
  OR (a.shipped_seq IS NOT NULL AND o.shipped_seq IS NULL)
  OR (a.shipped_seq IS NULL AND o.shipped_seq IS NULL AND o.position > a.position))
ORDER BY o.shipped_seq NULLS LAST, o.position
LIMIT $2`;

/**
 * Events a client that saw `eventId` missed, in the order they went out; undefined when that id is
 * not kept any more, or when more than `limit` were missed (the client starts afresh rather than with a gap).
 */
export async function eventsAfter(db: Queryable, eventId: string, limit: number): Promise<OrderEvent[] | undefined> {
  const [anchor] = await db.query('SELECT 1 FROM outbox WHERE event_id = $1::uuid', [eventId]);
  if (!anchor) return undefined;
  const rows = await db.query<{ payload: string }>(EVENTS_AFTER, [eventId, limit + 1]);
  if (rows.length > limit) return undefined;
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

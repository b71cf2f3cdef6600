import type { Queryable } from '../db/client.js';
import type { OrderEvent } from '../events/envelope.js';

/**
 * How long a relay may hold claimed events while publishing before another relay may take them;
 * longer than the broker's confirm timeout, so a live relay never loses its claim.
 */
export const LEASE_SECONDS = 15;

export interface ClaimedEvent {
  position: number;
  event: OrderEvent;
}

// Skips rows another relay holds, and any event whose order still has an earlier unsent event:
// that is what keeps each order's events in sequence even with several relays.
const CLAIM = `
UPDATE outbox SET claimed_at = now()
WHERE position IN (
  SELECT o.position FROM outbox o
  WHERE o.sent_at IS NULL AND (o.claimed_at IS NULL OR o.claimed_at < now() - make_interval(secs => ${LEASE_SECONDS}))
    AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.order_id = o.order_id AND e.sent_at IS NULL AND e.position < o.position)
  ORDER BY o.position LIMIT $1
  FOR UPDATE SKIP LOCKED)
RETURNING position, payload::text AS payload`;

export async function claimBatch(db: Queryable, limit: number): Promise<ClaimedEvent[]> {
  // Not a prepared statement: a plan cached while the outbox was small turns quadratic once a
  // backlog builds up (seen at 50k rows: a claim ran for minutes). Planning it each time is cheap.
  const rows = await db.query<{ position: number; payload: string }>(CLAIM, [limit]);
  return rows
    .sort((a, b) => a.position - b.position)
    .map((r) => ({ position: r.position, event: JSON.parse(r.payload) as OrderEvent }));
}

export async function markSent(db: Queryable, positions: readonly number[]): Promise<void> {
  await db.query('UPDATE outbox SET sent_at = now() WHERE position = ANY($1::bigint[])', [positions]);
}

export async function releaseClaim(db: Queryable, positions: readonly number[]): Promise<void> {
  await db.query('UPDATE outbox SET claimed_at = NULL WHERE position = ANY($1::bigint[]) AND sent_at IS NULL', [positions]);
}

// Everything a client that last saw `$1` may have missed: events not confirmed yet, and events
// confirmed at or after `$1` was claimed (anything published after it was confirmed after that).
// A few it already had may come again; none it lacked is left out. Position order keeps each
// order's events in sequence.
const EVENTS_AFTER = `
WITH anchor AS (SELECT position, claimed_at FROM outbox WHERE event_id = $1::uuid)
SELECT o.payload::text AS payload FROM outbox o, anchor a
WHERE o.position <> a.position AND (o.sent_at IS NULL OR o.sent_at >= a.claimed_at)
ORDER BY o.position
LIMIT $2`;

/**
 * Events a client that saw `eventId` may have missed, each order's in sequence; undefined when
 * that id is not kept any more, or when more than `limit` were missed (the client starts afresh
 * rather than with a gap).
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

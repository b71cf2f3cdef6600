import type { Queryable } from '../db/client.js';
import type { EventType, OrderEvent } from '../events/envelope.js';
import { LOG_START, type LogPosition } from '../events/log-position.js';

export { LOG_START, type LogPosition };

/*
 * The outbox is a log, and its order is (xid, position): the writing transaction's id, then the
 * row's place among all writes. A row is readable only once its xid is below
 * the xmin of a fresh snapshot, i.e. once no transaction that could still commit has an xid at or
 * below it. That is what makes the order exact, with any number of writers and whatever commits late:
 *
 * - Once (x, p) is readable, every row that becomes readable later has xid >= the xmin it was read
 *   under > x. So a reader that has everything up to (x, p) never finds a new row behind it:
 *   a checkpoint (the relay) and a client's last event id (WebSocket resume) are both exact.
 * - An order's events are in sequence: event n+1 is written by a transaction that read event n's
 *   committed row (the version check), so its xid was assigned after n's transaction had one.
 * - Nothing here reads a clock: a crash, a re-read or a second relay cannot move a row's place.
 *
 * The cost: a long-running transaction anywhere on the server holds xmin back, and the log waits
 * for it (the order service's own transactions are single statements).
 */

/** An event as stored: its JSON text exactly as the database rendered it. */
export interface LoggedEvent {
  readonly at: LogPosition;
  readonly id: string;
  readonly type: EventType;
  readonly orderId: number;
  readonly json: string;
  /** The request that wrote it, when it came from one. */
  readonly requestId: string | undefined;
}

const READABLE = 'o.xid < pg_snapshot_xmin(pg_current_snapshot())';

// Not prepared: a plan cached while the outbox was small would be kept as a backlog builds up.
const READ_AFTER = `
SELECT o.xid::text AS xid, o.position, o.event_id::text AS id, o.type, o.order_id, o.payload::text AS payload, o.request_id FROM outbox o
WHERE (o.xid, o.position) > ($1::xid8, $2::bigint) AND ${READABLE}
ORDER BY o.xid, o.position
LIMIT $3`;

/** The next readable events after `after`, in log order. */
export async function readAfter(db: Queryable, after: LogPosition, limit: number): Promise<LoggedEvent[]> {
  type Row = { xid: string; position: number; id: string; type: EventType; order_id: number; payload: string; request_id: string | null };
  const rows = await db.query<Row>(READ_AFTER, [after.xid, after.position, limit]);
  return rows.map((r) => ({
    at: { xid: r.xid, position: Number(r.position) },
    id: r.id,
    type: r.type,
    orderId: Number(r.order_id),
    json: r.payload,
    requestId: r.request_id ?? undefined,
  }));
}

const CHECKPOINT = 'relay';

export async function readCheckpoint(db: Queryable): Promise<LogPosition> {
  const [row] = await db.query<{ xid: string; position: number }>(
    'SELECT xid::text AS xid, position FROM outbox_checkpoint WHERE name = $1',
    [CHECKPOINT],
  );
  return row ? { xid: row.xid, position: Number(row.position) } : LOG_START;
}

/** Moves the checkpoint forward, never back: a relay that lost its lease cannot undo its successor's progress. */
export async function saveCheckpoint(db: Queryable, at: LogPosition): Promise<void> {
  await db.query(
    `INSERT INTO outbox_checkpoint (name, xid, position) VALUES ($1, $2::xid8, $3)
     ON CONFLICT (name) DO UPDATE SET xid = EXCLUDED.xid, position = EXCLUDED.position
     WHERE (outbox_checkpoint.xid, outbox_checkpoint.position) < (EXCLUDED.xid, EXCLUDED.position)`,
    [CHECKPOINT, at.xid, at.position],
  );
}

const EVENTS_AFTER = `
SELECT o.payload::text AS payload FROM outbox o
WHERE (o.xid, o.position) > ($1::xid8, $2::bigint) AND ${READABLE}
ORDER BY o.xid, o.position
LIMIT $3`;

export interface Replay {
  /** Where the client's last event stands: anything live at or before it, it has already had. */
  readonly from: LogPosition;
  readonly events: OrderEvent[];
}

/**
 * Every event after `eventId` in log order, shipped or not yet: exactly what a client that saw it
 * lacks. Undefined when that id is not kept any more, or when more than `limit` were missed (the
 * client starts afresh rather than with a gap).
 */
export async function eventsAfter(db: Queryable, eventId: string, limit: number): Promise<Replay | undefined> {
  const [anchor] = await db.query<{ xid: string; position: number }>(
    'SELECT xid::text AS xid, position FROM outbox WHERE event_id = $1::uuid',
    [eventId],
  );
  if (!anchor) return undefined;
  const from = { xid: anchor.xid, position: Number(anchor.position) };
  const rows = await db.query<{ payload: string }>(EVENTS_AFTER, [from.xid, from.position, limit + 1]);
  if (rows.length > limit) return undefined;
  return { from, events: rows.map((r) => JSON.parse(r.payload) as OrderEvent) };
}

/** Events written but not shipped yet: the relay's backlog. */
export async function backlog(db: Queryable): Promise<number> {
  const [row] = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM outbox o, outbox_checkpoint c WHERE c.name = $1 AND (o.xid, o.position) > (c.xid, c.position)`,
    [CHECKPOINT],
  );
  return row?.n ?? 0;
}

/** Seconds since the first event after the checkpoint was written; 0 when nothing waits. */
export async function oldestUnsentAge(db: Queryable): Promise<number> {
  const [row] = await db.query<{ age: number }>(
    `SELECT extract(epoch FROM now() - o.created_at)::float8 AS age FROM outbox o, outbox_checkpoint c
     WHERE c.name = $1 AND (o.xid, o.position) > (c.xid, c.position) ORDER BY o.xid, o.position LIMIT 1`,
    [CHECKPOINT],
  );
  return Math.max(0, row?.age ?? 0);
}

/** Rows one retention statement removes: small enough to stay far inside the statement timeout. */
export const RETENTION_BATCH = 5000;

/** Drops shipped events older than the retention that WebSocket resume promises, a batch per statement. */
export async function deleteShippedBefore(db: Queryable, retentionHours: number, batch = RETENTION_BATCH): Promise<number> {
  let deleted = 0;
  for (;;) {
    const rows = await db.query(
      `DELETE FROM outbox WHERE position IN (
         SELECT o.position FROM outbox o, outbox_checkpoint c
         WHERE c.name = $2 AND (o.xid, o.position) <= (c.xid, c.position) AND o.created_at < now() - make_interval(hours => $1)
         ORDER BY o.xid, o.position LIMIT $3)
       RETURNING 1`,
      [retentionHours, CHECKPOINT, batch],
    );
    deleted += rows.length;
    if (rows.length < batch) return deleted;
  }
}

/** The last readable event: where a new reader of the live stream starts. */
export async function logHead(db: Queryable): Promise<{ at: LogPosition; id: string } | undefined> {
  const [row] = await db.query<{ xid: string; position: number; id: string }>(
    `SELECT o.xid::text AS xid, o.position, o.event_id::text AS id FROM outbox o
     WHERE ${READABLE} ORDER BY o.xid DESC, o.position DESC LIMIT 1`,
  );
  return row ? { at: { xid: row.xid, position: Number(row.position) }, id: row.id } : undefined;
}

/** Whether the outbox still holds the event (kept for OUTBOX_RETENTION_HOURS after it was shipped). */
export async function holdsEvent(db: Queryable, eventId: string): Promise<boolean> {
  return (await db.query('SELECT 1 FROM outbox WHERE event_id = $1::uuid', [eventId])).length > 0;
}

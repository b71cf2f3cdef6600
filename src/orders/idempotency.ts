import { createHash } from 'node:crypto';
import type { Queryable } from '../db/client.js';
import { ApiError } from '../errors.js';
import { STATEMENT } from './sql.js';

/**
 * How long a request holds its key before a retry may take it over. Every database call is
 * bounded (statement and pool timeouts of a few seconds), so a live request is done well within
 * it; the order is created only while the request still holds its lease (see holdsLease), so
 * even one that outlives it cannot create a second order.
 */
export const LEASE_SECONDS = 10;

/** `lease` identifies this holding of the key: the time it was claimed, as the database wrote it. */
export type Claim =
  | { kind: 'claimed'; lease: string }
  | { kind: 'replay'; status: number; body: string }
  | { kind: 'in_progress'; retryAfterSeconds: number };

/** Same body, same fingerprint, whatever the key order of the JSON it came in (keys sorted by UTF-16 code units). */
export function fingerprint(body: unknown): string {
  const canonical = JSON.stringify(body, (_key, value: unknown) =>
    value && typeof value === 'object' && !Array.isArray(value) ? sortedKeys(value as Record<string, unknown>) : value,
  );
  return createHash('sha256').update(canonical).digest('base64url');
}

function sortedKeys(object: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.keys(object)
      .sort()
      .map((key) => [key, object[key]]),
  );
}

/**
 * Claims `key` for this request, or says what to answer instead. The claim is its own committed
 * row, so concurrent retries see it at once and get 409 rather than waiting.
 */
export async function claimKey(db: Queryable, key: string, print: string): Promise<Claim> {
  const [inserted] = await db.query<{ lease: string }>(
    'INSERT INTO idempotency_keys (key, fingerprint) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING created_at::text AS lease',
    [key, print],
    STATEMENT.claimKey,
  );
  if (inserted) return { kind: 'claimed', lease: inserted.lease };
  const [row] = await db.query<{ fingerprint: string; response_status: number | null; body: string | null; remaining: number }>(
    `SELECT fingerprint, response_status, response_body::text AS body,
       ceil(extract(epoch FROM created_at + make_interval(secs => $2) - now()))::int AS remaining
     FROM idempotency_keys WHERE key = $1`,
    [key, LEASE_SECONDS],
    STATEMENT.readKey,
  );
  if (!row) return claimKey(db, key, print); // expired and removed in between
  if (row.fingerprint !== print) {
    throw new ApiError(
      'idempotency_key_reused',
      'This Idempotency-Key was first used with a different body; use a new key for a new request.',
    );
  }
  if (row.response_status !== null && row.body !== null) return { kind: 'replay', status: row.response_status, body: row.body };
  if (row.remaining <= 0) {
    const [taken] = await db.query<{ lease: string }>(
      `UPDATE idempotency_keys SET created_at = now() WHERE key = $1 AND response_status IS NULL
       AND created_at <= now() - make_interval(secs => $2) RETURNING created_at::text AS lease`,
      [key, LEASE_SECONDS],
    );
    // Otherwise another retry took it over, or the first request finished: look again.
    return taken ? { kind: 'claimed', lease: taken.lease } : claimKey(db, key, print);
  }
  return { kind: 'in_progress', retryAfterSeconds: Math.max(1, row.remaining) };
}

/**
 * Locks the key's row for the transaction if this request still holds its lease. A retry that
 * took the lease over changed `created_at`; one that tries now waits for this transaction.
 */
export async function holdsLease(tx: Queryable, key: string, lease: string): Promise<boolean> {
  const rows = await tx.query(
    'SELECT 1 FROM idempotency_keys WHERE key = $1 AND created_at = $2::timestamptz AND response_status IS NULL FOR UPDATE',
    [key, lease],
    STATEMENT.holdLease,
  );
  return rows.length > 0;
}

/** Remembers a final answer other than 201 (which the create statement stores itself). */
export async function rememberResponse(db: Queryable, key: string, status: number, body: string): Promise<void> {
  await db.query('UPDATE idempotency_keys SET response_status = $2, response_body = $3::json WHERE key = $1', [key, status, body]);
}

/** Frees a key whose request failed unexpectedly, so that a retry runs again; a lease passed on to a retry stays. */
export async function releaseKey(db: Queryable, key: string, lease: string): Promise<void> {
  await db.query('DELETE FROM idempotency_keys WHERE key = $1 AND created_at = $2::timestamptz AND response_status IS NULL', [key, lease]);
}

/**
 * Frees every key still in flight. Only for a database one process owns (the embedded one, its
 * folder locked), at start-up: a request in flight then belonged to a process that died.
 */
export async function releaseInFlightKeys(db: Queryable): Promise<number> {
  return (await db.query('DELETE FROM idempotency_keys WHERE response_status IS NULL RETURNING 1')).length;
}

/** Forgets keys past their TTL, a batch per statement so that each stays inside the statement timeout. */
export async function deleteExpiredKeys(db: Queryable, ttlHours: number, batch = 5000): Promise<number> {
  let deleted = 0;
  for (;;) {
    const rows = await db.query(
      `DELETE FROM idempotency_keys WHERE key IN (
         SELECT key FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1) LIMIT $2)
       RETURNING 1`,
      [ttlHours, batch],
    );
    deleted += rows.length;
    if (rows.length < batch) return deleted;
  }
}

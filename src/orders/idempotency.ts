import { createHash } from 'node:crypto';
import type { Queryable } from '../db/client.js';
import { ApiError } from '../errors.js';

/** A first request that died mid-way holds its key this long; then a retry may take it over. */
const LEASE_SECONDS = 30;

export type Claim = { kind: 'claimed' } | { kind: 'replay'; status: number; body: string };

/** Same body, same fingerprint, whatever the key order of the JSON it came in. */
export function fingerprint(body: unknown): string {
  const canonical = JSON.stringify(body, (_key, value: unknown) =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : 1)))
      : value,
  );
  return createHash('sha256').update(canonical).digest('base64url');
}

/**
 * Claims `key` for this request, or says what to answer instead. The claim is its own committed
 * row, so concurrent retries see it at once and get 409 rather than waiting.
 */
export async function claimKey(db: Queryable, key: string, print: string): Promise<Claim> {
  const inserted = await db.query(
    'INSERT INTO idempotency_keys (key, fingerprint) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING key',
    [key, print],
    'claim_idempotency_key',
  );
  if (inserted.length > 0) return { kind: 'claimed' };
  const [row] = await db.query<{ fingerprint: string; response_status: number | null; body: string | null; stale: boolean }>(
    `SELECT fingerprint, response_status, response_body::text AS body, created_at < now() - make_interval(secs => $2) AS stale
     FROM idempotency_keys WHERE key = $1`,
    [key, LEASE_SECONDS],
    'read_idempotency_key',
  );
  if (!row) return claimKey(db, key, print); // expired and removed in between
  if (row.fingerprint !== print) {
    throw new ApiError('idempotency_key_reused', 'This Idempotency-Key was first used with a different body; use a new key for a new request.');
  }
  if (row.response_status !== null && row.body !== null) return { kind: 'replay', status: row.response_status, body: row.body };
  if (row.stale) {
    const taken = await db.query(
      `UPDATE idempotency_keys SET created_at = now() WHERE key = $1 AND response_status IS NULL
       AND created_at < now() - make_interval(secs => $2) RETURNING key`,
      [key, LEASE_SECONDS],
    );
    if (taken.length > 0) return { kind: 'claimed' };
  }
  throw new ApiError('idempotency_request_in_progress', 'A request with this Idempotency-Key is still running; retry after it finishes.');
}

/** Remembers a final answer other than 201 (which the create statement stores itself). */
export async function rememberResponse(db: Queryable, key: string, status: number, body: string): Promise<void> {
  await db.query('UPDATE idempotency_keys SET response_status = $2, response_body = $3::json WHERE key = $1', [key, status, body]);
}

/** Frees a key whose request failed unexpectedly, so that a retry runs again. */
export async function releaseKey(db: Queryable, key: string): Promise<void> {
  await db.query('DELETE FROM idempotency_keys WHERE key = $1 AND response_status IS NULL', [key]);
}

export async function deleteExpiredKeys(db: Queryable, ttlHours: number): Promise<number> {
  const rows = await db.query('DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1) RETURNING 1', [ttlHours]);
  return rows.length;
}

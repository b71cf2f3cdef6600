import type { BenchDatabase } from './infra.js';

export type TableWrites = Record<string, { inserted: number; updated: number; hotUpdated: number; deleted: number }>;

/** Rows written per table so far (PostgreSQL's statistics; they lag by up to a second). */
export async function tableWrites(db: BenchDatabase): Promise<TableWrites> {
  const rows = await db.scalar<{ t: string; i: number; u: number; h: number; d: number }[] | null>(
    `SELECT json_agg(json_build_object('t', relname, 'i', n_tup_ins, 'u', n_tup_upd, 'h', n_tup_hot_upd, 'd', n_tup_del)) FROM pg_stat_user_tables`,
  );
  return Object.fromEntries((rows ?? []).map((r) => [r.t, { inserted: r.i, updated: r.u, hotUpdated: r.h, deleted: r.d }]));
}

/**
 * Row writes per order between two snapshots, for the tables that changed. Orders are counted from the
 * same statistics, so that a lag in them shifts numerator and denominator alike.
 */
export function writesPerOrder(before: TableWrites, after: TableWrites): Record<string, string> {
  const orders = (after.orders?.inserted ?? 0) - (before.orders?.inserted ?? 0);
  if (orders <= 0) return {};
  const out: Record<string, string> = {};
  for (const [table, a] of Object.entries(after)) {
    const b = before[table] ?? { inserted: 0, updated: 0, hotUpdated: 0, deleted: 0 };
    const per = (n: number) => (n / orders).toFixed(2);
    const parts = [
      a.inserted - b.inserted ? `${per(a.inserted - b.inserted)} inserted` : '',
      a.updated - b.updated ? `${per(a.updated - b.updated)} updated (${per(a.hotUpdated - b.hotUpdated)} HOT)` : '',
      a.deleted - b.deleted ? `${per(a.deleted - b.deleted)} deleted` : '',
    ].filter(Boolean);
    if (parts.length) out[table] = parts.join(', ');
  }
  return out;
}

/**
 * Ends any backend still working on `db` once its server has stopped. A healthy server leaves none; a
 * statement left running (a runaway query) would otherwise take CPU from the next measurement.
 */
export async function quiesce(admin: BenchDatabase, db: BenchDatabase): Promise<{ ended: number; queries: string[] }> {
  const rows = await admin.scalar<{ q: string }[] | null>(
    `SELECT json_agg(json_build_object('q', left(query, 120) || ' (running ' || round(extract(epoch FROM now() - query_start)) || ' s)'))
     FROM (SELECT query, query_start, pg_terminate_backend(pid) FROM pg_stat_activity
           WHERE datname = $1 AND pid <> pg_backend_pid() AND state <> 'idle') AS ended`,
    [db.name],
  );
  return { ended: rows?.length ?? 0, queries: (rows ?? []).map((r) => r.q) };
}

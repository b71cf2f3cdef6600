import type { Episodes } from '../episodes.js';
import type { Queryable } from './client.js';
import { databaseFaultOf, loggableError, type DatabaseFault } from './faults.js';

/** What `/readyz` says of the database: `up`, a state between up and down, or `down: why`. */
export type DatabaseState = 'up' | 'read_only' | 'disk_full' | `down: ${string}`;

export interface DatabaseHealth {
  /** Classifies a failed statement, logs it once per episode and remembers states a probe cannot see; returns the fault. */
  noteFailure(error: unknown): DatabaseFault | undefined;
  /** Probes the database: reachable, and does it take writes? */
  check(): Promise<DatabaseState>;
}

const FAULT_MESSAGES: Record<DatabaseFault, string> = {
  unreachable: 'the database is not reachable',
  read_only: 'the database is read-only (a standby, or a primary demoted by a failover): writes are refused',
  disk_full: "the database's storage is full: writes are refused",
  overloaded: 'the database is out of connections or memory',
  conflict: 'transactions conflict (serialization failure or deadlock)',
};

/** A full disk shows only when a write fails; the state is kept this long after the last such failure. */
export const DISK_FULL_HOLD_MS = 10_000;

export function createDatabaseHealth(db: Queryable, episodes: Episodes, now: () => number = Date.now): DatabaseHealth {
  let diskFullAt = -Infinity;
  return {
    noteFailure(error) {
      const fault = databaseFaultOf(error);
      if (fault === undefined) return undefined;
      if (fault === 'disk_full') diskFullAt = now();
      episodes.failed(`database ${fault}`, { error: loggableError(error) }, FAULT_MESSAGES[fault], fault === 'conflict' ? 'warn' : 'error');
      return fault;
    },
    async check() {
      let readOnly: string | undefined;
      try {
        // On for a standby in recovery and for default_transaction_read_only, as a demoted primary has.
        [{ read_only: readOnly } = { read_only: undefined }] = await db.query<{ read_only: string }>(
          "SELECT current_setting('transaction_read_only') AS read_only",
        );
      } catch (error) {
        return `down: ${loggableError(error).message}`;
      }
      if (readOnly === 'on') return 'read_only';
      return now() - diskFullAt < DISK_FULL_HOLD_MS ? 'disk_full' : 'up';
    },
  };
}

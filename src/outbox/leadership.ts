import type { Database, Session } from '../db/client.js';
import type { Logger } from '../logger.js';
import { DatabaseFailure, onDatabase } from './failures.js';
import type { LogPosition } from './store.js';

/** Any constant will do; every instance must agree on it (the migrator uses 7_340_112). */
const RELAY_LOCK = 7_340_113;
/** Channel on which a standby process tells the active relay that it wrote events. */
export const WAKE_CHANNEL = 'order_outbox';

// Whether the active relay's lock is taken, asked on any pooled connection: standbys ask each sweep.
const LOCK_HELD = `SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_database d ON d.oid = l.database
  WHERE l.locktype = 'advisory' AND l.classid = 0 AND l.objid = $1 AND l.objsubid = 1 AND l.granted
    AND d.datname = current_database()) AS held`;

export interface LeadershipOptions {
  readonly db: Database;
  readonly logger: Pick<Logger, 'info'>;
  /** Another process told this one, the active relay, that it wrote events. */
  readonly onWake: () => void;
  /** Readies a session that just took the lock and returns the checkpoint it ships from; a failure gives the lock back. */
  readonly onTakeOver: (session: Session) => Promise<LogPosition>;
  /** The lead session was let go: the next pass tries to take the lead again. */
  readonly onDropped: () => void;
  /** True once the relay is stopping: no notice is sent again. */
  readonly stopping: () => boolean;
}

/**
 * Which process ships the log: the one whose session holds an advisory lock. The others stand by, tell it
 * (NOTIFY) when they write events, and take over within a sweep when its connection ends.
 */
export interface Leadership {
  /** The session this process leads with: the one it holds, or a new one if the lock is free; undefined on standby. */
  lead(): Promise<Session | undefined>;
  leading(): boolean;
  /** Lets the lead go (its session failed): the session is released, and the lock with it. Nothing if it leads no more. */
  drop(session: Session, error?: Error): void;
  /** Standby: tells the active relay, in whichever process, that events were written. */
  notifyLeader(): void;
  /** Waits for the notice in flight, then lets the lead go. */
  close(): Promise<void>;
}

export function createLeadership(options: LeadershipOptions): Leadership {
  const { db, logger, onWake, onTakeOver, onDropped, stopping } = options;
  let session: Session | undefined;
  let notifying: Promise<void> | undefined;
  let notifyAgain = false;

  async function lead(): Promise<Session | undefined> {
    if (session) return session;
    if (db.kind === 'postgres') {
      const [lock] = await onDatabase(db.query<{ held: boolean }>(LOCK_HELD, [RELAY_LOCK]));
      if (lock?.held) return undefined;
    }
    const candidate = await onDatabase(db.session());
    let checkpoint: LogPosition;
    try {
      const [row] = await candidate.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [RELAY_LOCK]);
      if (!row?.locked) {
        candidate.release();
        return undefined;
      }
      await candidate.listen(WAKE_CHANNEL, onWake);
      checkpoint = await onTakeOver(candidate);
    } catch (error) {
      candidate.release(error as Error);
      throw new DatabaseFailure(error);
    }
    session = candidate;
    void candidate.lost.then(() => drop(candidate));
    logger.info({ checkpoint }, 'outbox relay active');
    return candidate;
  }

  function drop(lost: Session, error?: Error): void {
    if (session !== lost) return;
    session = undefined;
    lost.release(error);
    onDropped();
  }

  // Standby: one NOTIFY at a time, and at most one more for whatever was written meanwhile.
  function notifyLeader(): void {
    if (notifying) {
      notifyAgain = true;
      return;
    }
    notifying = db
      .query('SELECT pg_notify($1, NULL)', [WAKE_CHANNEL])
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => {
        notifying = undefined;
        if (notifyAgain && !stopping()) {
          notifyAgain = false;
          notifyLeader();
        }
      });
  }

  return {
    lead,
    leading: () => session !== undefined,
    drop,
    notifyLeader,
    async close() {
      await notifying;
      if (session) drop(session);
    },
  };
}

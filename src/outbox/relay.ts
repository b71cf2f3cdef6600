import type { Database, Session } from '../db/client.js';
import type { Broker } from '../messaging/broker.js';
import { comparePositions, formatPosition } from '../events/log-position.js';
import { readAfter, readCheckpoint, saveCheckpoint, type LogPosition } from './store.js';

export interface RelayLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface RelayOptions {
  db: Database;
  broker: Broker;
  logger: RelayLogger;
  /** Sweep for events written by other processes, and try to take over from a relay that died. */
  sweepMs: number;
  batchSize?: number;
  /** Batches published and awaiting their confirms at once. */
  maxInFlight?: number;
  /** Longest wait between attempts while the broker or the database fails (default 5 s). */
  maxBackoffMs?: number;
  /** How long stop() waits for batches in flight to be confirmed; the rest go out again later (default 3 s). */
  stopGraceMs?: number;
  metrics?: RelayMetrics;
  /** Told when the database's checkpoint is behind one this relay saved: it lost committed writes (a failover). */
  onRewind?: () => void;
}

/** What the relay reports as it works, for the process's metrics. */
export interface RelayMetrics {
  /** The broker confirmed a batch of `events`, `seconds` after it was handed to it. */
  confirmed(events: number, seconds: number): void;
  /** A pass failed and will be retried after a back-off. */
  failed(dependency: 'broker' | 'database'): void;
}

export interface OutboxRelay {
  /** Events were written: ship them soon (or tell the active relay, in a process that is not it). */
  wake(): void;
  /** True while this process's relay is the one shipping the log. */
  isActive(): boolean;
  stop(): Promise<void>;
}

/** Any constant will do; every instance must agree on it (the migrator uses 7_340_112). */
const RELAY_LOCK = 7_340_113;
/** Channel on which a standby process tells the active relay that it wrote events. */
export const WAKE_CHANNEL = 'order_outbox';

class BrokerUnavailable extends Error {
  override name = 'BrokerUnavailable';
}

/** A failure of the relay's own database work, which ends its session (and so its lock). */
class DatabaseFailure extends Error {
  override name = 'DatabaseFailure';
  constructor(override readonly cause: unknown) {
    super(`outbox database work failed: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

async function onDatabase<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    throw new DatabaseFailure(error);
  }
}

// Whether the active relay's lock is taken, asked on any pooled connection: standbys ask each sweep.
const LOCK_HELD = `SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_database d ON d.oid = l.database
  WHERE l.locktype = 'advisory' AND l.classid = 0 AND l.objid = $1 AND l.objsubid = 1 AND l.granted AND d.datname = current_database()) AS held`;

interface InFlight {
  readonly at: LogPosition;
  readonly confirmed: Promise<void>;
  settled: boolean;
}

/**
 * Ships the outbox in log order from a checkpoint: read the next batch after it, publish, and once
 * the broker confirmed a prefix of batches, move the checkpoint past it (one write per batch, none
 * per event). One relay is active per database, the one holding a session advisory lock; the
 * others stand by and take over within a sweep when its connection ends. A crash after a publish
 * and before the checkpoint ships that batch again, which the idempotent consumers absorb.
 */
export function startOutboxRelay(options: RelayOptions): OutboxRelay {
  const { db, broker, logger, sweepMs, metrics } = options;
  const batchSize = options.batchSize ?? 500;
  const maxInFlight = options.maxInFlight ?? 4;
  const maxBackoffMs = options.maxBackoffMs ?? 5000;
  const stopGraceMs = options.stopGraceMs ?? 3000;

  let session: Session | undefined;
  let checkpoint: LogPosition | undefined;
  /** The furthest checkpoint this process saw committed, and the highest order id it shipped: what a rewind would lose. */
  let committed: LogPosition | undefined;
  let highestOrderId = 0;
  let stopped = false;
  let wanted = true;
  /** Ends the idle wait: new events, a sweep, the broker coming back, stop(). */
  let resume: (() => void) | undefined;
  /** Ends a back-off early: only the broker coming back, or stop(). */
  let retryNow: (() => void) | undefined;
  let failures = 0;
  /** What is wrong right now, so each change is logged once rather than each attempt. */
  let trouble: string | undefined;
  let notifying: Promise<void> | undefined;
  let notifyAgain = false;

  const signal = (): void => {
    resume?.();
    resume = undefined;
  };
  const interrupt = (): void => {
    signal();
    retryNow?.();
    retryNow = undefined;
  };

  function wake(): void {
    if (stopped) return;
    if (session || db.kind === 'pglite') {
      wanted = true;
      signal();
    } else {
      tellActiveRelay();
    }
  }

  // Standby: one NOTIFY at a time, and at most one more for whatever was written meanwhile.
  function tellActiveRelay(): void {
    if (notifying) {
      notifyAgain = true;
      return;
    }
    notifying = db
      .query('SELECT pg_notify($1, NULL)', [WAKE_CHANNEL])
      .then(() => undefined, () => undefined)
      .finally(() => {
        notifying = undefined;
        if (notifyAgain && !stopped) {
          notifyAgain = false;
          tellActiveRelay();
        }
      });
  }

  broker.onStateChange((state) => {
    if (state === 'up') interrupt();
  });

  async function lead(): Promise<Session | undefined> {
    if (session) return session;
    if (db.kind === 'postgres') {
      const [lock] = await onDatabase(db.query<{ held: boolean }>(LOCK_HELD, [RELAY_LOCK]));
      if (lock?.held) return undefined;
    }
    const candidate = await onDatabase(db.session());
    try {
      const [row] = await candidate.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [RELAY_LOCK]);
      if (!row?.locked) {
        candidate.release();
        return undefined;
      }
      await candidate.listen(WAKE_CHANNEL, wake);
      checkpoint = await readCheckpoint(candidate);
      if (committed && comparePositions(checkpoint, committed) < 0) await rewound(candidate, checkpoint, committed);
    } catch (error) {
      candidate.release(error as Error);
      throw new DatabaseFailure(error);
    }
    session = candidate;
    void candidate.lost.then(() => dropSession(candidate));
    logger.info({ checkpoint }, 'outbox relay active');
    return candidate;
  }

  /**
   * The database lost transactions it had committed (an asynchronous standby promoted without them). Their order ids
   * would be handed out again; the sequence is moved past every id this relay shipped, so later orders get new ones.
   */
  async function rewound(active: Session, found: LogPosition, saved: LogPosition): Promise<void> {
    logger.error(
      { checkpoint: formatPosition(found), committed_checkpoint: formatPosition(saved), highest_order_id_shipped: highestOrderId },
      'event log rewound: the database lost committed events this relay had shipped (a failover to a standby that lacked them)',
    );
    committed = found;
    options.onRewind?.();
    await active.query(
      `SELECT setval(seq, greatest($1::bigint, coalesce(pg_sequence_last_value(seq), 1))) FROM (SELECT pg_get_serial_sequence('orders', 'id')::regclass AS seq) s`,
      [highestOrderId],
    );
  }

  function dropSession(lost: Session, error?: Error): void {
    if (session !== lost) return;
    session = undefined;
    lost.release(error);
    wanted = true;
  }

  /** Ships everything readable; returns when caught up. Throws on the first failure, with nothing lost. */
  async function drain(active: Session): Promise<void> {
    let cursor = checkpoint!;
    let more = true;
    const window: InFlight[] = [];
    try {
      for (;;) {
        while (!stopped && window.length < maxInFlight && (more || wanted)) {
          wanted = false;
          const batch = await onDatabase(readAfter(active, cursor, batchSize));
          more = batch.length === batchSize;
          if (batch.length === 0) break;
          // Checked per batch: a broker that is away fails at once, nothing is read in vain.
          if (broker.state() !== 'up') throw new BrokerUnavailable(`RabbitMQ is ${broker.state()}`);
          cursor = batch.at(-1)!.at;
          for (const b of batch) highestOrderId = Math.max(highestOrderId, b.orderId);
          const started = performance.now();
          const confirmed = broker.publish(
            batch.map((b) => ({ id: b.id, type: b.type, body: Buffer.from(b.json), logPosition: formatPosition(b.at), requestId: b.requestId })),
          );
          const entry: InFlight = { at: cursor, confirmed, settled: false };
          entry.confirmed.then(() => {
            entry.settled = true;
            metrics?.confirmed(batch.length, (performance.now() - started) / 1000);
          }, () => undefined);
          window.push(entry);
        }
        let head = window.shift();
        if (!head) return;
        await head.confirmed;
        // Batches confirm in publish order on one channel; skip to the last one already confirmed.
        while (window[0]?.settled) head = window.shift()!;
        await onDatabase(saveCheckpoint(active, head.at));
        checkpoint = head.at;
        committed = head.at;
      }
    } finally /* Stryker disable next-line BlockStatement: each entry's confirm already has a rejection handler (the .then above), so emptying this leaves none unhandled */ {
      // Whatever is still in flight is shipped again from the checkpoint next time.
      for (const entry of window) entry.confirmed.catch(() => undefined);
    }
  }

  async function pass(): Promise<void> {
    // A standby asks whether the lead is free again at the next sweep (or wake, or the broker coming back),
    // not at once: cleared before asking, so that a sweep arriving meanwhile is not lost.
    // Stryker disable next-line ConditionalExpression: clearing it for an active relay too changes nothing: drain reads at least once whatever it says, and clears it before each read
    if (!session) wanted = false;
    const active = await lead();
    if (!active) return;
    try {
      await drain(active);
    } catch (error) {
      if (error instanceof DatabaseFailure) dropSession(active, error);
      throw error;
    }
  }

  function recovered(): void {
    failures = 0;
    if (trouble === undefined) return;
    trouble = undefined;
    logger.info({}, 'outbox relay shipping again');
  }

  function failed(error: unknown): number {
    failures++;
    const kind = error instanceof DatabaseFailure ? 'database' : 'broker';
    metrics?.failed(kind);
    if (trouble !== kind) {
      trouble = kind;
      logger.warn({ err: error }, `outbox relay cannot reach the ${kind}; events wait in the outbox and go out when it recovers`);
    }
    return Math.min(maxBackoffMs, 50 * 2 ** Math.min(failures, 10));
  }

  async function run(): Promise<void> {
    while (!stopped) {
      if (!wanted) await new Promise<void>((resolve) => (resume = resolve));
      if (stopped) break;
      try {
        await pass();
        recovered();
      } catch (error) {
        if (stopped) break;
        const delay = failed(error);
        // Only the back-off, the broker coming back or stop() end the wait: new events do not.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            retryNow = undefined;
            resolve();
          }, delay);
          retryNow = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wanted = true;
      }
    }
  }

  const sweep = setInterval(() => {
    // Stryker disable next-line ConditionalExpression: stop() clears this interval in the same synchronous step that sets stopped, so it never runs once stopped
    if (stopped) return;
    wanted = true;
    signal();
  }, sweepMs);
  sweep.unref();
  const running = run();

  return {
    wake,
    isActive: () => session !== undefined,
    async stop() {
      stopped = true;
      clearInterval(sweep);
      interrupt();
      let grace: NodeJS.Timeout | undefined;
      await Promise.race([running, new Promise((resolve) => (grace = setTimeout(resolve, stopGraceMs)))]);
      clearTimeout(grace);
      await notifying;
      if (session) dropSession(session);
    },
  };
}

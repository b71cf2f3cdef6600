/** The targets each row is held to (issue "speed round two"): ratios against the limit measured in the same run. */
export const TARGETS = {
  /** POST /orders/ with the whole pipeline, against pgbench running the same statement. */
  postRatio: 0.6,
  /** GET /orders/{id}, against pgbench's primary-key read. */
  getRatio: 0.4,
  /** Embedded POST /orders/, against the bare PGlite loop. */
  embeddedRatio: 0.8,
  /** Start to ready, embedded, against node opening PGlite alone (at most this many times as long). */
  startupRatio: 1.2,
  /** Idle WebSocket client memory, absolute. */
  idleClientKB: 15,
  /** The order rate sweep: the highest rate at which 100 clients' p99 stays within this. */
  sweepP99Ms: 50,
} as const;

import { setTimeout as sleep } from 'node:timers/promises';
import type { OrderEvent } from '../events/envelope.js';
import { comparePositions, formatPosition, LOG_START, parsePosition, type LogPosition } from '../events/log-position.js';
import type { Logger } from '../logger.js';
import type { Delivery } from '../messaging/broker.js';
import type { NotificationHub } from './hub.js';

/** Close code: the notifier missed events it cannot send; reconnect with `?after=<the last event id you received>`. */
export const CLOSE_RESUME = 4010;
/** Close code: the event log was rewound (a failover lost events); reload state and reconnect without `after`. */
export const CLOSE_RELOAD = 4011;

/** The place of a feed that subscribed to an empty log: before the first event, which no event id names. */
const EMPTY_LOG = '';

/** An event as the log holds it, with its place. */
export interface LogEntry {
  readonly at: LogPosition;
  readonly id: string;
  readonly json: string;
  readonly requestId?: string | undefined;
}

/** What the feed reads of the outbox log. */
export interface LogReader {
  /** Readable events after `at`, in log order. */
  after(at: LogPosition, limit: number): Promise<LogEntry[]>;
  /** The last readable event, or undefined while the log is empty. */
  head(): Promise<{ at: LogPosition; id: string } | undefined>;
  /** Whether the log still holds the event. */
  holds(eventId: string): Promise<boolean>;
}

export interface FeedOptions {
  readonly hub: NotificationHub;
  readonly log: LogReader;
  readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** Past this many missed events the gap is not filled: clients are closed with 4010 and resume (default 10,000). */
  readonly gapLimit?: number;
  readonly pageSize?: number;
  /** Reads of the log are tried this many times, the waits doubling from retryDelayMs (defaults 4, 250 ms). */
  readonly attempts?: number;
  readonly retryDelayMs?: number;
  /** Told when the log turns out to have been rewound under the notifier. */
  readonly onRewind?: () => void;
}

export interface FeedStats {
  /** Subscriptions after which the log was read for missed events. */
  readonly gapsChecked: number;
  /** Events the broker connection lost that were sent from the log instead. */
  readonly eventsFilled: number;
  /** Gaps too large or unreadable: clients were closed with 4010. */
  readonly gapsAbandoned: number;
  readonly rewinds: number;
}

/** The notifier's side of the broker: live deliveries, with any gap its queue had filled from the log. */
export interface NotifierFeed {
  deliver(delivery: Delivery): void;
  /** The notifier's queue is bound (at start and after each reconnect): read what was missed meanwhile. */
  subscribed(): void;
  unsubscribed(): void;
  /** Subscribed and caught up: only then may clients connect, or they would miss what the queue did not exist for. */
  ready(): boolean;
  /**
   * Resolves true once ready, or false if not within `ms`: a client connecting as the queue is bound waits a
   * moment rather than retrying.
   */
  whenReady(ms: number): Promise<boolean>;
  stats(): FeedStats;
}

/**
 * Continuity from the log, not from the connection. The notifier's queue is its own and vanishes with its
 * connection, so what was shipped while it was gone never arrives: after each (re)subscription the feed reads
 * the outbox after the last position it broadcast and sends that, dropping repeats by event id. Live deliveries
 * are held meanwhile, so each order's events still go out in sequence.
 *
 * The log can also move back under it: a promoted asynchronous standby lacks the last transactions, and reuses
 * their transaction ids. A delivery at or before the last position broadcast, with an id never seen, is the sign;
 * the feed then asks whether the log still holds the last event it broadcast. If not, it forgets everything,
 * says so loudly, and closes every client with 4011 so that each reloads.
 */
export function createNotifierFeed(options: FeedOptions): NotifierFeed {
  const { hub, log, logger } = options;
  const gapLimit = options.gapLimit ?? 10_000;
  const pageSize = options.pageSize ?? 1000;
  const attempts = options.attempts ?? 4;
  const retryDelayMs = options.retryDelayMs ?? 250;
  const stats = { gapsChecked: 0, eventsFilled: 0, gapsAbandoned: 0, rewinds: 0 };

  let last: { at: LogPosition; id: string } | undefined;
  /** A later subscription that finds no place has lost it. */
  let subscribedBefore = false;
  let subscription = 0;
  let subscribedNow = false;
  let caughtUpWith = -1;
  // Work on the log runs one job at a time; deliveries that arrive meanwhile wait here, in order.
  const jobs: (() => Promise<void>)[] = [];
  const held: Delivery[] = [];
  let busy = false;
  const waiters = new Set<() => void>();
  const isReady = () => subscribedNow && caughtUpWith === subscription;

  function advance(at: LogPosition | undefined, id: string): void {
    if (at && (!last || comparePositions(at, last.at) > 0)) last = { at, id };
  }

  function send(
    event: OrderEvent,
    body: Buffer,
    logPosition: string | undefined,
    requestId: string | undefined,
    source: 'live' | 'log',
  ): void {
    const outcome = hub.broadcast(event, body, logPosition);
    advance(parsePosition(logPosition), event.id);
    // With the request that wrote the event: an order can be followed from its POST to its frames.
    logger.info(
      { event_id: event.id, order_id: event.order_id, sequence: event.sequence, request_id: requestId, outcome, source },
      'notification broadcast',
    );
  }

  function sendLive(delivery: Delivery): void {
    send(delivery.event, delivery.body, delivery.logPosition, delivery.requestId, 'live');
    delivery.ack();
  }

  /** At or before what was broadcast, yet never seen: either a log that moved back, or nothing (checked). */
  function suspicious(delivery: Delivery): boolean {
    const at = parsePosition(delivery.logPosition);
    return at !== undefined && last !== undefined && comparePositions(at, last.at) <= 0 && !hub.knows(delivery.event.id);
  }

  function enqueue(job: () => Promise<void>): void {
    jobs.push(job);
    if (!busy) void runJobs();
  }

  async function runJobs(): Promise<void> {
    busy = true;
    try {
      while (jobs.length > 0) {
        await jobs.shift()!();
        while (jobs.length === 0 && held.length > 0) {
          const delivery = held.shift()!;
          if (suspicious(delivery)) jobs.push(() => verifyThenSend(delivery));
          else sendLive(delivery);
        }
      }
    } finally {
      busy = false;
    }
  }

  /** Reads the log with a few retries; undefined when it cannot be read now. */
  async function read<T>(what: string, work: () => Promise<T>): Promise<T | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await work();
      } catch (err) {
        if (attempt >= attempts) {
          logger.warn({ err, attempts }, `notifier could not read the event log (${what})`);
          return undefined;
        }
        await sleep(retryDelayMs * 2 ** (attempt - 1));
      }
    }
  }

  function rewound(evidence: object): void {
    stats.rewinds += 1;
    logger.error(
      { ...evidence, last_position: last && formatPosition(last.at), last_event_id: last?.id },
      'event log rewound: the database no longer holds events this notifier broadcast ' +
        '(a failover to a standby that lacked them); clients are told to reload (4011)',
    );
    last = undefined;
    hub.reset(CLOSE_RELOAD, 'the event log was rewound; reload and reconnect without after');
    options.onRewind?.();
  }

  /** Its place again, from the new log, so that a queue lost before the next delivery still knows where to go on from. */
  async function placeAtHead(): Promise<void> {
    const found = await read('its head', async () => ({ head: await log.head() }));
    if (found) last = found.head ?? { at: LOG_START, id: EMPTY_LOG };
  }

  async function verifyThenSend(delivery: Delivery): Promise<void> {
    const lastId = last?.id;
    if (lastId) {
      const kept = await read('is the last event still there', () => log.holds(lastId));
      if (kept === false) {
        rewound({ event_id: delivery.event.id, position: delivery.logPosition });
        await placeAtHead();
      }
    }
    sendLive(delivery);
  }

  async function fill(generation: number): Promise<void> {
    stats.gapsChecked += 1;
    if (last === undefined) {
      // Not the first subscription: what was shipped since the place was lost is unknown, so clients resume on their own.
      if (subscribedBefore) abandon('the last place broadcast is not known');
      // The log so far is for ?after= replays, not for this feed.
      await placeAtHead();
    } else if (last.id === EMPTY_LOG) {
      await sendMissed();
    } else {
      const lastId = last.id;
      const kept = await read('is the last event still there', () => log.holds(lastId));
      if (kept === false) {
        rewound({ on: 'resubscribe' });
        await placeAtHead();
      } else if (kept === undefined) abandon('the event log could not be read');
      else await sendMissed();
    }
    subscribedBefore = true;
    if (generation !== subscription) return;
    caughtUpWith = generation;
    if (!isReady()) return;
    for (const wake of waiters) wake();
    waiters.clear();
  }

  async function sendMissed(): Promise<void> {
    let sent = 0;
    for (;;) {
      const from = last!.at;
      const page = await read('missed events', () => log.after(from, pageSize));
      if (page === undefined) return abandon('the event log could not be read');
      for (const entry of page) {
        const body = Buffer.from(entry.json);
        send(JSON.parse(entry.json) as OrderEvent, body, formatPosition(entry.at), entry.requestId, 'log');
      }
      sent += page.length;
      stats.eventsFilled += page.length;
      if (page.length < pageSize) break;
      if (sent >= gapLimit) {
        const head = await read('its head', () => log.head());
        last = head;
        return abandon(`over ${gapLimit} events were missed`);
      }
    }
    if (sent > 0) logger.info({ events: sent }, 'notifier sent the events its queue missed while disconnected, from the log');
  }

  function abandon(why: string): void {
    stats.gapsAbandoned += 1;
    logger.warn({ clients: hub.clientCount() }, `notifier cannot fill the gap its queue left (${why}); clients are told to resume (4010)`);
    hub.closeAll(CLOSE_RESUME, 'events were missed; reconnect with after=<last event id>');
  }

  return {
    deliver(delivery) {
      if (busy) held.push(delivery);
      else if (suspicious(delivery)) {
        held.push(delivery);
        enqueue(async () => {
          const first = held.shift()!;
          await verifyThenSend(first);
        });
      } else sendLive(delivery);
    },
    subscribed() {
      subscription += 1;
      subscribedNow = true;
      const generation = subscription;
      enqueue(() => fill(generation));
    },
    unsubscribed() {
      subscribedNow = false;
    },
    ready: isReady,
    whenReady(ms) {
      if (isReady()) return Promise.resolve(true);
      return new Promise((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          resolve(true);
        };
        const timer = setTimeout(() => {
          waiters.delete(wake);
          resolve(false);
        }, ms);
        timer.unref();
        waiters.add(wake);
      });
    },
    stats: () => ({ ...stats }),
  };
}

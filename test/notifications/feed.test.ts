import { describe, expect, it, vi } from 'vitest';
import type { OrderEvent } from '../../src/events/envelope.js';
import { formatPosition, type LogPosition } from '../../src/events/log-position.js';
import type { Delivery } from '../../src/messaging/broker.js';
import { CLOSE_RELOAD, CLOSE_RESUME, createNotifierFeed, type LogEntry, type LogReader } from '../../src/notifications/feed.js';
import { createNotificationHub, type NotificationHub } from '../../src/notifications/hub.js';
import { makeEvent } from '../helpers/events.js';

const waitFor = (check: () => void) => vi.waitFor(check, { timeout: 5000, interval: 5 });

/** The outbox as the feed reads it: entries in log order, readable from the start. */
class MemoryLog implements LogReader {
  readonly entries: LogEntry[] = [];
  failing = false;
  private xid = 100;

  append(event: OrderEvent): LogEntry {
    const entry = { at: { xid: String(this.xid++), position: this.entries.length + 1 }, id: event.id, json: JSON.stringify(event) };
    this.entries.push(entry);
    return entry;
  }

  /** What a promoted standby that lacked the tail would hold: the first `keep` entries, then new xids reused from there. */
  rewindTo(keep: number): void {
    this.entries.splice(keep);
    this.xid = 100 + keep;
  }

  async after(at: LogPosition, limit: number): Promise<LogEntry[]> {
    this.check();
    return this.entries.filter((e) => BigInt(e.at.xid) > BigInt(at.xid) || (e.at.xid === at.xid && e.at.position > at.position)).slice(0, limit);
  }

  async head(): Promise<{ at: LogPosition; id: string } | undefined> {
    this.check();
    const last = this.entries.at(-1);
    return last && { at: last.at, id: last.id };
  }

  async holds(eventId: string): Promise<boolean> {
    this.check();
    return this.entries.some((e) => e.id === eventId);
  }

  private check(): void {
    if (this.failing) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
  }
}

interface Recorded {
  readonly hub: NotificationHub;
  readonly sent: { id: string; outcome: string }[];
  readonly closes: { code: number; kind: 'closeAll' | 'reset' }[];
}

/** A real hub (no sockets needed), recording what the feed asks of it. */
function recordingHub(): Recorded {
  const real = createNotificationHub({ pingIntervalMs: 600_000 });
  const sent: Recorded['sent'] = [];
  const closes: Recorded['closes'] = [];
  const hub: NotificationHub = {
    ...real,
    broadcast(event, body, position) {
      const outcome = real.broadcast(event, body, position);
      sent.push({ id: event.id, outcome });
      return outcome;
    },
    closeAll(code, reason) {
      closes.push({ code, kind: 'closeAll' });
      real.closeAll(code, reason);
    },
    reset(code, reason) {
      closes.push({ code, kind: 'reset' });
      real.reset(code, reason);
    },
  };
  return { hub, sent, closes };
}

function delivery(entry: LogEntry, acked: string[] = []): Delivery {
  const event = JSON.parse(entry.json) as OrderEvent;
  return {
    event,
    body: Buffer.from(entry.json),
    redelivered: false,
    logPosition: formatPosition(entry.at),
    ack: () => void acked.push(event.id),
    nack: () => undefined,
  };
}

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

function setUp(options: { gapLimit?: number; pageSize?: number } = {}) {
  const log = new MemoryLog();
  const recorded = recordingHub();
  const errors: string[] = [];
  let rewinds = 0;
  const feed = createNotifierFeed({
    hub: recorded.hub,
    log,
    logger: { ...silent, error: (_obj, msg) => void errors.push(msg) },
    attempts: 2,
    retryDelayMs: 1,
    onRewind: () => void (rewinds += 1),
    ...options,
  });
  const ids = () => recorded.sent.filter((s) => s.outcome === 'broadcast').map((s) => s.id);
  return { log, feed, ...recorded, ids, errors, rewinds: () => rewinds };
}

const orderEvents = (orderId: number, count: number) => Array.from({ length: count }, (_, i) => makeEvent({ orderId, sequence: i + 1 }));

describe('the notifier feed: continuity from the log', () => {
  it('when first subscribed, then it is ready only once it has read where the log stands, and broadcasts live deliveries from there', async () => {
    const { log, feed, ids } = setUp();
    const before = log.append(makeEvent({ orderId: 1 }));
    expect(feed.ready()).toBe(false);

    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));
    const live = log.append(makeEvent({ orderId: 2 }));
    const acked: string[] = [];
    feed.deliver(delivery(live, acked));

    // The log before the subscription is for ?after= replays, not for this feed.
    expect(ids()).toEqual([live.id]);
    expect(ids()).not.toContain(before.id);
    expect(acked).toEqual([live.id]);
  });

  it('when the queue was lost and is bound again, then the events shipped meanwhile are sent from the log, in order, each once, before later live ones', async () => {
    const { log, feed, ids, closes } = setUp({ pageSize: 2 });
    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));
    const [first, ...rest] = orderEvents(7, 6);
    feed.deliver(delivery(log.append(first!)));

    feed.unsubscribed();
    expect(feed.ready()).toBe(false);
    const missed = rest.slice(0, 4).map((e) => log.append(e));
    feed.subscribed();
    // A live delivery that arrives while the gap is read waits for it: event 6 must not overtake 2..5.
    const after = log.append(rest[4]!);
    feed.deliver(delivery(after));
    // The broker may also bring again one the log already sent.
    feed.deliver(delivery(missed[3]!));
    await waitFor(() => expect(feed.ready()).toBe(true));
    await waitFor(() => expect(ids()).toHaveLength(6));

    expect(ids()).toEqual([first!.id, ...missed.map((m) => m.id), after.id]);
    // Event 6 was in the log when the gap was read, so it went out from there and its live delivery was a repeat.
    expect(feed.stats()).toMatchObject({ eventsFilled: 5, gapsAbandoned: 0, rewinds: 0 });
    expect(closes).toEqual([]);
  });

  it('when more events were missed than the gap limit, then clients are told to resume (4010) and the feed goes on from the head', async () => {
    const { log, feed, closes, ids } = setUp({ gapLimit: 3, pageSize: 3 });
    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));
    feed.deliver(delivery(log.append(makeEvent({ orderId: 1 }))));
    feed.unsubscribed();
    for (let order = 2; order <= 9; order++) log.append(makeEvent({ orderId: order }));

    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));

    expect(closes).toEqual([{ code: CLOSE_RESUME, kind: 'closeAll' }]);
    const next = log.append(makeEvent({ orderId: 10 }));
    feed.deliver(delivery(next));
    expect(ids().at(-1)).toBe(next.id);
    expect(feed.stats().gapsAbandoned).toBe(1);
  });

  it('when the log cannot be read after a reconnect, then clients are told to resume (4010) rather than left with a hole', async () => {
    const { log, feed, closes } = setUp();
    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));
    feed.deliver(delivery(log.append(makeEvent({ orderId: 1 }))));
    feed.unsubscribed();
    log.failing = true;

    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));

    expect(closes).toEqual([{ code: CLOSE_RESUME, kind: 'closeAll' }]);
  });

  it('when the log moved back under a live feed (a failover lost its tail), then it says so, clients reload (4011), and new events are not dropped as stale', async () => {
    const { log, feed, closes, ids, errors, rewinds } = setUp();
    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));
    const kept = log.append(makeEvent({ orderId: 1, sequence: 1 }));
    feed.deliver(delivery(kept));
    const lost = orderEvents(2, 3).map((e) => log.append(e));
    for (const entry of lost) feed.deliver(delivery(entry));

    log.rewindTo(1);
    // The promoted database hands order 2's id out again, at xids the lost events had.
    const reused = log.append(makeEvent({ orderId: 2, sequence: 1 }));
    feed.deliver(delivery(reused));
    await waitFor(() => expect(ids().at(-1)).toBe(reused.id));

    expect(closes).toEqual([{ code: CLOSE_RELOAD, kind: 'reset' }]);
    expect(rewinds()).toBe(1);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('event log rewound');
  });

  it('when a delivery sits before the last one broadcast but the log still holds that one, then nothing was lost: it is sent as usual', async () => {
    const { log, feed, closes, sent } = setUp();
    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));
    const early = log.append(makeEvent({ orderId: 3 }));
    const late = log.append(makeEvent({ orderId: 4 }));
    feed.deliver(delivery(late));
    // A relay that took over ships from its checkpoint: an event this feed never saw, before the last one it sent.
    feed.deliver(delivery(early));
    await waitFor(() => expect(sent.map((s) => s.id)).toEqual([late.id, early.id]));

    expect(closes).toEqual([]);
    expect(feed.stats().rewinds).toBe(0);
  });

  it('when the queue comes back after the database rewound, then the check on resubscribing finds it and clients reload', async () => {
    const { log, feed, closes, rewinds } = setUp();
    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));
    log.append(makeEvent({ orderId: 1 }));
    feed.deliver(delivery(log.append(makeEvent({ orderId: 2 }))));
    feed.unsubscribed();
    log.rewindTo(1);

    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));

    expect(closes).toEqual([{ code: CLOSE_RELOAD, kind: 'reset' }]);
    expect(rewinds()).toBe(1);
  });

  it('when subscriptions come and go faster than the gap is read, then it is ready only after the latest one is caught up', async () => {
    const { log, feed } = setUp();
    feed.subscribed();
    feed.unsubscribed();
    feed.subscribed();
    expect(feed.ready()).toBe(false);
    await waitFor(() => expect(feed.ready()).toBe(true));
    log.append(makeEvent());
    feed.unsubscribed();
    expect(feed.ready()).toBe(false);
  });
});

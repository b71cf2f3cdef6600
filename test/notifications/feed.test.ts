import { describe, expect, it, vi } from 'vitest';
import type { OrderEvent } from '../../src/events/envelope.js';
import { formatPosition, type LogPosition } from '../../src/events/log-position.js';
import type { Delivery } from '../../src/messaging/broker.js';
import { CLOSE_RELOAD, CLOSE_RESUME, createNotifierFeed, type LogEntry, type LogReader } from '../../src/notifications/feed.js';
import { createNotificationHub, type NotificationHub } from '../../src/notifications/hub.js';
import { makeEvent } from '../helpers/events.js';

const waitFor = (check: () => void) => vi.waitFor(check, { timeout: 5000, interval: 5 });

type Read = 'after' | 'head' | 'holds';

/** The outbox as the feed reads it: entries in log order, readable from the start. */
class MemoryLog implements LogReader {
  readonly entries: LogEntry[] = [];
  /** Every read fails while set; `failingReads` fails only those. */
  failing = false;
  readonly failingReads = new Set<Read>();
  /** Each read asked for, and when (ms). */
  readonly reads: { read: Read; at: number }[] = [];
  /** While set, after() answers with what the log held when it was asked, once this resolves. */
  gate: Promise<void> | undefined;
  private xid = 100;

  append(event: OrderEvent, requestId?: string): LogEntry {
    const entry = { at: { xid: String(this.xid++), position: this.entries.length + 1 }, id: event.id, json: JSON.stringify(event), requestId };
    this.entries.push(entry);
    return entry;
  }

  /** What a promoted standby that lacked the tail would hold: the first `keep` entries, then new xids reused from there. */
  rewindTo(keep: number): void {
    this.entries.splice(keep);
    this.xid = 100 + keep;
  }

  async after(at: LogPosition, limit: number): Promise<LogEntry[]> {
    this.check('after');
    const page = this.entries.filter((e) => BigInt(e.at.xid) > BigInt(at.xid) || (e.at.xid === at.xid && e.at.position > at.position)).slice(0, limit);
    await this.gate;
    return page;
  }

  async head(): Promise<{ at: LogPosition; id: string } | undefined> {
    this.check('head');
    const last = this.entries.at(-1);
    return last && { at: last.at, id: last.id };
  }

  async holds(eventId: string): Promise<boolean> {
    this.check('holds');
    return this.entries.some((e) => e.id === eventId);
  }

  private check(read: Read): void {
    this.reads.push({ read, at: performance.now() });
    if (this.failing || this.failingReads.has(read)) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
  }
}

interface Recorded {
  readonly hub: NotificationHub;
  readonly sent: { id: string; outcome: string }[];
  readonly closes: { code: number; kind: 'closeAll' | 'reset' }[];
  /** What each close told the clients. */
  readonly reasons: string[];
}

/** A real hub (no sockets needed), recording what the feed asks of it. */
function recordingHub(): Recorded {
  const real = createNotificationHub({ pingIntervalMs: 600_000 });
  const sent: Recorded['sent'] = [];
  const closes: Recorded['closes'] = [];
  const reasons: string[] = [];
  const hub: NotificationHub = {
    ...real,
    broadcast(event, body, position) {
      const outcome = real.broadcast(event, body, position);
      sent.push({ id: event.id, outcome });
      return outcome;
    },
    closeAll(code, reason) {
      closes.push({ code, kind: 'closeAll' });
      reasons.push(reason);
      real.closeAll(code, reason);
    },
    reset(code, reason) {
      closes.push({ code, kind: 'reset' });
      reasons.push(reason);
      real.reset(code, reason);
    },
  };
  return { hub, sent, closes, reasons };
}

function delivery(entry: LogEntry, acked: string[] = []): Delivery {
  const event = JSON.parse(entry.json) as OrderEvent;
  return {
    event,
    body: Buffer.from(entry.json),
    redelivered: false,
    logPosition: formatPosition(entry.at),
    requestId: entry.requestId,
    ack: () => void acked.push(event.id),
    nack: () => undefined,
  };
}

function setUp(options: { gapLimit?: number; pageSize?: number; attempts?: number; retryDelayMs?: number } = {}) {
  const log = new MemoryLog();
  const recorded = recordingHub();
  const errors: { obj: Record<string, unknown>; msg: string }[] = [];
  const lines: { level: 'info' | 'warn'; obj: Record<string, unknown>; msg: string }[] = [];
  let rewinds = 0;
  const feed = createNotifierFeed({
    hub: recorded.hub,
    log,
    logger: {
      info: (obj, msg) => void lines.push({ level: 'info', obj: obj as Record<string, unknown>, msg }),
      warn: (obj, msg) => void lines.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
      error: (obj, msg) => void errors.push({ obj: obj as Record<string, unknown>, msg }),
    },
    attempts: 2,
    retryDelayMs: 1,
    onRewind: () => void (rewinds += 1),
    ...options,
  });
  const ids = () => recorded.sent.filter((s) => s.outcome === 'broadcast').map((s) => s.id);
  return { log, feed, ...recorded, ids, errors, lines, rewinds: () => rewinds };
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
    const { log, feed, closes, reasons, ids } = setUp({ gapLimit: 3, pageSize: 3 });
    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));
    feed.deliver(delivery(log.append(makeEvent({ orderId: 1 }))));
    feed.unsubscribed();
    for (let order = 2; order <= 9; order++) log.append(makeEvent({ orderId: order }));

    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));

    expect(closes).toEqual([{ code: CLOSE_RESUME, kind: 'closeAll' }]);
    expect(reasons).toEqual(['events were missed; reconnect with after=<last event id>']);
    const next = log.append(makeEvent({ orderId: 10 }));
    feed.deliver(delivery(next));
    expect(ids().at(-1)).toBe(next.id);
    // One page went out before the limit was reached; the rest is for the clients' own resume.
    expect(feed.stats()).toMatchObject({ gapsAbandoned: 1, eventsFilled: 3 });
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
    const { log, feed, closes, reasons, ids, errors, rewinds } = setUp();
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
    expect(reasons).toEqual(['the event log was rewound; reload and reconnect without after']);
    expect(rewinds()).toBe(1);
    expect(feed.stats().rewinds).toBe(1);
    expect(errors).toEqual([
      {
        obj: { event_id: reused.id, position: formatPosition(reused.at), last_position: formatPosition(lost[2]!.at), last_event_id: lost[2]!.id },
        msg: 'event log rewound: the database no longer holds events this notifier broadcast (a failover to a standby that lacked them); clients are told to reload (4011)',
      },
    ]);
  });

  it('when the queue is lost right after a rewind was found, before any later delivery, then what was shipped meanwhile is still sent', async () => {
    const { log, feed, ids } = setUp();
    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));
    log.append(makeEvent({ orderId: 1 }));
    feed.deliver(delivery(log.append(makeEvent({ orderId: 2 }))));
    log.rewindTo(1);
    const reused = log.append(makeEvent({ orderId: 2 }));
    feed.deliver(delivery(reused));
    await waitFor(() => expect(ids().at(-1)).toBe(reused.id));

    feed.unsubscribed();
    const meanwhile = [makeEvent({ orderId: 3 }), makeEvent({ orderId: 4 })].map((e) => log.append(e));
    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));

    expect(ids().slice(-2)).toEqual(meanwhile.map((m) => m.id));
  });

  it('when the feed could not read where the log stood and its queue is lost, then clients are told to resume (4010) rather than skip what was shipped', async () => {
    const { log, feed, closes, ids } = setUp();
    log.append(makeEvent({ orderId: 1 }));
    log.failing = true;
    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));
    expect(closes).toEqual([]);
    log.failing = false;
    feed.unsubscribed();
    log.append(makeEvent({ orderId: 2 }));
    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));

    expect(closes).toEqual([{ code: CLOSE_RESUME, kind: 'closeAll' }]);
    // From here on it knows its place again.
    const next = log.append(makeEvent({ orderId: 3 }));
    feed.deliver(delivery(next));
    expect(ids()).toEqual([next.id]);
  });

  it('when the log was empty at the first subscription and the queue is lost before any delivery, then what was shipped meanwhile is sent from the start', async () => {
    const { log, feed, ids, closes } = setUp();
    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));
    feed.unsubscribed();
    const meanwhile = [makeEvent({ orderId: 1 }), makeEvent({ orderId: 2 })].map((e) => log.append(e));
    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));

    expect(ids()).toEqual(meanwhile.map((m) => m.id));
    expect(closes).toEqual([]);
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
    // The feed's place stays at the later one: a reconnect has nothing to send again.
    feed.unsubscribed();
    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));
    expect(feed.stats().eventsFilled).toBe(0);
  });

  it('when the queue comes back after the database rewound, then the check on resubscribing finds it and clients reload', async () => {
    const { log, feed, closes, rewinds, errors } = setUp();
    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));
    log.append(makeEvent({ orderId: 1 }));
    const gone = log.append(makeEvent({ orderId: 2 }));
    feed.deliver(delivery(gone));
    feed.unsubscribed();
    log.rewindTo(1);

    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));

    expect(closes).toEqual([{ code: CLOSE_RELOAD, kind: 'reset' }]);
    expect(rewinds()).toBe(1);
    expect(errors.map((e) => e.obj)).toEqual([{ on: 'resubscribe', last_position: formatPosition(gone.at), last_event_id: gone.id }]);
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

  it('when events go out, live or from the log, then each is logged with its order, the request that wrote it, the outcome and where it came from', async () => {
    const { log, feed, lines } = setUp();
    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));
    const live = log.append(makeEvent({ orderId: 1 }), 'req-live');
    feed.deliver(delivery(live));
    feed.unsubscribed();
    const missed = log.append(makeEvent({ orderId: 1, sequence: 2 }), 'req-missed');
    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));
    feed.deliver(delivery(missed));

    expect(lines.filter((l) => l.msg === 'notification broadcast')).toEqual([
      { level: 'info', obj: { event_id: live.id, order_id: 1, sequence: 1, request_id: 'req-live', outcome: 'broadcast', source: 'live' }, msg: 'notification broadcast' },
      { level: 'info', obj: { event_id: missed.id, order_id: 1, sequence: 2, request_id: 'req-missed', outcome: 'broadcast', source: 'log' }, msg: 'notification broadcast' },
      { level: 'info', obj: { event_id: missed.id, order_id: 1, sequence: 2, request_id: 'req-missed', outcome: 'duplicate', source: 'live' }, msg: 'notification broadcast' },
    ]);
    expect(lines.filter((l) => l.msg.startsWith('notifier sent the events'))).toEqual([
      { level: 'info', obj: { events: 1 }, msg: 'notifier sent the events its queue missed while disconnected, from the log' },
    ]);
  });

  it('when nothing was missed while the queue was away, then nothing is sent from the log and no gap is logged', async () => {
    const { log, feed, lines, ids } = setUp();
    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));
    const only = log.append(makeEvent({ orderId: 1 }));
    feed.deliver(delivery(only));
    feed.unsubscribed();

    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));

    expect(ids()).toEqual([only.id]);
    expect(feed.stats()).toEqual({ gapsChecked: 2, eventsFilled: 0, gapsAbandoned: 0, rewinds: 0 });
    expect(lines.filter((l) => l.msg.startsWith('notifier sent the events'))).toEqual([]);
  });

  it('when the log cannot be read, then the give-up is logged once with the attempts made and what was read, and the resume order names the clients', async () => {
    const { log, feed, lines } = setUp();
    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));
    feed.deliver(delivery(log.append(makeEvent({ orderId: 1 }))));
    feed.unsubscribed();
    log.failing = true;

    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));

    expect(lines.filter((l) => l.level === 'warn')).toEqual([
      { level: 'warn', obj: { err: expect.objectContaining({ message: 'connect ECONNREFUSED 127.0.0.1:5432' }), attempts: 2 }, msg: 'notifier could not read the event log (is the last event still there)' },
      { level: 'warn', obj: { clients: 0 }, msg: "notifier cannot fill the gap its queue left (the event log could not be read); clients are told to resume (4010)" },
    ]);
  });

  it('when a read of the log fails and the next attempt succeeds, then the gap is filled as usual', async () => {
    const { log, feed, ids, lines, closes } = setUp();
    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));
    feed.deliver(delivery(log.append(makeEvent({ orderId: 1 }))));
    feed.unsubscribed();
    const missed = log.append(makeEvent({ orderId: 1, sequence: 2 }));
    log.failing = true;

    feed.subscribed();
    setTimeout(() => (log.failing = false), 0);
    await waitFor(() => expect(feed.ready()).toBe(true));

    expect(ids().at(-1)).toBe(missed.id);
    expect(closes).toEqual([]);
    expect(lines.filter((l) => l.level === 'warn')).toEqual([]);
  });

  it('when a gap is over the limit, then the warning says how many events it was over', async () => {
    const { log, feed, lines } = setUp({ gapLimit: 2, pageSize: 2 });
    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));
    feed.deliver(delivery(log.append(makeEvent({ orderId: 1 }))));
    feed.unsubscribed();
    for (let order = 2; order <= 6; order++) log.append(makeEvent({ orderId: order }));

    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));

    expect(lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toEqual([
      'notifier cannot fill the gap its queue left (over 2 events were missed); clients are told to resume (4010)',
    ]);
  });

  it('when a connecting client waits for readiness, then it hears true once caught up, false when the wait ends first, and true at once when ready', async () => {
    const { feed } = setUp();
    expect(await feed.whenReady(20)).toBe(false);

    const waiting = feed.whenReady(5000);
    feed.subscribed();

    expect(await waiting).toBe(true);
    expect(await feed.whenReady(0)).toBe(true);
  });

  it('when the subscription is lost again before its gap is read, then a client waiting for readiness is not let in', async () => {
    const { feed } = setUp();
    const waiting = feed.whenReady(300);

    feed.subscribed();
    feed.unsubscribed();

    expect(await waiting).toBe(false);
    expect(feed.ready()).toBe(false);
  });

  it('when the queue is lost before any live delivery came, then what was shipped meanwhile is sent from where the log stood at the first subscription', async () => {
    const { log, feed, ids } = setUp();
    log.append(makeEvent({ orderId: 1 }));
    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));
    feed.unsubscribed();
    const missed = log.append(makeEvent({ orderId: 2 }));

    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));

    expect(ids()).toEqual([missed.id]);
  });

  it('when the rewound log reuses the very place of the last event broadcast, then that is found too', async () => {
    const { log, feed, closes, ids } = setUp();
    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));
    feed.deliver(delivery(log.append(makeEvent({ orderId: 1 }))));
    const lost = log.append(makeEvent({ orderId: 2 }));
    feed.deliver(delivery(lost));

    log.rewindTo(1);
    const reused = log.append(makeEvent({ orderId: 2 }));
    expect(reused.at).toEqual(lost.at);
    feed.deliver(delivery(reused));
    await waitFor(() => expect(ids().at(-1)).toBe(reused.id));

    expect(closes).toEqual([{ code: CLOSE_RELOAD, kind: 'reset' }]);
  });

  it('when the queue is bound again twice while its gap is read, then the gap is read once: the second check finds nothing more', async () => {
    const { log, feed, ids } = setUp();
    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));
    feed.deliver(delivery(log.append(makeEvent({ orderId: 1 }))));
    feed.unsubscribed();
    const missed = orderEvents(2, 3).map((e) => log.append(e));

    feed.subscribed();
    feed.unsubscribed();
    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));

    expect(ids().slice(1)).toEqual(missed.map((m) => m.id));
    expect(feed.stats()).toMatchObject({ gapsChecked: 3, eventsFilled: 3 });
  });

  it('when a live event arrives after the gap was read but before it was sent, then it goes out after the gap, live', async () => {
    const { log, feed, ids } = setUp();
    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));
    feed.deliver(delivery(log.append(makeEvent({ orderId: 1, sequence: 1 }))));
    feed.unsubscribed();
    const missed = log.append(makeEvent({ orderId: 1, sequence: 2 }));
    let open!: () => void;
    log.gate = new Promise((resolve) => (open = resolve));

    feed.subscribed();
    await waitFor(() => expect(log.reads.map((r) => r.read)).toContain('after'));
    const live = log.append(makeEvent({ orderId: 1, sequence: 3 }));
    feed.deliver(delivery(live));
    expect(ids()).toHaveLength(1);
    open();

    await waitFor(() => expect(ids()).toEqual([expect.any(String), missed.id, live.id]));
  });

  it('when an event from before the last one broadcast arrives while the gap is read, then it is checked against the log once the gap is done', async () => {
    const { log, feed, closes, ids } = setUp();
    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));
    feed.deliver(delivery(log.append(makeEvent({ orderId: 1 }))));
    const lost = log.append(makeEvent({ orderId: 2 }));
    feed.deliver(delivery(lost));
    feed.unsubscribed();
    let open!: () => void;
    log.gate = new Promise((resolve) => (open = resolve));

    feed.subscribed();
    await waitFor(() => expect(log.reads.map((r) => r.read)).toContain('after'));
    // Meanwhile the database failed over to a standby that lacked the last event.
    log.rewindTo(1);
    const reused = log.append(makeEvent({ orderId: 2 }));
    feed.deliver(delivery(reused));
    open();

    await waitFor(() => expect(ids().at(-1)).toBe(reused.id));
    expect(closes).toEqual([{ code: CLOSE_RELOAD, kind: 'reset' }]);
  });

  it('when the log keeps failing, then it is read `attempts` times, the waits doubling from retryDelayMs', async () => {
    const { log, feed } = setUp({ attempts: 3, retryDelayMs: 200 });
    feed.subscribed();
    await waitFor(() => expect(feed.ready()).toBe(true));
    feed.deliver(delivery(log.append(makeEvent({ orderId: 1 }))));
    feed.unsubscribed();
    log.failing = true;
    const before = log.reads.length;

    feed.subscribed();
    await vi.waitFor(() => expect(feed.ready()).toBe(true), { timeout: 10_000, interval: 5 });

    const tries = log.reads.slice(before);
    expect(tries.map((r) => r.read)).toEqual(['holds', 'holds', 'holds']);
    const waits = tries.slice(1).map((r, i) => r.at - tries[i]!.at);
    // 200 ms, then 400 ms: a first wait of 800 ms would be the doubling counted one step too far.
    expect(waits[0]).toBeGreaterThanOrEqual(195);
    expect(waits[0]).toBeLessThan(700);
    expect(waits[1]).toBeGreaterThanOrEqual(395);
  });

  it('when one kind of read fails, then the warning names it: the head, the missed events, or whether the last event is still there', async () => {
    // The head, at the first subscription: the feed starts from the next live event.
    const first = setUp();
    first.log.failingReads.add('head');
    first.feed.subscribed();
    await waitFor(() => expect(first.feed.ready()).toBe(true));
    expect(first.lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toEqual(['notifier could not read the event log (its head)']);

    // The missed events, after a reconnect: clients resume.
    const second = setUp();
    second.feed.subscribed();
    await waitFor(() => expect(second.feed.ready()).toBe(true));
    second.feed.deliver(delivery(second.log.append(makeEvent({ orderId: 1 }))));
    second.feed.unsubscribed();
    second.log.failingReads.add('after');
    second.feed.subscribed();
    await waitFor(() => expect(second.feed.ready()).toBe(true));
    expect(second.lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toEqual([
      'notifier could not read the event log (missed events)',
      'notifier cannot fill the gap its queue left (the event log could not be read); clients are told to resume (4010)',
    ]);

    // Whether the last event is still there, for a live event from before it: sent, as nothing says the log moved back.
    const third = setUp();
    third.feed.subscribed();
    await waitFor(() => expect(third.feed.ready()).toBe(true));
    const early = third.log.append(makeEvent({ orderId: 3 }));
    third.feed.deliver(delivery(third.log.append(makeEvent({ orderId: 4 }))));
    third.log.failingReads.add('holds');
    third.feed.deliver(delivery(early));
    await waitFor(() => expect(third.ids().at(-1)).toBe(early.id));
    expect(third.lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toEqual(['notifier could not read the event log (is the last event still there)']);
    expect(third.closes).toEqual([]);

    // The head, after a gap over the limit.
    const fourth = setUp({ gapLimit: 1, pageSize: 1 });
    fourth.feed.subscribed();
    await waitFor(() => expect(fourth.feed.ready()).toBe(true));
    fourth.feed.deliver(delivery(fourth.log.append(makeEvent({ orderId: 1 }))));
    fourth.feed.unsubscribed();
    fourth.log.append(makeEvent({ orderId: 2 }));
    fourth.log.append(makeEvent({ orderId: 3 }));
    fourth.log.failingReads.add('head');
    fourth.feed.subscribed();
    await waitFor(() => expect(fourth.feed.ready()).toBe(true));
    expect(fourth.lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toEqual([
      'notifier could not read the event log (its head)',
      'notifier cannot fill the gap its queue left (over 1 events were missed); clients are told to resume (4010)',
    ]);
  });
});

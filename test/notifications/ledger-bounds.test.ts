import { afterEach, describe, expect, it } from 'vitest';
import type { OrderEvent } from '../../src/events/envelope.js';
import { createEventLedger } from '../../src/notifications/ledger.js';
import { connect, createEventTable, makeEvent, startNotifier, waitFor, type Notifier } from './harness.js';

let notifier: Notifier;
afterEach(async () => {
  await notifier?.close();
});

describe('what the hub remembers to drop redeliveries', () => {
  it('when more events than recentEventIds have passed, then only the oldest id is forgotten and its order sequence still drops it as stale', async () => {
    notifier = await startNotifier({ hub: { recentEventIds: 3 } });
    const client = await connect(notifier.url());
    const [o1, o2, o3, o4] = [1, 2, 3, 4].map((orderId) => makeEvent({ orderId }));

    const verdicts = [o1, o2, o3, o1, o4, o1, o2].map((event) => notifier.hub.broadcast(event!));

    expect(verdicts).toEqual(['broadcast', 'broadcast', 'broadcast', 'duplicate', 'broadcast', 'stale', 'duplicate']);
    expect(notifier.hub.stats()).toMatchObject({ duplicatesDropped: 2, staleDropped: 1 });
    await client.waitForEvents(4);
    expect(client.events.map((e) => e.id)).toEqual([o1, o2, o3, o4].map((e) => e!.id));
  });

  it('when more orders than trackedOrders have events, then the order least recently broadcast is forgotten, not the oldest one still active', async () => {
    notifier = await startNotifier({ hub: { trackedOrders: 2 } });
    const client = await connect(notifier.url());
    const o1s1 = makeEvent({ orderId: 1 });
    const o2s1 = makeEvent({ orderId: 2 });
    const o1s1Again = makeEvent({ orderId: 1 });
    const o1s2 = makeEvent({ orderId: 1, sequence: 2 });
    const o3s1 = makeEvent({ orderId: 3 });
    const o1s2Again = makeEvent({ orderId: 1, sequence: 2 });
    const o2s1Again = makeEvent({ orderId: 2 });

    const verdicts = [o1s1, o2s1, o1s1Again, o1s2, o3s1, o1s2Again, o2s1Again].map((event) => notifier.hub.broadcast(event));

    // Order 2 was forgotten, so a stale copy with a new id gets through: the price of a bounded ledger.
    expect(verdicts).toEqual(['broadcast', 'broadcast', 'stale', 'broadcast', 'broadcast', 'stale', 'broadcast']);
    await client.waitForEvents(5);
    expect(client.events.map((e) => e.id)).toEqual([o1s1, o2s1, o1s2, o3s1, o2s1Again].map((e) => e.id));
  });

  it('when no bound is given, then 50,000 event ids and 100,000 orders are remembered', async () => {
    notifier = await startNotifier();
    // Cheap events, broadcast with no client connected: the ledger only reads id, order_id and sequence.
    const bulk = (orderId: number) => ({ id: `bulk-${orderId}`, order_id: orderId, sequence: 1 }) as OrderEvent;
    const first = makeEvent({ orderId: 1 });
    const second = makeEvent({ orderId: 1, sequence: 2 });
    notifier.hub.broadcast(first);
    notifier.hub.broadcast(second);
    for (let orderId = 2; orderId <= 49_999; orderId++) notifier.hub.broadcast(bulk(orderId));

    expect(notifier.hub.broadcast(first)).toBe('duplicate');
    notifier.hub.broadcast(bulk(50_000));
    expect(notifier.hub.broadcast(first)).toBe('stale');
    expect(notifier.hub.broadcast(second)).toBe('duplicate');

    for (let orderId = 50_001; orderId <= 100_000; orderId++) notifier.hub.broadcast(bulk(orderId));
    expect(notifier.hub.broadcast(makeEvent({ orderId: 1, sequence: 2 }))).toBe('stale');
    notifier.hub.broadcast(bulk(100_001));
    expect(notifier.hub.broadcast(makeEvent({ orderId: 2 }))).toBe('stale');
    expect(notifier.hub.broadcast(makeEvent({ orderId: 1, sequence: 2 }))).toBe('broadcast');
  });

  it('when a replayed event of an order the hub knows arrives live after the replay, then the resumed client gets it once', async () => {
    const table = createEventTable();
    notifier = await startNotifier({ hub: { pingIntervalMs: 300 }, replayAfter: async (id) => table.after(id) });
    const [seen, missed] = table.record(makeEvent({ orderId: 1 }), makeEvent({ orderId: 1, sequence: 2 }));
    notifier.hub.broadcast(seen!);

    const client = await connect(notifier.url({ after: seen!.id }));
    let pings = 0;
    client.ws.on('ping', () => (pings += 1));
    await client.waitForEvents(1);
    // Several keep-alive rounds, each pruning what the live stream has passed: the missed event has not passed yet.
    await waitFor(() => pings >= 3, 5000, 'three pings');
    expect(notifier.hub.broadcast(missed!)).toBe('broadcast');
    const next = makeEvent({ orderId: 1, sequence: 3 });
    notifier.hub.broadcast(next);

    // `next` goes out after the live copy of `missed` would have: once it is in, such a copy would be too.
    await client.waitForEvents(2);
    expect(client.events.map((e) => e.id)).toEqual([missed!.id, next.id]);
  });
});

describe('what the ledger counts as passed', () => {
  it('when an order has been forgotten (trackedOrders 1), then an event of it still counts as passed by its id', () => {
    const ledger = createEventLedger({ recentEventIds: 10, trackedOrders: 1 });
    const forgottenOrder = makeEvent({ orderId: 1 });
    ledger.admit(forgottenOrder);
    ledger.admit(makeEvent({ orderId: 2 }));

    expect(ledger.hasPassed(1, 1, forgottenOrder.id)).toBe(true);
    expect(ledger.hasPassed(1, 1, makeEvent({ orderId: 1 }).id)).toBe(false);
  });

  it("when an id has been forgotten (recentEventIds 1), then its event still counts as passed by its order's last sequence, itself included", () => {
    const ledger = createEventLedger({ recentEventIds: 1, trackedOrders: 10 });
    const forgottenId = makeEvent({ orderId: 1 });
    ledger.admit(forgottenId);
    ledger.admit(makeEvent({ orderId: 2 }));

    expect(ledger.hasPassed(1, 1, forgottenId.id)).toBe(true);
    expect(ledger.hasPassed(1, 2, makeEvent({ orderId: 1, sequence: 2 }).id)).toBe(false);
  });
});

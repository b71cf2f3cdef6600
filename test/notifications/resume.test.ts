import { afterEach, describe, expect, it } from 'vitest';
import { connect, createEventTable, deferred, makeEvent, startNotifier, waitFor, type Notifier } from './harness.js';

let notifier: Notifier;
afterEach(async () => {
  await notifier?.close();
});

describe('resume with ?after=', () => {
  it('when a client resumes, then it gets the missed events, then live ones, with no gap and no duplicate', async () => {
    const table = createEventTable();
    const replayRead = deferred();
    const replayReturns = deferred();
    notifier = await startNotifier({
      replayAfter: async (id) => {
        const snapshot = table.after(id);
        replayRead.resolve();
        await replayReturns.promise;
        return snapshot;
      },
    });
    const [seen1, seen2, missed] = table.record(makeEvent({ orderId: 1 }), makeEvent({ orderId: 2 }), makeEvent({ orderId: 1, sequence: 2 }));
    for (const event of [seen1, seen2, missed]) notifier.hub.broadcast(event!);
    // Recorded before the replay is read, broadcast only later: once while it runs, once after.
    const [liveDuringReplay, liveAfterReplay] = table.record(makeEvent({ orderId: 2, sequence: 2 }), makeEvent({ orderId: 3 }));

    const client = await connect(notifier.url({ after: seen2!.id }));
    await replayRead.promise;
    notifier.hub.broadcast(liveDuringReplay!);
    const [newDuringReplay] = table.record(makeEvent({ orderId: 1, sequence: 3 }));
    notifier.hub.broadcast(newDuringReplay!);
    replayReturns.resolve();
    await client.waitForEvents(4);
    notifier.hub.broadcast(liveAfterReplay!);
    const [newAfterReplay] = table.record(makeEvent({ orderId: 1, sequence: 4 }));
    notifier.hub.broadcast(newAfterReplay!);

    await client.waitForEvents(5);
    expect(client.events.map((e) => e.id)).toEqual([missed, liveDuringReplay, liveAfterReplay, newDuringReplay, newAfterReplay].map((e) => e!.id));
    expect(client.events.map((e) => e.id)).toEqual(table.after(seen2!.id)?.events.map((e) => e.id));
  });

  it('when a restarted relay ships again events at or before the resume point, then the resumed client does not get them twice', async () => {
    const table = createEventTable();
    notifier = await startNotifier({ replayAfter: async (id) => table.after(id) });
    const [early, seen, missed] = table.record(makeEvent({ orderId: 1 }), makeEvent({ orderId: 2 }), makeEvent({ orderId: 1, sequence: 2 }));

    const client = await connect(notifier.url({ after: seen!.id }));
    await client.waitForEvents(1);
    // This notifier never broadcast them (it is new), so only their log position says the client had them.
    for (const event of [early, seen, missed]) notifier.hub.broadcast(event!, undefined, table.positionOf(event!));
    const [next] = table.record(makeEvent({ orderId: 3 }));
    notifier.hub.broadcast(next!, undefined, table.positionOf(next!));

    await client.waitForEvents(2);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(client.events.map((e) => e.id)).toEqual([missed!.id, next!.id]);
  });

  it('when a restarted relay ships again events at or before the resume point while the replay is read, then they are not sent from the held-back live events either', async () => {
    const table = createEventTable();
    const replayRead = deferred();
    const replayReturns = deferred();
    notifier = await startNotifier({
      replayAfter: async (id) => {
        const snapshot = table.after(id);
        replayRead.resolve();
        await replayReturns.promise;
        return snapshot;
      },
    });
    const [early, seen, missed] = table.record(makeEvent({ orderId: 1 }), makeEvent({ orderId: 2 }), makeEvent({ orderId: 1, sequence: 2 }));

    const client = await connect(notifier.url({ after: seen!.id }));
    await replayRead.promise;
    // Held back before the replay says where the client stands: only their position tells they are old.
    for (const event of [early, seen, missed]) notifier.hub.broadcast(event!, undefined, table.positionOf(event!));
    const [next] = table.record(makeEvent({ orderId: 3 }));
    notifier.hub.broadcast(next!, undefined, table.positionOf(next!));
    replayReturns.resolve();

    await client.waitForEvents(2);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(client.events.map((e) => e.id)).toEqual([missed!.id, next!.id]);
  });

  it('when the client filters, then the replay is filtered too', async () => {
    const table = createEventTable();
    notifier = await startNotifier({ replayAfter: async (id) => table.after(id) });
    const [start, , o2] = table.record(makeEvent({ orderId: 1 }), makeEvent({ orderId: 1, sequence: 2 }), makeEvent({ orderId: 2 }));

    const client = await connect(notifier.url({ after: start!.id, order_id: 2 }));
    const live = makeEvent({ orderId: 2, sequence: 2 });
    notifier.hub.broadcast(makeEvent({ orderId: 1, sequence: 3 }));
    notifier.hub.broadcast(live);

    await client.waitForEvents(2);
    expect(client.events.map((e) => e.id)).toEqual([o2!.id, live.id]);
  });

  it('when the event id is unknown, then the socket is closed with 4404 saying so', async () => {
    const table = createEventTable();
    notifier = await startNotifier({ replayAfter: async (id) => table.after(id) });
    const unknown = makeEvent().id;

    const client = await connect(notifier.url({ after: unknown }));

    const { code, reason } = await client.closed;
    expect(code).toBe(4404);
    expect(reason).toContain(`unknown event id in after: ${unknown}`);
    expect(client.events).toEqual([]);
  });

  it('when reading the replay fails, then the socket is closed with 1011 and the server keeps serving', async () => {
    notifier = await startNotifier({ replayAfter: async () => Promise.reject(new Error('database down')) });
    const other = await connect(notifier.url());

    const client = await connect(notifier.url({ after: makeEvent().id }));

    expect((await client.closed).code).toBe(1011);
    notifier.hub.broadcast(makeEvent());
    await other.waitForEvents(1);
  });

  it('when the replay is larger than the send buffer bound and the client reads slowly, then it is paced, not cut', async () => {
    const table = createEventTable();
    const [start] = table.record(makeEvent({ orderId: 1 }));
    for (let order = 2; order <= 201; order++) table.record(makeEvent({ orderId: order, padding: 100 * 1024 }));
    const replayReturns = deferred();
    notifier = await startNotifier({
      hub: { maxBufferedBytes: 256 * 1024 },
      replayAfter: async (id) => {
        await replayReturns.promise;
        return table.after(id);
      },
    });

    const client = await connect(notifier.url({ after: start!.id }));
    client.ws.pause();
    replayReturns.resolve();
    await waitFor(() => notifier.hub.stats().bufferedBytes > 0, 5000, 'the send buffer to fill');
    await new Promise((resolve) => setTimeout(resolve, 200));
    client.ws.resume();

    await client.waitForEvents(200, 20_000);
    expect(client.events.map((e) => e.order_id)).toEqual(table.events.slice(1).map((e) => e.order_id));
    expect(client.ws.readyState).toBe(client.ws.OPEN);
    expect(notifier.hub.stats().peakBufferedBytes).toBeLessThanOrEqual(256 * 1024);
  });

  it('when a resuming client never drains its replay, then it is closed as a slow consumer', async () => {
    const table = createEventTable();
    const [start] = table.record(makeEvent({ orderId: 1 }));
    for (let order = 2; order <= 401; order++) table.record(makeEvent({ orderId: order, padding: 100 * 1024 }));
    const replayReturns = deferred();
    notifier = await startNotifier({
      hub: { maxBufferedBytes: 256 * 1024, stallTimeoutMs: 300, closeGraceMs: 10_000 },
      replayAfter: async (id) => {
        await replayReturns.promise;
        return table.after(id);
      },
    });

    const client = await connect(notifier.url({ after: start!.id }));
    client.ws.pause();
    replayReturns.resolve();
    await waitFor(() => notifier.hub.stats().slowConsumerDisconnects === 1, 10_000, 'the slow consumer to be closed');
    client.ws.resume();

    expect(await client.closed).toEqual({ code: 4008, reason: 'slow consumer: send buffer over 262144 bytes' });
    expect(client.events.length).toBeLessThan(400);
  });
});

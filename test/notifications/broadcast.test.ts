import { afterEach, describe, expect, it } from 'vitest';
import { connect, makeEvent, startNotifier, type Notifier, type TestClient } from './harness.js';

let notifier: Notifier;
afterEach(async () => {
  await notifier?.close();
});

describe('broadcast', () => {
  it('when an event is broadcast, then a connected client receives the envelope as one text frame', async () => {
    notifier = await startNotifier();
    const client = await connect(notifier.url());
    const frames: { isBinary: boolean; text: string }[] = [];
    client.ws.on('message', (data: Buffer, isBinary) => frames.push({ isBinary, text: data.toString() }));
    const event = makeEvent({ orderId: 7, sequence: 2 });

    expect(notifier.hub.broadcast(event)).toBe('broadcast');

    const [received] = await client.waitForEvents(1);
    expect(frames).toHaveLength(1);
    expect(frames[0]?.isBinary).toBe(false);
    expect(received).toEqual(event);
    expect(received?.id).toBe(event.id);
    expect(received?.type).toBe('order.status_changed');
    expect(received?.schema_version).toBe(1);
    expect(received?.occurred_at).toBe(event.occurred_at);
    expect(received?.order_id).toBe(7);
    expect(received?.sequence).toBe(2);
    expect(received?.order).toEqual(event.order);
    expect(received?.change).toEqual({ from: 'Pending', to: 'Confirmed' });
  });

  it('when the broker body is given, then exactly those bytes are sent', async () => {
    notifier = await startNotifier();
    const client = await connect(notifier.url());
    const event = makeEvent();
    const body = Buffer.from(JSON.stringify(event, null, 1));

    notifier.hub.broadcast(event, body);

    await client.waitForEvents(1);
    expect(client.texts).toEqual([body.toString()]);
  });

  it('when a client negotiated permessage-deflate, then it still gets the event (sent through ws, compressed)', async () => {
    notifier = await startNotifier({ perMessageDeflate: true });
    const compressed = await connect(notifier.url());
    const plain = await connect(notifier.url(), { perMessageDeflate: false });
    const event = makeEvent({ padding: 4096 });

    notifier.hub.broadcast(event);

    expect(compressed.ws.extensions).toContain('permessage-deflate');
    expect(await compressed.waitForEvents(1)).toEqual([event]);
    expect(await plain.waitForEvents(1)).toEqual([event]);
  });

  it('when several clients are connected, then each gets the event and the JSON is serialized once', async () => {
    notifier = await startNotifier();
    const clients = await Promise.all([connect(notifier.url()), connect(notifier.url()), connect(notifier.url())]);
    const event = makeEvent();
    let serializations = 0;
    Object.defineProperty(event, 'toJSON', {
      enumerable: false,
      value() {
        serializations += 1;
        return { ...this };
      },
    });

    notifier.hub.broadcast(event);

    for (const client of clients) expect((await client.waitForEvents(1))[0]?.id).toBe(event.id);
    expect(serializations).toBe(1);
  });

  it('when clients filter by order_id or client_email, then they get only matching events', async () => {
    notifier = await startNotifier();
    const everything = await connect(notifier.url());
    const order5 = await connect(notifier.url({ order_id: 5 }));
    const jane = await connect(notifier.url({ client_email: 'Jane.Roe@Example.COM' }));
    const janeOrder6 = await connect(notifier.url({ client_email: 'jane.roe@example.com', order_id: 6 }));
    const events = [
      makeEvent({ orderId: 5, email: 'john.doe@example.com' }),
      makeEvent({ orderId: 6, email: 'jane.roe@example.com' }),
      makeEvent({ orderId: 7, email: 'JANE.ROE@example.com' }),
      makeEvent({ orderId: 5, sequence: 2, email: 'john.doe@example.com' }),
    ];

    // Markers come last, so a client holding its markers has received everything meant for it.
    const johnMarker = makeEvent({ orderId: 5, sequence: 3, email: 'john.doe@example.com' });
    const janeMarker = makeEvent({ orderId: 6, sequence: 2, email: 'jane.roe@example.com' });

    for (const event of [...events, johnMarker, janeMarker]) notifier.hub.broadcast(event);

    const ids = (client: TestClient) => client.events.map((e) => e.id);
    await everything.waitForEvents(6);
    await order5.waitForEvents(3);
    await jane.waitForEvents(3);
    await janeOrder6.waitForEvents(2);
    expect(ids(everything)).toEqual([...events, johnMarker, janeMarker].map((e) => e.id));
    expect(ids(order5)).toEqual([events[0]?.id, events[3]?.id, johnMarker.id]);
    expect(ids(jane)).toEqual([events[1]?.id, events[2]?.id, janeMarker.id]);
    expect(ids(janeOrder6)).toEqual([events[1]?.id, janeMarker.id]);
  });

  it('when the broker redelivers or delivers a stale sequence, then clients get each event once and in order', async () => {
    notifier = await startNotifier();
    const client = await connect(notifier.url());
    const o1s1 = makeEvent({ orderId: 1, sequence: 1 });
    const o2s1 = makeEvent({ orderId: 2, sequence: 1 });
    const o1s2 = makeEvent({ orderId: 1, sequence: 2 });
    const o1s2Again = { ...makeEvent({ orderId: 1, sequence: 2 }) };
    const o1s3 = makeEvent({ orderId: 1, sequence: 3 });
    const marker = makeEvent({ orderId: 99 });

    const verdicts = [o1s1, o2s1, o1s2, o1s1, o1s2Again, o2s1, o1s3, o1s2, marker].map((e) => notifier.hub.broadcast(e));

    expect(verdicts).toEqual(['broadcast', 'broadcast', 'broadcast', 'duplicate', 'stale', 'duplicate', 'broadcast', 'duplicate', 'broadcast']);
    // The marker is broadcast last: once it is in, any duplicate would already be in the list.
    await client.waitForEvents(5);
    expect(client.events.map((e) => e.id)).toEqual([o1s1.id, o2s1.id, o1s2.id, o1s3.id, marker.id]);
    expect(notifier.hub.stats()).toMatchObject({ duplicatesDropped: 3, staleDropped: 1 });
  });

  it('when the app closes, then clients are closed with 1001', async () => {
    notifier = await startNotifier();
    const clients = await Promise.all([connect(notifier.url()), connect(notifier.url())]);

    await notifier.close();

    for (const client of clients) expect(await client.closed).toEqual({ code: 1001, reason: 'server shutting down' });
    expect(notifier.hub.clientCount()).toBe(0);
  });
});

describe('closing every client', () => {
  it('when every client is closed with a code, then each gets that code and reason, and the events broadcast before are still known', async () => {
    notifier = await startNotifier();
    const clients = [await connect(notifier.url()), await connect(notifier.url({ order_id: 2 }))];
    const event = makeEvent({ orderId: 1 });
    notifier.hub.broadcast(event);

    notifier.hub.closeAll(4010, 'events were missed');

    for (const client of clients) expect(await client.closed).toEqual({ code: 4010, reason: 'events were missed' });
    expect(notifier.hub.knows(event.id)).toBe(true);
    expect(notifier.hub.broadcast(event)).toBe('duplicate');
  });

  it('when the hub is reset, then every client is closed with the code, and events broadcast before are forgotten: sent again, not dropped as repeats', async () => {
    notifier = await startNotifier();
    const before = await connect(notifier.url());
    const event = makeEvent({ orderId: 1, sequence: 3 });
    notifier.hub.broadcast(event);
    expect(notifier.hub.knows(event.id)).toBe(true);

    notifier.hub.reset(4011, 'the event log was rewound');

    expect(await before.closed).toEqual({ code: 4011, reason: 'the event log was rewound' });
    expect(notifier.hub.knows(event.id)).toBe(false);
    const after = await connect(notifier.url());
    // The rewound log hands order 1 out again from sequence 1: not stale, as what came before is forgotten.
    const reused = makeEvent({ orderId: 1, sequence: 1 });
    expect(notifier.hub.broadcast(reused)).toBe('broadcast');
    expect(notifier.hub.broadcast(event)).toBe('broadcast');
    expect((await after.waitForEvents(2)).map((e) => e.id)).toEqual([reused.id, event.id]);
  });

  it('when an event was never broadcast, then the hub does not know it', async () => {
    notifier = await startNotifier();
    notifier.hub.broadcast(makeEvent({ orderId: 1 }));

    expect(notifier.hub.knows(makeEvent({ orderId: 1 }).id)).toBe(false);
  });
});

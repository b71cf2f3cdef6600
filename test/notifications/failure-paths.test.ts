import { once } from 'node:events';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/logger.js';
import { connect, createEventTable, deferred, makeEvent, rawClient, startNotifier, waitFor, type Notifier } from './harness.js';

let notifier: Notifier;
afterEach(async () => {
  await notifier?.close();
});

interface LogLine {
  level: 'debug' | 'warn';
  obj: Record<string, unknown>;
  msg: string;
}

function recordingLogger(): Pick<Logger, 'debug' | 'warn'> & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    debug: (obj, msg) => lines.push({ level: 'debug', obj: obj as Record<string, unknown>, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
  };
}

describe('catch-up backlog bound', () => {
  it('when more live events than maxCatchUpBacklog arrive while a replay is read, then that client is closed with 1013; one within the bound gets them all', async () => {
    const table = createEventTable();
    const replayReturns = deferred();
    notifier = await startNotifier({
      hub: { maxCatchUpBacklog: 2 },
      replayAfter: async (id) => {
        await replayReturns.promise;
        return table.after(id);
      },
    });
    const [start] = table.record(makeEvent({ orderId: 9 }));
    const everything = await connect(notifier.url({ after: start!.id }));
    const order1 = await connect(notifier.url({ after: start!.id, order_id: 1 }));
    const live = [makeEvent({ orderId: 1 }), makeEvent({ orderId: 2 }), makeEvent({ orderId: 1, sequence: 2 })];

    for (const event of live) notifier.hub.broadcast(event);
    replayReturns.resolve();

    expect(await everything.closed).toEqual({ code: 1013, reason: 'replay too slow: over 2 live events waiting; resume later' });
    expect(everything.events).toEqual([]);
    await order1.waitForEvents(2);
    expect(order1.events.map((e) => e.id)).toEqual([live[0]!.id, live[2]!.id]);
    expect(order1.ws.readyState).toBe(WebSocket.OPEN);
  });
});

describe('replay failures', () => {
  it('when reading the replay fails, then the client is told to try again later and the failure is logged with the event id', async () => {
    const logger = recordingLogger();
    const failure = new Error('database down');
    notifier = await startNotifier({ hub: { logger }, replayAfter: async () => Promise.reject(failure) });
    const after = makeEvent().id;

    const client = await connect(notifier.url({ after }));

    expect(await client.closed).toEqual({ code: 1011, reason: 'replay failed; try again later' });
    expect(logger.lines).toContainEqual({ level: 'warn', obj: { err: failure, after }, msg: 'notification replay failed' });
  });

  it('when the event id is unknown, then the close reason tells the client to reconnect without after', async () => {
    notifier = await startNotifier({ replayAfter: async () => undefined });
    const after = makeEvent().id;

    const client = await connect(notifier.url({ after }));

    expect(await client.closed).toEqual({ code: 4404, reason: `unknown event id in after: ${after}; reconnect without after` });
  });

  it('when a client resumes, then the hub counts the resume and every frame it sends, replayed or live', async () => {
    const table = createEventTable();
    notifier = await startNotifier({ replayAfter: async (id) => table.after(id) });
    const [start] = table.record(makeEvent({ orderId: 1 }), makeEvent({ orderId: 2 }), makeEvent({ orderId: 3 }));
    const plain = await connect(notifier.url());

    const resumed = await connect(notifier.url({ after: start!.id }));
    await resumed.waitForEvents(2);
    notifier.hub.broadcast(makeEvent({ orderId: 4 }));
    await resumed.waitForEvents(3);
    await plain.waitForEvents(1);

    expect(notifier.hub.stats()).toMatchObject({ clients: 2, resumes: 1, framesSent: 4 });
  });
});

describe('one broken client', () => {
  it('when sending to one client throws, then it is dropped with a warning and the others still get the event', async () => {
    const logger = recordingLogger();
    // A store that hands back a position no log could write: comparing against it throws on every live event.
    notifier = await startNotifier({ hub: { logger }, replayAfter: async () => ({ events: [], from: { xid: 'not-a-number', position: 1 } }) });
    const broken = await connect(notifier.url({ after: makeEvent().id }));
    await waitFor(() => notifier.hub.stats().resumes === 1, 2000, 'the resume');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const healthy = await connect(notifier.url());
    const event = makeEvent();

    expect(notifier.hub.broadcast(event, undefined, '5:1')).toBe('broadcast');

    expect((await healthy.waitForEvents(1))[0]?.id).toBe(event.id);
    expect((await broken.closed).code).toBe(1006);
    const warning = logger.lines.find((line) => line.level === 'warn');
    expect(warning?.msg).toBe('notification send failed; dropping the client');
    expect(warning?.obj.err).toBeInstanceOf(SyntaxError);
  });
});

describe('protocol errors and closing', () => {
  it('when a raw client breaks the protocol and never answers the close, then it is logged and terminated after the close grace period', async () => {
    const logger = recordingLogger();
    notifier = await startNotifier({ hub: { logger, closeGraceMs: 200 } });
    const raw = await rawClient(notifier.port);
    const rawClosed = once(raw, 'close');
    const startedAt = Date.now();

    // Unmasked, with a reserved opcode; the client then reads nothing, so it never answers the server's close.
    raw.write(Buffer.from([0x83, 0x05, 1, 2, 3, 4, 5]));

    await waitFor(() => notifier.hub.clientCount() === 0, 5000, 'the client to be dropped');
    expect(Date.now() - startedAt).toBeLessThan(5000);
    raw.resume();
    await rawClosed;
    const debug = logger.lines.find((line) => line.level === 'debug');
    expect(debug?.msg).toBe('notification client error');
    expect(debug?.obj.err).toBeInstanceOf(RangeError);
  });

  it('when the hub closes and a client never answers the close, then it is terminated after the default grace of 2 s', async () => {
    notifier = await startNotifier();
    const raw = await rawClient(notifier.port);
    const startedAt = Date.now();

    await notifier.hub.close();

    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(1900);
    expect(Date.now() - startedAt).toBeLessThan(4000);
    expect(notifier.hub.clientCount()).toBe(0);
    raw.destroy();
  });

  it('when a client connects after the hub closed, then it is closed with 1001 at once', async () => {
    notifier = await startNotifier();
    await notifier.hub.close();

    const client = await connect(notifier.url());

    expect(await client.closed).toEqual({ code: 1001, reason: 'server shutting down' });
    expect(notifier.hub.clientCount()).toBe(0);
  });

  it('when a socket is handed over already closed, then the hub does not count it', async () => {
    notifier = await startNotifier();
    const client = await connect(notifier.url());
    client.ws.close();
    await client.closed;

    notifier.hub.connect(client.ws);

    expect(notifier.hub.clientCount()).toBe(0);
  });

  it('when a socket is handed over with after but no way to read the replay, then connect refuses it', async () => {
    notifier = await startNotifier();
    const client = await connect(notifier.url());

    expect(() => notifier.hub.connect(client.ws, { after: makeEvent().id })).toThrow(new TypeError('connect: `after` needs `replayAfter`'));
  });
});

describe('keep-alive defaults', () => {
  it('when no ping period is given, then a client that never answers pings is not terminated within a second', async () => {
    notifier = await startNotifier();
    const silent = await connect(notifier.url(), { autoPong: false });

    await new Promise((resolve) => setTimeout(resolve, 1000));

    expect(silent.ws.readyState).toBe(WebSocket.OPEN);
    expect(notifier.hub.clientCount()).toBe(1);
  });

});

describe('send buffer bound', () => {
  it('when no bound is given, then a client that stops reading is closed with 4008 past 1 MiB', async () => {
    notifier = await startNotifier({ hub: { closeGraceMs: 10_000 } });
    const stalled = await connect(notifier.url());
    stalled.ws.pause();

    for (let orderId = 1; notifier.hub.stats().slowConsumerDisconnects === 0; orderId++) {
      if (orderId > 2000) throw new Error('no slow consumer was disconnected after 2000 large events');
      notifier.hub.broadcast(makeEvent({ orderId, padding: 64 * 1024 }));
      await new Promise((resolve) => setImmediate(resolve));
    }

    expect(notifier.hub.stats().peakBufferedBytes).toBeGreaterThan(512 * 1024);
    expect(notifier.hub.stats().peakBufferedBytes).toBeLessThanOrEqual(1024 * 1024);
    stalled.ws.resume();
    expect(await stalled.closed).toEqual({ code: 4008, reason: 'slow consumer: send buffer over 1048576 bytes' });
  });

  it('when an idle client gets one event larger than the bound, then it gets it', async () => {
    notifier = await startNotifier({ hub: { maxBufferedBytes: 1024 } });
    const client = await connect(notifier.url());
    const large = makeEvent({ padding: 8 * 1024 });

    notifier.hub.broadcast(large);

    expect((await client.waitForEvents(1))[0]?.id).toBe(large.id);
    expect(notifier.hub.stats().slowConsumerDisconnects).toBe(0);
  });

  it('when a slow consumer is still closing, then later events are neither written to it nor counted against it again', async () => {
    notifier = await startNotifier({ hub: { maxBufferedBytes: 256 * 1024, closeGraceMs: 10_000 } });
    const stalled = await connect(notifier.url());
    stalled.ws.pause();
    let orderId = 0;
    while (notifier.hub.stats().slowConsumerDisconnects === 0 && orderId < 2000) {
      notifier.hub.broadcast(makeEvent({ orderId: ++orderId, padding: 64 * 1024 }));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const framesWhenClosed = notifier.hub.stats().framesSent;

    for (let i = 0; i < 5; i++) notifier.hub.broadcast(makeEvent({ orderId: ++orderId, padding: 64 * 1024 }));

    expect(notifier.hub.clientCount()).toBe(1);
    expect(notifier.hub.stats()).toMatchObject({ slowConsumerDisconnects: 1, framesSent: framesWhenClosed });
    stalled.ws.resume();
    expect((await stalled.closed).code).toBe(4008);
  });

  it('when a buffer has drained, then the peak still reports the largest it reached', async () => {
    notifier = await startNotifier();
    const client = await connect(notifier.url());
    client.ws.pause();
    let sent = 0;
    // Until the kernel's buffers are full and the socket's own one starts to hold bytes.
    while (notifier.hub.stats().bufferedBytes === 0 && sent < 2000) {
      notifier.hub.broadcast(makeEvent({ orderId: ++sent, padding: 64 * 1024 }));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const peakSeen = notifier.hub.stats().bufferedBytes;
    client.ws.resume();
    await client.waitForEvents(sent, 10_000);
    await waitFor(() => notifier.hub.stats().bufferedBytes === 0, 5000, 'the buffer to drain');

    notifier.hub.broadcast(makeEvent({ orderId: ++sent }));
    await client.waitForEvents(sent);

    expect(peakSeen).toBeGreaterThan(0);
    expect(notifier.hub.stats().peakBufferedBytes).toBeGreaterThanOrEqual(peakSeen);
  });
});

describe('resume filters', () => {
  it('when a resuming client filters by client_email, then the replay matches it whatever the case', async () => {
    const table = createEventTable();
    notifier = await startNotifier({ replayAfter: async (id) => table.after(id) });
    const [start, jane] = table.record(makeEvent({ orderId: 1 }), makeEvent({ orderId: 2, email: 'JANE.Roe@example.COM' }), makeEvent({ orderId: 3 }));

    const client = await connect(notifier.url({ after: start!.id, client_email: 'jane.roe@Example.com' }));
    const live = makeEvent({ orderId: 2, sequence: 2, email: 'jane.roe@example.com' });
    notifier.hub.broadcast(live);

    await client.waitForEvents(2);
    expect(client.events.map((e) => e.id)).toEqual([jane!.id, live.id]);
  });
});

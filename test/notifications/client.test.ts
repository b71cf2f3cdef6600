import { createHook, type AsyncHook } from 'node:async_hooks';
import { once } from 'node:events';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { WebSocketServer, type WebSocket } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { catchUp } from '../../src/notifications/catch-up.js';
import { CLOSE_SLOW_CONSUMER, Client, fitsSendBuffer, type ClientCounters, type ClientLimits } from '../../src/notifications/client.js';
import { createWriteCoalescer, type WriteCoalescer } from '../../src/notifications/coalesce.js';
import { toOutgoing } from '../../src/notifications/frame.js';
import { createEventLedger } from '../../src/notifications/ledger.js';
import { connect, makeEvent, startNotifier, waitFor, type Notifier, type TestClient } from './harness.js';

let server: WebSocketServer | undefined;
let notifier: Notifier | undefined;
const hooks: AsyncHook[] = [];
afterEach(async () => {
  for (const hook of hooks.splice(0)) hook.disable();
  await notifier?.close();
  notifier = undefined;
  if (server) {
    for (const socket of server.clients) socket.terminate();
    await new Promise((resolve) => server!.close(resolve));
    server = undefined;
  }
});

const LIMITS: ClientLimits = { maxBufferedBytes: 1024 * 1024, closeGraceMs: 60_000, stallTimeoutMs: 10_000, maxCatchUpBacklog: 100 };

interface Pair {
  /** The server's end, which the Client under test owns. */
  socket: WebSocket;
  socketClosed: Promise<unknown>;
  peer: TestClient;
  client: Client;
  counters: ClientCounters;
}

/** A Client on the server end of a real connection (no permessage-deflate), disposed when the socket closes, as the hub does. */
async function openPair(limits: Partial<ClientLimits> = {}, coalescer?: WriteCoalescer): Promise<Pair> {
  if (!server) {
    server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(server, 'listening');
  }
  const accepted = once(server, 'connection') as Promise<[WebSocket]>;
  const peer = await connect(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
  const [socket] = await accepted;
  const counters: ClientCounters = { peakBufferedBytes: 0, slowConsumerDisconnects: 0, framesSent: 0 };
  const client = new Client(socket, {}, { ...LIMITS, ...limits }, counters, coalescer);
  const socketClosed = once(socket, 'close');
  socket.once('close', () => client.dispose());
  return { socket, socketClosed, peer, client, counters };
}

/**
 * Timers started inside `during` that have neither fired nor been cleared. async_hooks sees unref'd timers too,
 * which process.getActiveResourcesInfo() leaves out (and a grace timer is unref'd).
 */
function timerWatch() {
  const pending = new Set<number>();
  let recording = false;
  hooks.push(
    createHook({
      init(asyncId, type) {
        if (recording && type === 'Timeout') pending.add(asyncId);
      },
      destroy(asyncId) {
        pending.delete(asyncId);
      },
    }).enable(),
  );
  return {
    pending,
    during(act: () => void) {
      recording = true;
      try {
        act();
      } finally {
        recording = false;
      }
    },
  };
}

describe('the send buffer bound', () => {
  it('when the socket is idle, then any one frame fits, even one larger than the bound', () => {
    expect(fitsSendBuffer(0, 5000, 1024)).toBe(true);
    expect(fitsSendBuffer(0, 1, 0)).toBe(true);
  });

  it('when the socket holds bytes, then a frame fits up to the bound and not one byte past it', () => {
    expect(fitsSendBuffer(1, 1023, 1024)).toBe(true);
    expect(fitsSendBuffer(1, 1024, 1024)).toBe(false);
    expect(fitsSendBuffer(600, 424, 1024)).toBe(true);
    expect(fitsSendBuffer(600, 425, 1024)).toBe(false);
    expect(fitsSendBuffer(2000, 0, 1024)).toBe(false);
  });

  it('when the socket holds bytes, then a frame fits exactly when the buffer would stay within the bound', () => {
    const size = fc.integer({ min: 0, max: 1 << 30 });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1 << 30 }), size, size, (buffered, bytes, max) => {
        expect(fitsSendBuffer(buffered, bytes, max)).toBe(buffered + bytes <= max);
      }),
    );
    fc.assert(fc.property(size, size, (bytes, max) => fitsSendBuffer(0, bytes, max)));
  });

  it('when every buffered byte is held for the turn\'s one write, then any frame fits; bytes the peer has not taken count', () => {
    expect(fitsSendBuffer(900, 5000, 1024, 900)).toBe(true);
    expect(fitsSendBuffer(901, 100, 1024, 900)).toBe(true);
    expect(fitsSendBuffer(901, 124, 1024, 900)).toBe(false);
    const size = fc.integer({ min: 0, max: 1 << 30 });
    fc.assert(fc.property(size, size, size, (held, bytes, max) => fitsSendBuffer(held, bytes, max, held)));
    fc.assert(
      fc.property(size, fc.integer({ min: 1, max: 1 << 20 }), size, size, (held, waiting, bytes, max) => {
        expect(fitsSendBuffer(held + waiting, bytes, max, held)).toBe(held + waiting + bytes <= max);
      }),
    );
  });
});

describe('writing to a client whose frames are held for one write per turn', () => {
  function manualTurns() {
    const flushes: (() => void)[] = [];
    return { schedule: (flush: () => void) => void flushes.push(flush), endTurn: () => flushes.splice(0).forEach((flush) => flush()) };
  }

  it('when a turn\'s frames fill the bound exactly, then all of them are held for the one write, and the next is held after them alone', async () => {
    const turns = manualTurns();
    const coalescer = createWriteCoalescer(turns.schedule);
    const frames = [1, 2, 3].map((orderId) => toOutgoing(makeEvent({ orderId })));
    const size = frames[0]!.frame.length;
    expect(frames.map((f) => f.frame.length)).toEqual([size, size, size]);
    const { client, counters, peer, socket } = await openPair({ maxBufferedBytes: 2 * size }, coalescer);
    const raw = (socket as unknown as { _socket: net.Socket })._socket;

    expect(client.write(frames[0]!)).toBe(true);
    expect(client.write(frames[1]!)).toBe(true);
    expect(coalescer.heldBytes(raw)).toBe(2 * size);
    expect(client.write(frames[2]!)).toBe(true);
    expect(coalescer.heldBytes(raw)).toBe(size);

    turns.endTurn();
    await peer.waitForEvents(3);
    expect(peer.events.map((e) => e.order_id)).toEqual([1, 2, 3]);
    expect(counters).toMatchObject({ slowConsumerDisconnects: 0, framesSent: 3 });
  });

  it('when a turn\'s frames pass the bound together, then what is held is sent early, never passes the bound, and no frame is refused', async () => {
    const turns = manualTurns();
    const coalescer = createWriteCoalescer(turns.schedule);
    const { client, counters, peer, socket } = await openPair({ maxBufferedBytes: 1024 }, coalescer);
    const events = Array.from({ length: 10 }, (_, i) => makeEvent({ orderId: i + 1, padding: 300 }));
    const raw = (socket as unknown as { _socket: net.Socket })._socket;
    let mostHeld = 0;

    for (const event of events) {
      expect(client.write(toOutgoing(event))).toBe(true);
      mostHeld = Math.max(mostHeld, coalescer.heldBytes(raw));
    }

    expect(mostHeld).toBeGreaterThan(0);
    expect(mostHeld).toBeLessThanOrEqual(1024);
    // The last frame waits for the end of the turn.
    expect(coalescer.held()).toBe(1);
    turns.endTurn();
    await peer.waitForEvents(10);
    expect(peer.events.map((e) => e.id)).toEqual(events.map((e) => e.id));
    expect(counters).toMatchObject({ slowConsumerDisconnects: 0, framesSent: 10 });
    expect(counters.peakBufferedBytes).toBeLessThanOrEqual(1024);
  });

  it('when the peer has not taken an earlier turn\'s frames, then a frame that would pass the bound is refused with 4008', async () => {
    const turns = manualTurns();
    const { client, counters, peer, socket } = await openPair({ maxBufferedBytes: 1024 }, createWriteCoalescer(turns.schedule));
    peer.ws.pause();
    const large = makeEvent({ padding: 16 * 1024 * 1024 });
    expect(client.write(toOutgoing(large))).toBe(true);
    turns.endTurn();
    expect(socket.bufferedAmount).toBeGreaterThan(0);

    expect(client.write(toOutgoing(makeEvent({ orderId: 2 })))).toBe(false);

    expect(counters).toMatchObject({ slowConsumerDisconnects: 1, framesSent: 1 });
    turns.endTurn();
    peer.ws.resume();
    expect((await peer.closed).code).toBe(CLOSE_SLOW_CONSUMER);
    expect(peer.events.map((e) => e.id)).toEqual([large.id]);
  });
});

describe('writing to a client', () => {
  it('when the socket has closed, then write reports false and sends nothing', async () => {
    const { client, counters, peer, socketClosed } = await openPair();
    peer.ws.close();
    await socketClosed;

    expect(client.write(toOutgoing(makeEvent()))).toBe(false);

    expect(counters).toEqual({ peakBufferedBytes: 0, slowConsumerDisconnects: 0, framesSent: 0 });
  });

  it('when a frame would take a busy send buffer over the bound, then write reports false, closes with 4008 and sends nothing more', async () => {
    const { client, counters, peer, socket } = await openPair({ maxBufferedBytes: 1024 });
    peer.ws.pause();
    // Far more than the kernel takes in one write, so part of it stays in the socket's own buffer.
    const large = makeEvent({ padding: 16 * 1024 * 1024 });
    expect(client.write(toOutgoing(large))).toBe(true);
    expect(socket.bufferedAmount).toBeGreaterThan(0);

    expect(client.write(toOutgoing(makeEvent({ orderId: 2 })))).toBe(false);

    expect(counters).toMatchObject({ slowConsumerDisconnects: 1, framesSent: 1 });
    peer.ws.resume();
    expect(await peer.closed).toEqual({ code: CLOSE_SLOW_CONSUMER, reason: 'slow consumer: send buffer over 1024 bytes' });
    expect(peer.events.map((e) => e.id)).toEqual([large.id]);
  });
});

describe('closing a client: no grace timer outlives its socket', () => {
  it('when closeWith is called twice and the peer completes the close, then no timer it started is left', async () => {
    const { client, peer, socketClosed } = await openPair();
    const timers = timerWatch();

    timers.during(() => {
      client.closeWith(4000, 'first');
      client.closeWith(4001, 'second');
    });

    expect(timers.pending.size).toBeGreaterThan(0);
    expect(await peer.closed).toEqual({ code: 4000, reason: 'first' });
    await socketClosed;
    await waitFor(() => timers.pending.size === 0, 5000, 'every timer started by closeWith to be cleared');
  });

  it('when closeWith is called after the peer closed the socket, then it starts no timer', async () => {
    const { client, peer, socketClosed } = await openPair();
    peer.ws.close();
    await socketClosed;
    const timers = timerWatch();

    timers.during(() => client.closeWith(1001, 'server shutting down'));

    expect(timers.pending.size).toBe(0);
  });

  it('when the hub closes, then no timer it started is left once its clients are gone', async () => {
    notifier = await startNotifier();
    const clients = await Promise.all([connect(notifier.url()), connect(notifier.url())]);
    const timers = timerWatch();
    let closing: Promise<void> | undefined;

    timers.during(() => (closing = notifier!.hub.close()));

    expect(timers.pending.size).toBeGreaterThan(0);
    await closing;
    for (const client of clients) expect((await client.closed).code).toBe(1001);
    await waitFor(() => timers.pending.size === 0, 5000, 'every timer started by the hub close to be cleared');
  });
});

describe('replayed events a resumed client waits for', () => {
  it('when the hub has already broadcast a replayed event, then the client does not wait for it live; it waits for the others', async () => {
    const { client, peer } = await openPair();
    const ledger = createEventLedger({ recentEventIds: 10, trackedOrders: 10 });
    const broadcast = makeEvent({ orderId: 1 });
    const notYet = makeEvent({ orderId: 2 });
    ledger.admit(broadcast);

    await catchUp(client, makeEvent().id, async () => ({ events: [broadcast, notYet] }), ledger, { warn() {} });

    expect([...client.replayed.keys()]).toEqual([notYet.id]);
    await peer.waitForEvents(2);
    expect(peer.events.map((e) => e.id)).toEqual([broadcast.id, notYet.id]);
  });

  it('when the live stream passes a replayed event without it, then the hub stops holding it at the next ping, not before', async () => {
    const replayed = makeEvent({ orderId: 1 });
    notifier = await startNotifier({ hub: { pingIntervalMs: 50 }, replayAfter: async () => ({ events: [replayed] }) });
    const client = await connect(notifier.url({ after: makeEvent().id }));
    let pings = 0;
    client.ws.on('ping', () => (pings += 1));
    await client.waitForEvents(1);
    await waitFor(() => notifier!.hub.stats().replayedHeld === 1, 5000, 'the replayed event to be held');
    const pingsWhenHeld = pings;

    // A ping received after the hold began prunes; the second one after it was surely sent after it too.
    await waitFor(() => pings >= pingsWhenHeld + 2, 5000, 'two more pings');
    expect(notifier.hub.stats().replayedHeld).toBe(1);
    const later = makeEvent({ orderId: 1, sequence: 2 });
    notifier.hub.broadcast(later);

    await waitFor(() => notifier!.hub.stats().replayedHeld === 0, 5000, 'the passed event to be pruned');
    await client.waitForEvents(2);
    expect(client.events.map((e) => e.id)).toEqual([replayed.id, later.id]);
  });

  it('when a replayed event arrives live, then it is no longer held and the client does not get it twice', async () => {
    const replayed = makeEvent({ orderId: 1 });
    notifier = await startNotifier({ replayAfter: async () => ({ events: [replayed] }) });
    const client = await connect(notifier.url({ after: makeEvent().id }));
    await client.waitForEvents(1);
    await waitFor(() => notifier!.hub.stats().replayedHeld === 1, 5000, 'the replayed event to be held');

    expect(notifier.hub.broadcast(replayed)).toBe('broadcast');

    expect(notifier.hub.stats().replayedHeld).toBe(0);
    // Sent after the replayed event's live copy would have been: once it is in, a copy would be too.
    const marker = makeEvent({ orderId: 2 });
    notifier.hub.broadcast(marker);
    await client.waitForEvents(2);
    expect(client.events.map((e) => e.id)).toEqual([replayed.id, marker.id]);
  });
});

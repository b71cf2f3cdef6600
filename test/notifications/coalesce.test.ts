import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createWriteCoalescer } from '../../src/notifications/coalesce.js';
import { connect, makeEvent, startNotifier, waitFor, type Notifier } from './harness.js';

const opened: net.Socket[] = [];
const servers: net.Server[] = [];
let notifier: Notifier | undefined;
afterEach(async () => {
  for (const socket of opened.splice(0)) socket.destroy();
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
  await notifier?.close();
  notifier = undefined;
});

interface Link {
  /** The end the coalescer holds, with the writes that reached its stream implementation. */
  socket: net.Socket;
  writes: { chunks: number }[];
  /** Every byte the other end has read. */
  received(): Buffer;
  peer: net.Socket;
}

/** A real loopback TCP connection; `writes` records each write the socket hands to the kernel (one per system call). */
async function openLink(): Promise<Link> {
  const server = net.createServer();
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
  await once(socket, 'connect');
  const [peer] = await accepted;
  opened.push(socket, peer);
  const chunks: Buffer[] = [];
  peer.on('data', (chunk: Buffer) => chunks.push(chunk));
  const writes: { chunks: number }[] = [];
  const writeOne = socket._write.bind(socket);
  const writeMany = socket._writev!.bind(socket);
  socket._write = (chunk, encoding, callback) => {
    writes.push({ chunks: 1 });
    writeOne(chunk, encoding, callback);
  };
  socket._writev = (list, callback) => {
    writes.push({ chunks: list.length });
    writeMany(list, callback);
  };
  return { socket, writes, received: () => Buffer.concat(chunks), peer };
}

/** A scheduler the test runs by hand: the flush happens when the test says the turn is over. */
function manualTurns() {
  const flushes: (() => void)[] = [];
  return {
    schedule: (flush: () => void) => void flushes.push(flush),
    scheduled: () => flushes.length,
    endTurn: () => {
      for (const flush of flushes.splice(0)) flush();
    },
  };
}

describe('the write coalescer', () => {
  it('when frames are written to a held socket in one turn, then none leaves before the turn ends and all leave in order in one write', async () => {
    const link = await openLink();
    const turns = manualTurns();
    const coalescer = createWriteCoalescer(turns.schedule);
    const frames = Array.from({ length: 20 }, (_, i) => Buffer.from(`frame ${i};`));

    for (const frame of frames) coalescer.send(link.socket, frame);

    expect(link.writes).toEqual([]);
    expect(coalescer.heldBytes(link.socket)).toBe(Buffer.concat(frames).length);
    turns.endTurn();
    expect(link.writes).toEqual([{ chunks: 20 }]);
    await waitFor(() => link.received().length === Buffer.concat(frames).length, 5000, 'every frame at the peer');
    expect(link.received().toString()).toBe(frames.join(''));
    expect(coalescer.heldBytes(link.socket)).toBe(0);
  });

  it('when several sockets are held in a turn, then one flush is scheduled, each is corked once, and each is released by it', async () => {
    const [a, b] = await Promise.all([openLink(), openLink()]);
    const turns = manualTurns();
    const coalescer = createWriteCoalescer(turns.schedule);

    coalescer.send(a.socket, Buffer.from('a1'));
    coalescer.send(a.socket, Buffer.from('a2'));
    coalescer.send(b.socket, Buffer.from('b1'));

    expect(turns.scheduled()).toBe(1);
    expect(coalescer.held()).toBe(2);
    expect([a.socket.writableCorked, b.socket.writableCorked]).toEqual([1, 1]);
    turns.endTurn();
    expect([a.socket.writableCorked, b.socket.writableCorked]).toEqual([0, 0]);
    expect(coalescer.held()).toBe(0);

    coalescer.send(b.socket, Buffer.from('b2'));
    expect(turns.scheduled()).toBe(1);
    expect(b.socket.writableCorked).toBe(1);
    await waitFor(() => a.received().toString() === 'a1a2', 5000, 'a\'s frames');
  });

  it('when a socket already has bytes its peer has not taken, then only the frames sent through the coalescer count as held', async () => {
    const link = await openLink();
    link.peer.pause();
    // Far more than the kernel takes at once, so part of it stays in the socket's own buffer.
    link.socket.write(Buffer.alloc(16 * 1024 * 1024));
    const waiting = link.socket.writableLength;
    expect(waiting).toBeGreaterThan(0);
    const turns = manualTurns();
    const coalescer = createWriteCoalescer(turns.schedule);

    coalescer.send(link.socket, Buffer.alloc(100));
    coalescer.send(link.socket, Buffer.alloc(20));

    expect(coalescer.heldBytes(link.socket)).toBe(120);
    expect(link.socket.writableLength).toBe(waiting + 120);
  });

  it('when a held socket is released, then what it holds leaves at once, and the next frame is held again until the flush', async () => {
    const link = await openLink();
    const turns = manualTurns();
    const coalescer = createWriteCoalescer(turns.schedule);
    coalescer.send(link.socket, Buffer.from('one,'));
    coalescer.send(link.socket, Buffer.from('two,'));

    coalescer.release(link.socket);
    coalescer.release(link.socket);

    expect(link.writes).toEqual([{ chunks: 2 }]);
    expect([link.socket.writableCorked, coalescer.heldBytes(link.socket), coalescer.held()]).toEqual([0, 0, 0]);
    coalescer.send(link.socket, Buffer.from('three'));
    expect(link.writes).toHaveLength(1);
    turns.endTurn();
    expect(link.writes).toEqual([{ chunks: 2 }, { chunks: 1 }]);
    await waitFor(() => link.received().toString() === 'one,two,three', 5000, 'every frame at the peer');
  });

  it('when a held socket is destroyed before the turn ends, then the flush still sends the others', async () => {
    const [gone, alive] = await Promise.all([openLink(), openLink()]);
    const turns = manualTurns();
    const coalescer = createWriteCoalescer(turns.schedule);
    for (const link of [gone, alive]) coalescer.send(link.socket, Buffer.from('held'));

    gone.socket.destroy();
    turns.endTurn();

    await waitFor(() => alive.received().toString() === 'held', 5000, 'the live socket\'s frame');
    expect(coalescer.held()).toBe(0);
  });

  it('when no scheduler is given, then the held writes leave at the end of the event-loop turn', async () => {
    const link = await openLink();
    const coalescer = createWriteCoalescer();

    coalescer.send(link.socket, Buffer.from('a'));
    coalescer.send(link.socket, Buffer.from('b'));
    expect(link.writes).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));

    expect(link.writes).toEqual([{ chunks: 2 }]);
  });
});

describe('the hub writes the events of one turn together', () => {
  it('when 20 events are broadcast in one turn, then each client gets them in order and none is taken for a slow consumer, though together they pass the bound', async () => {
    notifier = await startNotifier({ hub: { maxBufferedBytes: 1024 } });
    const clients = await Promise.all([connect(notifier.url()), connect(notifier.url())]);
    const events = Array.from({ length: 20 }, (_, i) => makeEvent({ orderId: i + 1, padding: 200 }));

    for (const event of events) notifier.hub.broadcast(event);

    // Held for one write until the turn ends, and sent early whenever a client's held frames would pass the bound.
    expect(notifier.hub.stats().bufferedBytes).toBeGreaterThan(0);
    expect(notifier.hub.stats().bufferedBytes).toBeLessThanOrEqual(2 * 1024);
    for (const client of clients) {
      await client.waitForEvents(20);
      expect(client.events.map((e) => e.id)).toEqual(events.map((e) => e.id));
    }
    expect(notifier.hub.stats()).toMatchObject({ clients: 2, slowConsumerDisconnects: 0, framesSent: 40, bufferedBytes: 0 });
  });
});

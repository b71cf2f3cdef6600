import net from 'node:net';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import type { BrokerState } from '../../src/messaging/broker.js';
import { publications } from '../helpers/events.js';
import { collector, makeEvents, waitFor } from './broker-contract.js';
import { rabbitFixture } from './rabbitmq-fixture.js';
import { recordingLogger } from './recording-logger.js';

const url = inject('rabbitmqUrl');

/**
 * A proxy to RabbitMQ that holds back the first connection's traffic from the moment the client
 * starts opening `channel`, so a test can act in the middle of the setup that follows a connect.
 */
interface Gate {
  readonly port: number;
  /** Resolves once the first connection has started opening the channel and is held. */
  readonly reached: Promise<void>;
  /** Sends what was held and forwards again. */
  release(): void;
  /** Resets the held connection, as a dropped network would. */
  cut(): void;
  close(): Promise<void>;
}

async function startGate(target: { host: string; port: number }, channel: number): Promise<Gate> {
  const sockets = new Set<net.Socket>();
  let first = true;
  let held: { client: net.Socket; upstream: net.Socket; pending: Buffer[] } | undefined;
  let reach!: () => void;
  const reached = new Promise<void>((resolve) => (reach = resolve));

  const server = net.createServer((client) => {
    const upstream = net.connect(target);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => {}).on('close', () => (client.destroy(), upstream.destroy(), sockets.delete(socket)));
    }
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    const watched = first;
    first = false;
    let seen = Buffer.alloc(0);
    let nextFrame = 8; // after the protocol header
    let pending: Buffer[] | undefined;
    client.on('data', (chunk: Buffer) => {
      if (pending) return void pending.push(chunk);
      if (watched && !held) {
        const chunkStart = seen.length;
        seen = Buffer.concat([seen, chunk]);
        // AMQP frame: type (1), channel (2), size (4), payload, end byte.
        while (seen.length >= nextFrame + 7) {
          if (seen.readUInt16BE(nextFrame + 1) === channel) {
            const cut = Math.max(0, nextFrame - chunkStart);
            upstream.write(chunk.subarray(0, cut));
            pending = [chunk.subarray(cut)];
            held = { client, upstream, pending };
            reach();
            return;
          }
          nextFrame += 8 + seen.readUInt32BE(nextFrame + 3);
        }
      }
      upstream.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

  return {
    port: (server.address() as net.AddressInfo).port,
    reached,
    release() {
      for (const chunk of held!.pending.splice(0)) held!.upstream.write(chunk);
      // Later chunks go straight through: the watch is over once something was held.
      held!.client.removeAllListeners('data').on('data', (chunk: Buffer) => held!.upstream.write(chunk));
    },
    cut() {
      held!.client.resetAndDestroy();
      held!.upstream.destroy();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe.skipIf(!url)('RabbitMQ broker reconnecting and closing', () => {
  const gates: Gate[] = [];
  // Hooks run last-registered first: gates close after the fixture has closed the brokers behind them.
  afterEach(() => Promise.all(gates.splice(0).map((gate) => gate.close())));
  const rabbit = rabbitFixture(url);
  afterEach(() => void vi.useRealTimers());

  /** Adapter timers only: the network, amqplib's heartbeats and the waits of the test keep real time. */
  const fakeTimers = () => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  /** Lets every pending callback and promise run; setImmediate is never faked. */
  const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

  async function gatedBroker(channel: number, options: Parameters<typeof rabbit.newBroker>[0] = {}) {
    const target = new URL(url);
    const gate = await startGate({ host: target.hostname, port: Number(target.port || 5672) }, channel);
    gates.push(gate);
    target.port = String(gate.port);
    const logger = recordingLogger();
    const states: BrokerState[] = [];
    const { broker, exchange } = rabbit.newBroker({ url: target.toString(), logger, ...options });
    broker.onStateChange((state) => states.push(state));
    return { broker, exchange, gate, logger, states };
  }

  it('when the connection drops while its channels are being opened, then the loss is the connection closing, and it comes up again', async () => {
    const { broker, gate, logger } = await gatedBroker(1);
    await gate.reached;

    gate.cut();

    await waitFor(() => expect(logger.withMessage('lost RabbitMQ; reconnecting')).toHaveLength(1));
    expect(logger.withMessage('lost RabbitMQ; reconnecting')[0]!.obj).toMatchObject({ reason: 'connection closed' });
    await waitFor(() => expect(broker.state()).toBe('up'));
    await broker.publish(publications(makeEvents(1)));
  });

  it('when closed while its channels are being opened, then it never reports up', async () => {
    const { broker, gate, logger, states } = await gatedBroker(1);
    await gate.reached;

    const closing = broker.close();
    gate.release();
    await closing;

    expect(states).toEqual(['down']);
    expect(logger.withMessage('connected to RabbitMQ')).toEqual([]);
  });

  it('when closed while its channels are being opened and the connection then drops, then the loss is neither reported nor retried', async () => {
    const { broker, gate, logger, states } = await gatedBroker(1);
    await gate.reached;
    fakeTimers();

    const closing = broker.close();
    gate.cut();
    await closing;

    expect(logger.withMessage('lost RabbitMQ; reconnecting')).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
    expect(states).toEqual(['down']);
  });

  it('when a publish comes while the consumers are being started again, then it is refused with a clear error and nothing reaches RabbitMQ', async () => {
    const admin = await rabbit.channel();
    const exchange = rabbit.newExchange();
    const watcher = rabbit.newQueue();
    await admin.assertExchange(exchange, 'topic', { durable: true });
    await admin.assertQueue(watcher, { durable: true });
    await admin.bindQueue(watcher, exchange, '#');
    const { broker, gate } = await gatedBroker(2, { exchange, confirmTimeoutMs: 1000 });
    const early = collector();
    await broker.consume({ durable: false, prefetch: 5 }, early.handler);
    await gate.reached;

    await expect(broker.publish(publications(makeEvents(1)))).rejects.toThrow(/^RabbitMQ is connecting; events not published$/);
    // A consumer added meanwhile does not wait on the held setup: the connect in progress starts it.
    const late = collector();
    let lateConsuming = false;
    void broker.consume({ durable: false, prefetch: 5 }, late.handler).then(() => (lateConsuming = true));
    await waitFor(() => expect(lateConsuming).toBe(true), 2000);
    gate.release();
    await waitFor(() => expect(broker.state()).toBe('up'));

    expect((await admin.checkQueue(watcher)).messageCount).toBe(0);
    const events = makeEvents(2);
    await broker.publish(publications(events));
    await waitFor(() => expect(early.ids()).toEqual(events.map((e) => e.id)));
    await waitFor(() => expect(late.ids()).toEqual(events.map((e) => e.id)));
    await admin.close();
  });

  it('when closed while the handshake gets no answer, then a second close returns at once, and it never tries again', async () => {
    const { broker, proxy } = await rabbit.proxiedBroker({ connectTimeoutMs: 60_000 });
    proxy.blackhole();
    const states: BrokerState[] = [];
    broker.onStateChange((state) => states.push(state));
    await waitFor(() => expect(proxy.accepted).toBe(1));
    fakeTimers();

    const closing = broker.close();
    let closedAgain = false;
    void broker.close().then(() => (closedAgain = true));
    await waitFor(() => expect(closedAgain).toBe(true), 2000);
    proxy.cut();
    await closing;

    expect(vi.getTimerCount()).toBe(0);
    vi.runAllTimers();
    expect(states).toEqual(['down']);
  });

  it('when closed while waiting to retry, then listeners hear nothing: it was down already', async () => {
    const { broker, proxy } = await rabbit.proxiedBroker({ reconnectMinMs: 60_000, reconnectMaxMs: 60_000 });
    proxy.cut();
    await waitFor(() => expect(broker.state()).toBe('down'));
    const states: BrokerState[] = [];
    broker.onStateChange((state) => states.push(state));

    await broker.close();

    expect(states).toEqual([]);
    expect(broker.state()).toBe('down');
  });

  it('when the handshake gets no answer, then the attempt is given up after connectTimeoutMs and tried again', async () => {
    const { broker, proxy } = await rabbit.proxiedBroker({ connectTimeoutMs: 200 });
    proxy.blackhole();

    await waitFor(() => expect(proxy.accepted).toBeGreaterThanOrEqual(3));

    expect(broker.state()).not.toBe('up');
    await proxy.restore();
    await waitFor(() => expect(broker.state()).toBe('up'));
  });

  it('when a publish is confirmed and then it closes, then neither leaves a timer behind', async () => {
    const { broker } = await rabbit.upBroker();
    fakeTimers();

    await broker.publish(publications(makeEvents(3)));
    expect(vi.getTimerCount()).toBe(0);

    await broker.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('when RabbitMQ does not answer the close, then close gives up at its bound and leaves no timer', async () => {
    const { broker, proxy } = await rabbit.proxiedBroker();
    await waitFor(() => expect(broker.state()).toBe('up'));
    proxy.blackhole();
    fakeTimers();

    let closed = false;
    const closing = broker.close().then(() => (closed = true));
    await nextTurn();
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(1999);
    await nextTurn();
    expect(closed).toBe(false);
    vi.advanceTimersByTime(1);
    await closing;

    expect(broker.state()).toBe('down');
    expect(vi.getTimerCount()).toBe(0);
    await proxy.restore();
  });

  it('when its queue is deleted under a consumer, then the loss names the consumer channel', async () => {
    const logger = recordingLogger();
    const queue = rabbit.newQueue();
    const { broker } = await rabbit.upBroker({ logger });
    await broker.consume({ durable: true, queue, prefetch: 1 }, collector().handler);
    const admin = await rabbit.channel();

    await admin.deleteQueue(queue);

    await waitFor(() => expect(logger.withMessage('lost RabbitMQ; reconnecting')).toHaveLength(1));
    expect(logger.withMessage('lost RabbitMQ; reconnecting')[0]!.obj).toMatchObject({ reason: 'consumer channel lost' });
    await waitFor(() => expect(broker.state()).toBe('up'));
    await admin.close();
  });
});

import net from 'node:net';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import type { BrokerState } from '../../src/messaging/broker.js';
import { publications } from '../helpers/events.js';
import { collector, makeEvents, waitFor } from './broker-contract.js';
import { methodFrame, shortString } from './frame-injector.js';
import { rabbitFixture } from './rabbitmq-fixture.js';
import { recordingLogger } from './recording-logger.js';

const url = inject('rabbitmqUrl');

/** When a gate shuts: at the client's first frame on `channel`, or its first `classId, methodId` method there. */
interface GateTrigger {
  readonly channel: number;
  readonly method?: readonly [classId: number, methodId: number];
  /** What is held from then on: the client's frames to RabbitMQ, or RabbitMQ's frames to the client. */
  readonly hold: 'to RabbitMQ' | 'from RabbitMQ';
}

/**
 * A proxy to RabbitMQ that holds back one direction of the first connection's traffic from a given
 * frame on, so a test can act in the middle of the setup that follows a connect.
 */
interface Gate {
  readonly port: number;
  /** Resolves once the trigger frame went by and the traffic after it is held. */
  readonly reached: Promise<void>;
  /** The channels of the frames held so far. */
  heldChannels(): number[];
  /** Sends what was held in one write and forwards again. */
  release(): void;
  /** Resets the held connection, as a dropped network would. */
  cut(): void;
  /** Writes bytes to the held connection's client as if RabbitMQ sent them; with RabbitMQ's frames held, they arrive whole. */
  toClient(bytes: Buffer): void;
  close(): Promise<void>;
}

/** The channel of each frame in bytes that start at a frame: type (1), channel (2), size (4), payload, end byte. */
function frameChannels(bytes: Buffer): number[] {
  const channels: number[] = [];
  for (let at = 0; bytes.length >= at + 7; at += 8 + bytes.readUInt32BE(at + 3)) channels.push(bytes.readUInt16BE(at + 1));
  return channels;
}

async function startGate(target: { host: string; port: number }, trigger: GateTrigger): Promise<Gate> {
  const sockets = new Set<net.Socket>();
  let first = true;
  let held: { client: net.Socket; upstream: net.Socket; chunks: Buffer[]; released: boolean } | undefined;
  const holding = (client: net.Socket, direction: GateTrigger['hold']) => held?.client === client && !held.released && trigger.hold === direction;
  let reach!: () => void;
  const reached = new Promise<void>((resolve) => (reach = resolve));

  const server = net.createServer((client) => {
    const upstream = net.connect(target);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => {}).on('close', () => (client.destroy(), upstream.destroy(), sockets.delete(socket)));
    }
    upstream.on('data', (chunk: Buffer) => (holding(client, 'from RabbitMQ') ? held!.chunks.push(chunk) : client.write(chunk)));
    const watched = first;
    first = false;
    let seen = Buffer.alloc(0);
    let nextFrame = 8; // after the protocol header
    const matches = (at: number) =>
      seen.readUInt16BE(at + 1) === trigger.channel &&
      (!trigger.method || (seen.readUInt8(at) === 1 && seen.readUInt16BE(at + 7) === trigger.method[0] && seen.readUInt16BE(at + 9) === trigger.method[1]));
    client.on('data', (chunk: Buffer) => {
      if (holding(client, 'to RabbitMQ')) return void held!.chunks.push(chunk);
      if (watched && !held) {
        const chunkStart = seen.length;
        seen = Buffer.concat([seen, chunk]);
        for (; seen.length >= nextFrame + 11; nextFrame += 8 + seen.readUInt32BE(nextFrame + 3)) {
          if (!matches(nextFrame)) continue;
          // What comes before the trigger frame, or all of it when RabbitMQ's answers are what is held.
          const split = trigger.hold === 'to RabbitMQ' ? Math.max(0, nextFrame - chunkStart) : chunk.length;
          upstream.write(chunk.subarray(0, split));
          held = { client, upstream, chunks: [chunk.subarray(split)], released: false };
          reach();
          return;
        }
      }
      upstream.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

  return {
    port: (server.address() as net.AddressInfo).port,
    reached,
    heldChannels: () => frameChannels(Buffer.concat(held?.chunks ?? [])),
    release() {
      held!.released = true;
      const to = trigger.hold === 'to RabbitMQ' ? held!.upstream : held!.client;
      to.write(Buffer.concat(held!.chunks.splice(0)));
    },
    cut() {
      held!.client.resetAndDestroy();
      held!.upstream.destroy();
    },
    toClient(bytes) {
      held!.client.write(bytes);
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

  const publishChannelOpens: GateTrigger = { channel: 1, hold: 'to RabbitMQ' };

  async function gatedBroker(trigger: GateTrigger, options: Parameters<typeof rabbit.newBroker>[0] = {}) {
    const target = new URL(url);
    const gate = await startGate({ host: target.hostname, port: Number(target.port || 5672) }, trigger);
    gates.push(gate);
    target.port = String(gate.port);
    const logger = recordingLogger();
    const states: BrokerState[] = [];
    const { broker, exchange } = rabbit.newBroker({ url: target.toString(), logger, ...options });
    broker.onStateChange((state) => states.push(state));
    return { broker, exchange, gate, logger, states };
  }

  it('when the connection drops while its channels are being opened, then the loss is the connection closing, and it comes up again', async () => {
    const { broker, gate, logger } = await gatedBroker(publishChannelOpens);
    await gate.reached;

    gate.cut();

    await waitFor(() => expect(logger.withMessage('lost RabbitMQ; reconnecting')).toHaveLength(1));
    expect(logger.withMessage('lost RabbitMQ; reconnecting')[0]!.obj).toMatchObject({ reason: 'connection closed' });
    await waitFor(() => expect(broker.state()).toBe('up'));
    await broker.publish(publications(makeEvents(1)));
  });

  it('when closed while its channels are being opened, then it never reports up', async () => {
    const { broker, gate, logger, states } = await gatedBroker(publishChannelOpens);
    await gate.reached;

    const closing = broker.close();
    gate.release();
    await closing;

    expect(states).toEqual(['down']);
    expect(logger.withMessage('connected to RabbitMQ')).toEqual([]);
  });

  it('when closed while its channels are being opened and the connection then drops, then the loss is neither reported nor retried', async () => {
    const { broker, gate, logger, states } = await gatedBroker(publishChannelOpens);
    await gate.reached;
    fakeTimers();

    const closing = broker.close();
    gate.cut();
    await closing;

    expect(logger.withMessage('lost RabbitMQ; reconnecting')).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
    expect(states).toEqual(['down']);
  });

  it('when a consumer is lost just as the last one starts, then it does not report up on the lost connection', async () => {
    const queue = rabbit.newQueue();
    const lastConsumeStarts: GateTrigger = { channel: 3, method: [60, 20], hold: 'from RabbitMQ' }; // basic.consume
    const { broker, gate, logger, states } = await gatedBroker(lastConsumeStarts, { reconnectMinMs: 60_000, reconnectMaxMs: 60_000 });
    await broker.consume({ durable: true, queue, prefetch: 1 }, collector().handler);
    await broker.consume({ durable: false, prefetch: 1 }, collector().handler);
    await gate.reached;
    const admin = await rabbit.channel();
    await admin.deleteQueue(queue);
    // The first consumer's cancel and the last one's consume-ok reach the client together.
    await waitFor(() => expect(gate.heldChannels()).toEqual(expect.arrayContaining([2, 3])));

    gate.release();

    await waitFor(() => expect(logger.withMessage('lost RabbitMQ; reconnecting')).toHaveLength(1));
    expect(states).toEqual(['down']);
    expect(logger.withMessage('connected to RabbitMQ')).toEqual([]);
    await admin.close();
  });

  it('when a publish comes while the consumers are being started again, then it is refused with a clear error and nothing reaches RabbitMQ', async () => {
    const admin = await rabbit.channel();
    const exchange = rabbit.newExchange();
    const watcher = rabbit.newQueue();
    await admin.assertExchange(exchange, 'topic', { durable: true });
    await admin.assertQueue(watcher, { durable: true });
    await admin.bindQueue(watcher, exchange, '#');
    const { broker, gate } = await gatedBroker({ channel: 2, hold: 'to RabbitMQ' }, { exchange, confirmTimeoutMs: 1000 });
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

  // RabbitMQ's answers to the publish channel's opening are held, so the alarm arrives while the topology is set up.
  const publishChannelAnswers: GateTrigger = { channel: 1, hold: 'from RabbitMQ' };
  const blockedFrame = methodFrame(10, 60, shortString('low on disk'));
  const unblockedFrame = methodFrame(10, 61);

  it('when RabbitMQ blocks publishes while the connection is being set up, then it is still connecting meanwhile, and comes up blocked', async () => {
    const { broker, gate, logger, states } = await gatedBroker(publishChannelAnswers);
    await gate.reached;

    gate.toClient(blockedFrame);
    await waitFor(() => expect(logger.withMessage('RabbitMQ is blocking publishes')).toHaveLength(1));
    expect(broker.state()).toBe('connecting');
    gate.release();

    await waitFor(() => expect(logger.withMessage('connected to RabbitMQ')).toHaveLength(1));
    expect(broker.state()).toBe('blocked');
    await expect(broker.publish(publications(makeEvents(1)))).rejects.toThrow(/^RabbitMQ is blocked; events not published$/);
    gate.toClient(unblockedFrame);
    await waitFor(() => expect(broker.state()).toBe('up'));
    expect(states).toEqual(['blocked', 'up']);
  });

  it('when RabbitMQ blocks and unblocks publishes while the connection is being set up, then it comes up, never having said blocked', async () => {
    const { broker, gate, logger, states } = await gatedBroker(publishChannelAnswers);
    await gate.reached;

    gate.toClient(Buffer.concat([blockedFrame, unblockedFrame]));
    await waitFor(() => expect(logger.withMessage('RabbitMQ accepts publishes again')).toHaveLength(1));
    expect(broker.state()).toBe('connecting');
    gate.release();

    await waitFor(() => expect(broker.state()).toBe('up'));
    expect(states).toEqual(['up']);
    await broker.publish(publications(makeEvents(1)));
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

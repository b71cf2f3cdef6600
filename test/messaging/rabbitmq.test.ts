import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import amqp, { type Channel, type ChannelModel } from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { OrderEvent } from '../../src/events/envelope.js';
import type { Broker, Delivery } from '../../src/messaging/broker.js';
import { createRabbitMqBroker, type RabbitMqBrokerOptions } from '../../src/messaging/rabbitmq.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { publications } from '../helpers/events.js';
import { brokerContract, collector, makeEvents, waitFor } from './broker-contract.js';

const url = inject('rabbitmqUrl');

describe.skipIf(!url)(url ? 'RabbitMQ broker' : 'RabbitMQ broker (skipped: RabbitMQ is not reachable)', () => {
  let admin: ChannelModel;
  let channel: Channel;
  const exchanges: string[] = [];
  const queues: string[] = [];
  const brokers: Broker[] = [];
  const proxies: TcpProxy[] = [];

  beforeAll(async () => {
    admin = await amqp.connect(url);
    channel = await admin.createChannel();
  });
  afterAll(() => admin?.close());

  async function removeLeftovers(durableQueues: readonly string[] = []): Promise<void> {
    await Promise.all(brokers.splice(0).map((b) => b.close()));
    await Promise.all(proxies.splice(0).map((p) => p.close()));
    for (const queue of [...durableQueues, ...queues.splice(0)]) await channel.deleteQueue(queue);
    for (const exchange of exchanges.splice(0)) await channel.deleteExchange(exchange);
  }
  afterEach(() => removeLeftovers());

  /** A broker on an exchange of its own, so parallel test files never see each other's events. */
  function newBroker(options: Partial<RabbitMqBrokerOptions> = {}): Broker {
    const exchange = `test-orders-${randomUUID()}`;
    exchanges.push(exchange);
    const broker = createRabbitMqBroker({ url, exchange, reconnectMinMs: 50, reconnectMaxMs: 500, ...options });
    brokers.push(broker);
    return broker;
  }
  function newQueue(): string {
    const queue = `test-${randomUUID()}`;
    queues.push(queue);
    return queue;
  }
  async function upBroker(options: Partial<RabbitMqBrokerOptions> = {}): Promise<Broker> {
    const broker = newBroker(options);
    await waitFor(() => expect(broker.state()).toBe('up'));
    return broker;
  }
  async function proxiedBroker(options: Partial<RabbitMqBrokerOptions> = {}): Promise<{ broker: Broker; proxy: TcpProxy }> {
    const target = new URL(url);
    const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5672) });
    proxies.push(proxy);
    target.port = String(proxy.port);
    return { broker: newBroker({ url: target.toString(), ...options }), proxy };
  }
  const exchangeOf = (broker: Broker) => exchanges[brokers.indexOf(broker)]!;

  brokerContract('RabbitMQ', () => upBroker(), (durableQueues) => removeLeftovers(durableQueues));

  it('when publish resolves, then RabbitMQ already holds every message in the declared durable queue', async () => {
    const queue = newQueue();
    const broker = await upBroker({ declareQueues: [queue] });

    await broker.publish(publications(makeEvents(25)));

    expect((await channel.checkQueue(queue)).messageCount).toBe(25);
  });

  it('when an event is published, then it is a persistent JSON message routed by its type with its id as message id', async () => {
    const broker = await upBroker();
    const { queue } = await channel.assertQueue('', { exclusive: true });
    await channel.bindQueue(queue, exchangeOf(broker), '#');
    const [event] = makeEvents(1) as [OrderEvent];

    await broker.publish(publications([event]));

    const message = await waitFor(async () => {
      const got = await channel.get(queue, { noAck: true });
      if (!got) throw new Error('no message yet');
      return got;
    });
    expect(message.fields.routingKey).toBe('order.created');
    expect(message.properties).toMatchObject({
      messageId: event.id,
      contentType: 'application/json',
      type: 'order.created',
      deliveryMode: 2,
    });
    expect(JSON.parse(message.content.toString('utf8'))).toEqual(event);
  });

  it('when invalid messages arrive, then they are acked away and the valid event behind them is delivered', async () => {
    const broker = await upBroker();
    const queue = newQueue();
    const received = collector();
    await broker.consume({ durable: true, queue, prefetch: 1 }, received.handler);
    const [valid] = makeEvents(1) as [OrderEvent];
    const exchange = exchangeOf(broker);

    channel.publish(exchange, 'order.created', Buffer.from('not json'));
    channel.publish(exchange, 'order.created', Buffer.from(JSON.stringify({ id: 'x', type: 'order.created' })));
    channel.publish(exchange, 'order.created', Buffer.from(JSON.stringify(valid)));

    await waitFor(() => expect(received.ids()).toEqual([valid.id]));
    await waitFor(async () => expect((await channel.checkQueue(queue)).messageCount).toBe(0));
  });

  it('when RabbitMQ is unreachable at start, then publish rejects at once, and once it is reachable the consumer starts', async () => {
    const { broker, proxy } = await proxiedBroker();
    proxy.cut();
    await waitFor(() => expect(proxy.accepted).toBeGreaterThan(0));
    const received = collector();
    await broker.consume({ durable: true, queue: newQueue(), prefetch: 5 }, received.handler);

    const started = Date.now();
    await expect(broker.publish(publications(makeEvents(1)))).rejects.toThrow(/RabbitMQ is (down|connecting)/);
    expect(Date.now() - started).toBeLessThan(500);
    expect(broker.state()).not.toBe('up');

    proxy.restore();
    await waitFor(() => expect(broker.state()).toBe('up'));
    const events = makeEvents(5);
    await broker.publish(publications(events));
    await waitFor(() => expect(received.ids()).toEqual(events.map((e) => e.id)));
  });

  it('when the connection dies under a held delivery, then ack and nack do not throw and the event comes back redelivered', async () => {
    const { broker, proxy } = await proxiedBroker();
    await waitFor(() => expect(broker.state()).toBe('up'));
    const deliveries: Delivery[] = [];
    await broker.consume({ durable: true, queue: newQueue(), prefetch: 1 }, (d) => void deliveries.push(d));
    const [event] = makeEvents(1) as [OrderEvent];
    await broker.publish(publications([event]));
    await waitFor(() => expect(deliveries).toHaveLength(1));

    proxy.cut();
    await waitFor(() => expect(broker.state()).not.toBe('up'));
    expect(() => deliveries[0]!.ack()).not.toThrow();
    expect(() => deliveries[0]!.nack()).not.toThrow();
    proxy.restore();

    await waitFor(() => expect(deliveries).toHaveLength(2));
    expect(deliveries[1]!.event.id).toBe(event.id);
    expect(deliveries[1]!.redelivered).toBe(true);
    deliveries[1]!.ack();
  });

  it('when the network is cut for 3 s during a publish loop, then publishes fail while down, and after it every event is consumed', async () => {
    const { broker, proxy } = await proxiedBroker();
    await waitFor(() => expect(broker.state()).toBe('up'));
    const consumed = new Set<string>();
    await broker.consume({ durable: true, queue: newQueue(), prefetch: 20 }, (delivery) => {
      consumed.add(delivery.event.id);
      setTimeout(() => delivery.ack(), 2);
    });
    const confirmed: string[] = [];
    const statesWhileFailing = new Set<string>();
    let failures = 0;
    let running = true;
    const publishing = (async () => {
      for (let batch = 0; running && batch < 500; batch++) {
        const events = makeEvents(5);
        for (;;) {
          try {
            await broker.publish(publications(events));
            confirmed.push(...events.map((e) => e.id));
            break;
          } catch {
            failures++;
            statesWhileFailing.add(broker.state());
            await sleep(50);
          }
        }
        await sleep(20);
      }
    })();

    await sleep(700);
    proxy.cut();
    await sleep(3000);
    const confirmedBeforeRestore = confirmed.length;
    proxy.restore();
    await waitFor(() => expect(confirmed.length).toBeGreaterThan(confirmedBeforeRestore + 50));
    running = false;
    await publishing;

    expect(failures).toBeGreaterThan(0);
    expect(statesWhileFailing.has('up')).toBe(false);
    await waitFor(() => expect(confirmed.filter((id) => !consumed.has(id))).toEqual([]));
    expect(broker.state()).toBe('up');
  });

  it('when closed while reconnecting, then it stops trying', async () => {
    const { broker, proxy } = await proxiedBroker();
    proxy.cut();
    await waitFor(() => expect(proxy.accepted).toBeGreaterThan(1));

    await broker.close();
    const attempts = proxy.accepted;
    proxy.restore();
    await sleep(1000);

    expect(proxy.accepted).toBe(attempts);
    expect(broker.state()).toBe('down');
  });
});

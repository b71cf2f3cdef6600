import { randomUUID } from 'node:crypto';
import amqp, { type Channel, type ChannelModel } from 'amqplib';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import type { Broker } from '../../src/messaging/broker.js';
import { createRabbitMqBroker, type RabbitMqBrokerOptions } from '../../src/messaging/rabbitmq.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { waitFor } from './broker-contract.js';

/**
 * Brokers on exchanges of their own against the real RabbitMQ, optionally behind a TCP proxy; an
 * admin channel to arrange or inspect RabbitMQ; everything a test made is removed after it.
 */
export function rabbitFixture(url: string) {
  let admin: ChannelModel;
  const exchanges: string[] = [];
  const queues: string[] = [];
  const brokers: Broker[] = [];
  const proxies: TcpProxy[] = [];

  beforeAll(async () => {
    admin = await amqp.connect(url);
  });
  afterAll(() => admin?.close());
  afterEach(async () => {
    await Promise.all(brokers.splice(0).map((b) => b.close()));
    await Promise.all(proxies.splice(0).map((p) => p.close()));
    const channel = await admin.createChannel();
    for (const queue of queues.splice(0)) await channel.deleteQueue(queue);
    for (const exchange of exchanges.splice(0)) await channel.deleteExchange(exchange);
    await channel.close();
  });

  const fixture = {
    /** A fresh admin channel: a channel error closes only that one. */
    channel: (): Promise<Channel> => admin.createChannel(),
    newExchange(): string {
      const exchange = `test-orders-${randomUUID()}`;
      exchanges.push(exchange);
      return exchange;
    },
    newQueue(): string {
      const queue = `test-${randomUUID()}`;
      queues.push(queue);
      return queue;
    },
    newBroker(options: Partial<RabbitMqBrokerOptions> = {}): { broker: Broker; exchange: string } {
      const exchange = options.exchange ?? fixture.newExchange();
      const broker = createRabbitMqBroker({ url, reconnectMinMs: 50, reconnectMaxMs: 500, ...options, exchange });
      brokers.push(broker);
      return { broker, exchange };
    },
    async upBroker(options: Partial<RabbitMqBrokerOptions> = {}): Promise<{ broker: Broker; exchange: string }> {
      const made = fixture.newBroker(options);
      await waitFor(() => expect(made.broker.state()).toBe('up'));
      return made;
    },
    async proxiedBroker(options: Partial<RabbitMqBrokerOptions> = {}): Promise<{ broker: Broker; exchange: string; proxy: TcpProxy }> {
      const target = new URL(url);
      const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5672) });
      proxies.push(proxy);
      target.port = String(proxy.port);
      return { ...fixture.newBroker({ url: target.toString(), ...options }), proxy };
    },
  };
  return fixture;
}

import { randomUUID } from 'node:crypto';
import amqp, { type Channel, type ChannelModel } from 'amqplib';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { declareDurableQueue, durableQueueArguments } from '../../src/messaging/rabbitmq-consumer.js';
import { createOrder } from '../helpers/factories.js';
import { startTestService, type TestService } from '../helpers/service.js';

const rabbitmqUrl = inject('rabbitmqUrl');

describe('durable queue arguments', () => {
  it('when the queue is quorum, then RabbitMQ 4 gets no delivery limit (its default of 20 would drop events) and RabbitMQ 3, which reads -1 as 0, gets none', () => {
    expect(durableQueueArguments('classic', '4.1.0')).toEqual({});
    expect(durableQueueArguments('quorum', '3.13.7')).toEqual({ 'x-queue-type': 'quorum' });
    expect(durableQueueArguments('quorum', '4.0.5')).toEqual({ 'x-queue-type': 'quorum', 'x-delivery-limit': -1 });
  });
});

describe.skipIf(!rabbitmqUrl)('a quorum change-log queue on RabbitMQ', () => {
  let service: TestService | undefined;
  let connection: ChannelModel | undefined;
  afterEach(async () => {
    await service?.close();
    await connection?.close();
    service = connection = undefined;
  });
  const channel = async (): Promise<Channel> => {
    connection ??= await amqp.connect(rabbitmqUrl);
    const ch = await connection.createChannel();
    ch.on('error', () => undefined);
    return ch;
  };

  it('when RABBITMQ_CHANGELOG_QUEUE_TYPE=quorum, then the change-log queue is a quorum queue and events reach the change log through it', async () => {
    const queue = `orders.changelog.quorum.${randomUUID().slice(0, 8)}`;
    service = await startTestService({ database: 'pglite', rabbitmqUrl, env: { RABBITMQ_CHANGELOG_QUEUE: queue, RABBITMQ_CHANGELOG_QUEUE_TYPE: 'quorum' } });
    const order = await createOrder(service.app);
    await expect
      .poll(async () => (await service!.app.inject({ method: 'GET', url: `/orders/${order.id}/history` })).json<unknown[]>().length, { timeout: 15_000 })
      .toBe(1);
    // Declaring it as a classic queue is refused: RabbitMQ holds it as a quorum queue.
    await expect((await channel()).assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'classic' } })).rejects.toThrow(/x-queue-type/);
  });

  it('when the queue already exists with another type, then declaring it fails with a message that says the type is fixed and what to do', async () => {
    const queue = `orders.changelog.classic.${randomUUID().slice(0, 8)}`;
    const exchange = `orders.test.${randomUUID().slice(0, 8)}`;
    const setup = await channel();
    await setup.assertExchange(exchange, 'topic', { durable: false, autoDelete: true });
    await setup.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'classic' } });
    try {
      const version = String(connection!.connection.serverProperties.version);
      await expect(declareDurableQueue(await channel(), exchange, queue, durableQueueArguments('quorum', version))).rejects.toThrow(
        /type is fixed when it is first declared: drain and delete queue .*RABBITMQ_CHANGELOG_QUEUE/,
      );
    } finally {
      await (await channel()).deleteQueue(queue);
    }
  });
});

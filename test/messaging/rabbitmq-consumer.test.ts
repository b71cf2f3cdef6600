import { describe, expect, inject, it } from 'vitest';
import type { OrderEvent } from '../../src/events/envelope.js';
import type { Delivery } from '../../src/messaging/broker.js';
import { declareDurableQueue, durableQueueArguments } from '../../src/messaging/rabbitmq-consumer.js';
import { publications } from '../helpers/events.js';
import { collector, makeEvents, waitFor } from './broker-contract.js';
import { rabbitFixture } from './rabbitmq-fixture.js';
import { recordingLogger } from './recording-logger.js';

describe('durable queue arguments', () => {
  it('when the queue is classic, then it has no arguments', () => {
    expect(durableQueueArguments('classic', '4.0.5')).toEqual({});
  });

  it('when the queue is quorum on RabbitMQ 4 or later, then it has no delivery limit', () => {
    expect(durableQueueArguments('quorum', '4.0.5')).toEqual({ 'x-queue-type': 'quorum', 'x-delivery-limit': -1 });
    expect(durableQueueArguments('quorum', '12.1.0')).toEqual({ 'x-queue-type': 'quorum', 'x-delivery-limit': -1 });
  });

  it('when the queue is quorum on RabbitMQ 3 or an unknown version, then no delivery limit is sent', () => {
    for (const version of ['3.13.7', '', 'unknown', 'v4.0.1', '4'])
      expect(durableQueueArguments('quorum', version), version).toEqual({ 'x-queue-type': 'quorum' });
  });
});

const url = inject('rabbitmqUrl');

describe.skipIf(!url)('RabbitMQ consumer', () => {
  const rabbit = rabbitFixture(url);

  it('when a durable queue is declared, then it is bound to every order event and to nothing else', async () => {
    const exchange = rabbit.newExchange();
    const queue = rabbit.newQueue();
    const channel = await rabbit.channel();
    await channel.assertExchange(exchange, 'topic', { durable: true });

    await expect(declareDurableQueue(channel, exchange, queue)).resolves.toBe(queue);
    channel.publish(exchange, 'order.created', Buffer.from('{}'));
    channel.publish(exchange, 'order.status_changed', Buffer.from('{}'));
    channel.publish(exchange, 'product.created', Buffer.from('{}'));

    await waitFor(async () => expect((await channel.checkQueue(queue)).messageCount).toBe(2));
    await channel.close();
  });

  it('when RabbitMQ refuses a queue for another reason than its arguments, then its error is passed on unchanged', async () => {
    const exchange = rabbit.newExchange();
    const channel = await rabbit.channel();
    await channel.assertExchange(exchange, 'topic', { durable: true });
    channel.on('error', () => {}); // the refusal closes this channel

    const failure = declareDurableQueue(channel, exchange, 'amq.reserved-by-the-server');

    await expect(failure).rejects.toMatchObject({ code: 403, message: expect.stringMatching(/ACCESS_REFUSED/) });
    await expect(failure).rejects.not.toThrow(/type is fixed/);
  });

  it('when messages carry their log position and request id as strings or bytes, then deliveries read both, and ignore other kinds', async () => {
    const { broker, exchange } = await rabbit.upBroker();
    const received = collector();
    await broker.consume({ durable: false, prefetch: 5 }, received.handler);
    const [a, b, c] = makeEvents(3) as [OrderEvent, OrderEvent, OrderEvent];
    const channel = await rabbit.channel();

    channel.publish(exchange, a.type, Buffer.from(JSON.stringify(a)), { headers: { 'x-log-position': '17:1', 'x-request-id': 'req-a' } });
    channel.publish(exchange, b.type, Buffer.from(JSON.stringify(b)), { headers: { 'x-log-position': Buffer.from('18:2'), 'x-request-id': Buffer.from('req-b') } });
    channel.publish(exchange, c.type, Buffer.from(JSON.stringify(c)), { headers: { 'x-log-position': 19, 'x-request-id': true } });

    await waitFor(() => expect(received.deliveries).toHaveLength(3));
    expect(received.deliveries.map((d) => [d.logPosition, d.requestId])).toEqual([
      ['17:1', 'req-a'],
      ['18:2', 'req-b'],
      [undefined, undefined],
    ]);
    await channel.close();
  });

  it('when the broker publishes with a request id, then the consumer gets it', async () => {
    const { broker } = await rabbit.upBroker();
    const received = collector();
    await broker.consume({ durable: false, prefetch: 5 }, received.handler);
    const [a, b] = makeEvents(2) as [OrderEvent, OrderEvent];

    await broker.publish([{ ...publications([a])[0]!, requestId: 'req-1' }, publications([b])[0]!]);

    await waitFor(() => expect(received.deliveries).toHaveLength(2));
    expect(received.deliveries.map((d) => d.requestId)).toEqual(['req-1', undefined]);
  });

  it('when an invalid message is dropped, then the log names its queue, message id and why', async () => {
    const logger = recordingLogger();
    const { broker, exchange } = await rabbit.upBroker({ logger });
    const queue = rabbit.newQueue();
    await broker.consume({ durable: true, queue, prefetch: 1 }, collector().handler);
    const channel = await rabbit.channel();

    channel.publish(exchange, 'order.created', Buffer.from('not json'), { messageId: 'm-1' });

    await waitFor(() =>
      expect(logger.withMessage('dropping an invalid message')).toEqual([
        { level: 'error', obj: { queue, message_id: 'm-1', reason: 'body is not JSON' }, msg: 'dropping an invalid message' },
      ]),
    );
    await waitFor(async () => expect((await channel.checkQueue(queue)).messageCount).toBe(0));
    await channel.close();
  });

  it('when a handler fails, then the failure is logged with its queue and event id, and the event comes back after the redelivery delay', async () => {
    const logger = recordingLogger();
    const { broker } = await rabbit.upBroker({ logger, redeliveryDelayMs: 300 });
    const queue = rabbit.newQueue();
    const failure = new Error('store is down');
    const seenAt: number[] = [];
    await broker.consume({ durable: true, queue, prefetch: 1 }, (delivery: Delivery) => {
      seenAt.push(performance.now());
      if (!delivery.redelivered) throw failure;
      delivery.ack();
    });
    const [event] = makeEvents(1) as [OrderEvent];

    await broker.publish(publications([event]));

    await waitFor(() => expect(seenAt).toHaveLength(2));
    expect(seenAt[1]! - seenAt[0]!).toBeGreaterThanOrEqual(280);
    expect(logger.withMessage('consumer failed; the event will be redelivered')).toEqual([
      { level: 'error', obj: { err: failure, queue, event_id: event.id }, msg: 'consumer failed; the event will be redelivered' },
    ]);
  });

  it('when a delivery is settled twice, then only the first counts', async () => {
    const logger = recordingLogger();
    const { broker } = await rabbit.upBroker({ logger, redeliveryDelayMs: 20 });
    const queue = rabbit.newQueue();
    const seen: Delivery[] = [];
    await broker.consume({ durable: true, queue, prefetch: 1 }, (delivery) => {
      seen.push(delivery);
      delivery.ack();
      delivery.ack();
      delivery.nack();
    });
    const events = makeEvents(3);

    await broker.publish(publications(events));

    // A second ack of one tag would close the channel; a nack after the ack would bring the event back.
    await waitFor(() => expect(seen).toHaveLength(3));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(seen.map((d) => [d.event.id, d.redelivered])).toEqual(events.map((e) => [e.id, false]));
    expect(logger.withMessage('RabbitMQ consumer channel error')).toEqual([]);
    expect(logger.withMessage('lost RabbitMQ; reconnecting')).toEqual([]);
  });
});

describe.skipIf(!url)('RabbitMQ durable queue types', () => {
  const rabbit = rabbitFixture(url);

  it('when queues are to be quorum queues, then both the declared queue and a consumer queue are created as quorum queues', async () => {
    const declared = rabbit.newQueue();
    const consumed = rabbit.newQueue();
    const { broker } = await rabbit.upBroker({ declareQueues: [declared], durableQueueType: 'quorum' });
    await broker.consume({ durable: true, queue: consumed, prefetch: 1 }, collector().handler);
    const channel = await rabbit.channel();

    // Declaring again with the same arguments succeeds only if the queue already has them.
    for (const queue of [declared, consumed]) await channel.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await channel.close();
  });

  it('when no type is given, then the queues are classic', async () => {
    const declared = rabbit.newQueue();
    await rabbit.upBroker({ declareQueues: [declared] });
    const channel = await rabbit.channel();

    await channel.assertQueue(declared, { durable: true, arguments: { 'x-queue-type': 'classic' } });
    await channel.close();
  });
});

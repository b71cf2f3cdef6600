import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { OrderEvent } from '../../src/events/envelope.js';
import type { Broker, Delivery } from '../../src/messaging/broker.js';
import { makeEvent as makeEventFromSpec, publications } from '../helpers/events.js';

/** An event of one order; sequence 1 is its creation. */
export function makeEvent(orderId: number, sequence: number): OrderEvent {
  return makeEventFromSpec({ orderId, sequence });
}

/** count events spread over three orders, interleaved, each order's sequence counting from 1. */
export function makeEvents(count: number): OrderEvent[] {
  const base = Math.floor(Math.random() * 1_000_000) + 1;
  return Array.from({ length: count }, (_, i) => makeEvent(base + (i % 3), Math.floor(i / 3) + 1));
}

/** A handler that acks at once and remembers every delivery. */
export function collector(): { deliveries: Delivery[]; ids: () => string[]; handler: (d: Delivery) => void } {
  const deliveries: Delivery[] = [];
  return {
    deliveries,
    ids: () => deliveries.map((d) => d.event.id),
    handler(delivery) {
      deliveries.push(delivery);
      delivery.ack();
    },
  };
}

export const waitFor = <T>(check: () => T, timeout = 15_000): Promise<T> => vi.waitFor(check, { timeout, interval: 20 });

/**
 * The behaviour every Broker shares. makeBroker returns a broker that is up; cleanup removes the
 * durable queues a test declared. Each test closes its brokers.
 */
export function brokerContract(
  name: string,
  makeBroker: () => Promise<Broker>,
  cleanup?: (durableQueues: string[]) => Promise<void>,
): void {
  describe(`${name}: broker contract`, () => {
    const brokers: Broker[] = [];
    const queues: string[] = [];

    async function newBroker(): Promise<Broker> {
      const broker = await makeBroker();
      brokers.push(broker);
      return broker;
    }
    function durableQueue(): string {
      const queue = `test-${randomUUID()}`;
      queues.push(queue);
      return queue;
    }

    afterEach(async () => {
      await Promise.all(brokers.splice(0).map((b) => b.close()));
      await cleanup?.(queues.splice(0));
    });

    it('when events are published in batches, then durable and non-durable consumers receive them in publish order', async () => {
      const broker = await newBroker();
      const durable = collector();
      const own = collector();
      await broker.consume({ durable: true, queue: durableQueue(), prefetch: 10 }, durable.handler);
      await broker.consume({ durable: false, prefetch: 10 }, own.handler);
      const events = makeEvents(60);

      for (let i = 0; i < events.length; i += 20) await broker.publish(publications(events.slice(i, i + 20)));

      const expected = events.map((e) => e.id);
      await waitFor(() => expect(durable.ids()).toEqual(expected));
      await waitFor(() => expect(own.ids()).toEqual(expected));
      expect(durable.deliveries[5]!.event).toEqual(events[5]);
      expect(JSON.parse(durable.deliveries[5]!.body.toString('utf8'))).toEqual(events[5]);
    });

    it('when a body is published as stored, then consumers get those exact bytes (money keeps its two decimals)', async () => {
      const broker = await newBroker();
      const durable = collector();
      const own = collector();
      await broker.consume({ durable: true, queue: durableQueue(), prefetch: 10 }, durable.handler);
      await broker.consume({ durable: false, prefetch: 10 }, own.handler);
      const [event] = makeEvents(1);
      const stored = JSON.stringify(event).replace('"total_price":200', '"total_price":200.00').replace('"unit_price":100', '"unit_price":100.00');
      expect(stored).toContain('200.00');

      await broker.publish([{ id: event!.id, type: event!.type, body: Buffer.from(stored) }]);

      for (const consumer of [durable, own]) {
        await waitFor(() => expect(consumer.deliveries).toHaveLength(1));
        expect(consumer.deliveries[0]!.body.toString('utf8')).toBe(stored);
        expect(consumer.deliveries[0]!.event).toEqual(event);
      }
    });

    it('when events are published with their log positions, then each delivery carries its own, and none without', async () => {
      const broker = await newBroker();
      const durable = collector();
      const own = collector();
      await broker.consume({ durable: true, queue: durableQueue(), prefetch: 10 }, durable.handler);
      await broker.consume({ durable: false, prefetch: 10 }, own.handler);
      const [a, b, c] = makeEvents(3);

      await broker.publish(publications([a!, b!], ['17:1', '18446744073709551615:2']));
      await broker.publish(publications([c!]));

      for (const consumer of [durable, own]) {
        await waitFor(() => expect(consumer.deliveries).toHaveLength(3));
        expect(consumer.deliveries.map((d) => d.logPosition)).toEqual(['17:1', '18446744073709551615:2', undefined]);
      }
    });

    it('when a consumer starts, then it is told it is subscribed once, by the time consume resolves, and gets what is published from then on', async () => {
      const broker = await newBroker();
      const heard: string[] = [];
      const own = collector();

      await broker.consume({ durable: false, prefetch: 5, onSubscribed: () => heard.push('subscribed'), onUnsubscribed: () => heard.push('unsubscribed') }, own.handler);

      expect(heard).toEqual(['subscribed']);
      const events = makeEvents(2);
      await broker.publish(publications(events));
      await waitFor(() => expect(own.ids()).toEqual(events.map((e) => e.id)));
      expect(heard).toEqual(['subscribed']);
    });

    it('when two non-durable consumers listen, then each receives every event', async () => {
      const broker = await newBroker();
      const first = collector();
      const second = collector();
      await broker.consume({ durable: false, prefetch: 5 }, first.handler);
      await broker.consume({ durable: false, prefetch: 5 }, second.handler);
      const events = makeEvents(12);

      await broker.publish(publications(events));

      const expected = events.map((e) => e.id);
      await waitFor(() => expect(first.ids()).toEqual(expected));
      await waitFor(() => expect(second.ids()).toEqual(expected));
    });

    it('when two consumers share a durable queue, then each event goes to exactly one of them', async () => {
      const broker = await newBroker();
      const queue = durableQueue();
      const received: Record<'a' | 'b', string[]> = { a: [], b: [] };
      const slowAck = (who: 'a' | 'b') => (delivery: Delivery) => {
        received[who].push(delivery.event.id);
        setTimeout(() => delivery.ack(), 5);
      };
      await broker.consume({ durable: true, queue, prefetch: 1 }, slowAck('a'));
      await broker.consume({ durable: true, queue, prefetch: 1 }, slowAck('b'));
      const events = makeEvents(20);

      await broker.publish(publications(events));

      await waitFor(() => expect(received.a.length + received.b.length).toBe(events.length));
      await sleep(200);
      expect([...received.a, ...received.b].sort()).toEqual(events.map((e) => e.id).sort());
      expect(received.a.length).toBeGreaterThan(0);
      expect(received.b.length).toBeGreaterThan(0);
    });

    it('when a consumer nacks, then the event comes back marked redelivered before the events after it', async () => {
      const broker = await newBroker();
      const seen: Array<[string, boolean]> = [];
      const events = makeEvents(3);
      await broker.consume({ durable: true, queue: durableQueue(), prefetch: 1 }, (delivery) => {
        seen.push([delivery.event.id, delivery.redelivered]);
        if (delivery.event.id === events[0]!.id && !delivery.redelivered) delivery.nack();
        else delivery.ack();
      });

      await broker.publish(publications(events));

      const [e0, e1, e2] = events.map((e) => e.id);
      await waitFor(() => expect(seen).toEqual([[e0, false], [e0, true], [e1, false], [e2, false]]));
    });

    it('when a handler throws, then its event is redelivered', async () => {
      const broker = await newBroker();
      const seen: boolean[] = [];
      await broker.consume({ durable: true, queue: durableQueue(), prefetch: 1 }, (delivery) => {
        seen.push(delivery.redelivered);
        if (!delivery.redelivered) throw new Error('handler failed');
        delivery.ack();
      });

      await broker.publish(publications(makeEvents(1)));

      await waitFor(() => expect(seen).toEqual([false, true]));
    });

    it('when a consumer holds its deliveries, then no more than prefetch are in flight', async () => {
      const broker = await newBroker();
      const held: Delivery[] = [];
      const order: string[] = [];
      await broker.consume({ durable: true, queue: durableQueue(), prefetch: 3 }, (delivery) => {
        held.push(delivery);
        order.push(delivery.event.id);
      });
      const events = makeEvents(10);

      const published = broker.publish(publications(events));
      for (const batch of [3, 3, 3, 1]) {
        await waitFor(() => expect(held.length).toBe(batch));
        await sleep(150);
        expect(held.length).toBe(batch);
        for (const delivery of held.splice(0)) delivery.ack();
      }

      await published;
      expect(order).toEqual(events.map((e) => e.id));
    });

    it('when there is nothing to publish, then publish resolves', async () => {
      const broker = await newBroker();
      await expect(broker.publish(publications([]))).resolves.toBeUndefined();
    });

    it('when consume is given no queue name for a durable queue or a prefetch that is not a positive integer, then it rejects saying so', async () => {
      const broker = await newBroker();
      await expect(broker.consume({ durable: true, prefetch: 1 }, () => {})).rejects.toThrow(new Error('a durable consumer needs a queue name'));
      for (const prefetch of [0, -1, 1.5]) {
        await expect(broker.consume({ durable: false, prefetch }, () => {})).rejects.toThrow(
          new RangeError(`prefetch must be a positive integer, got ${prefetch}`),
        );
      }
    });

    it('when closed, then it is down and publish and consume reject', async () => {
      const broker = await newBroker();
      expect(broker.state()).toBe('up');

      await broker.close();

      expect(broker.state()).toBe('down');
      await expect(broker.publish(publications(makeEvents(1)))).rejects.toThrow(/^(in-process broker|RabbitMQ broker) is closed$/);
      await expect(broker.consume({ durable: false, prefetch: 1 }, () => {})).rejects.toThrow(/^(in-process broker|RabbitMQ broker) is closed$/);
    });
  });
}

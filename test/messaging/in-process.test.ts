import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { Broker, Delivery } from '../../src/messaging/broker.js';
import { createInProcessBroker } from '../../src/messaging/in-process.js';
import { publications } from '../helpers/events.js';
import { brokerContract, collector, makeEvents, waitFor } from './broker-contract.js';

brokerContract('in-process', async () => createInProcessBroker());

describe('in-process broker', () => {
  let broker: Broker;
  afterEach(() => broker.close());

  function settledFlag(promise: Promise<void>): { settled: boolean } {
    const flag = { settled: false };
    promise.then(
      () => (flag.settled = true),
      () => (flag.settled = true),
    );
    return flag;
  }

  it('when a durable consumer has not acked yet, then publish has not resolved', async () => {
    broker = createInProcessBroker();
    const held: Delivery[] = [];
    await broker.consume({ durable: true, queue: 'changelog', prefetch: 10 }, (d) => void held.push(d));
    const events = makeEvents(2);

    const published = broker.publish(publications(events));
    const flag = settledFlag(published);
    await waitFor(() => expect(held).toHaveLength(2));
    held[0]!.ack();
    await sleep(50);
    expect(flag.settled).toBe(false);

    held[1]!.ack();
    await expect(published).resolves.toBeUndefined();
  });

  it('when a durable consumer keeps failing past the confirm timeout, then publish rejects, its events leave the queue, and later publishes still work', async () => {
    broker = createInProcessBroker({ confirmTimeoutMs: 300, redeliveryDelayMs: 20 });
    let failing = true;
    const attempts: string[] = [];
    const acked: string[] = [];
    await broker.consume({ durable: true, queue: 'changelog', prefetch: 1 }, (d) => {
      attempts.push(d.event.id);
      if (failing) d.nack();
      else {
        acked.push(d.event.id);
        d.ack();
      }
    });
    const stuck = makeEvents(3);

    const startedAt = performance.now();
    await expect(broker.publish(publications(stuck))).rejects.toThrow(/did not take the events within 300 ms/);
    expect(performance.now() - startedAt).toBeLessThan(2_000);
    expect(attempts.length).toBeGreaterThan(1);

    failing = false;
    const later = makeEvents(2);
    await broker.publish(publications(later));
    await sleep(100);
    // The withdrawn events are not delivered again by the broker: the publisher sends them again itself.
    expect(acked).toEqual(later.map((e) => e.id));
  });

  it('when every durable queue must ack, then publish waits for the slowest one', async () => {
    broker = createInProcessBroker();
    const held: Delivery[] = [];
    await broker.consume({ durable: true, queue: 'changelog', prefetch: 1 }, collector().handler);
    await broker.consume({ durable: true, queue: 'audit', prefetch: 1 }, (d) => void held.push(d));

    const flag = settledFlag(broker.publish(publications(makeEvents(1))));
    await waitFor(() => expect(held).toHaveLength(1));
    await sleep(50);
    expect(flag.settled).toBe(false);

    held[0]!.ack();
    await waitFor(() => expect(flag.settled).toBe(true));
  });

  it('when a non-durable consumer never acks, then publish still resolves', async () => {
    broker = createInProcessBroker();
    const held: Delivery[] = [];
    await broker.consume({ durable: false, prefetch: 1 }, (d) => void held.push(d));

    await broker.publish(publications(makeEvents(3)));

    await waitFor(() => expect(held).toHaveLength(1));
  });

  it('when a durable queue is first consumed after a publish, then it gets only later events', async () => {
    broker = createInProcessBroker();
    const [early, late] = makeEvents(2);
    await broker.publish(publications([early!]));
    const changelog = collector();

    await broker.consume({ durable: true, queue: 'changelog', prefetch: 1 }, changelog.handler);
    await broker.publish(publications([late!]));

    expect(changelog.ids()).toEqual([late!.id]);
  });

  it('when closed with a publish pending, then that publish rejects and held deliveries can no longer settle', async () => {
    broker = createInProcessBroker();
    const held: Delivery[] = [];
    await broker.consume({ durable: true, queue: 'changelog', prefetch: 1 }, (d) => void held.push(d));
    const published = broker.publish(publications(makeEvents(2)));
    await waitFor(() => expect(held).toHaveLength(1));

    await broker.close();

    await expect(published).rejects.toThrow(/closed/);
    expect(() => held[0]!.ack()).not.toThrow();
  });

  it('when events fan out, then every queue gets the same body buffer, serialized once', async () => {
    broker = createInProcessBroker();
    const first = collector();
    const second = collector();
    await broker.consume({ durable: false, prefetch: 1 }, first.handler);
    await broker.consume({ durable: true, queue: 'changelog', prefetch: 1 }, second.handler);

    await broker.publish(publications(makeEvents(1)));

    expect(first.deliveries[0]!.body).toBe(second.deliveries[0]!.body);
  });

  it('when consume is given no queue name for a durable queue or a prefetch below 1, then it rejects', async () => {
    broker = createInProcessBroker();
    await expect(broker.consume({ durable: true, prefetch: 1 }, () => {})).rejects.toThrow(/queue name/);
    await expect(broker.consume({ durable: false, prefetch: 0 }, () => {})).rejects.toThrow(/prefetch/);
  });
});

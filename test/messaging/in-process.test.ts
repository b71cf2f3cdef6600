import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { Broker, Delivery } from '../../src/messaging/broker.js';
import { createInProcessBroker } from '../../src/messaging/in-process.js';
import { publications } from '../helpers/events.js';
import { brokerContract, collector, makeEvents, waitFor } from './broker-contract.js';
import { recordingLogger } from './recording-logger.js';

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

  it('when a handler throws, then the failure is logged with the event id, and the event comes back after the default redelivery delay', async () => {
    const logger = recordingLogger();
    broker = createInProcessBroker({ logger });
    const failure = new Error('store is down');
    const seenAt: number[] = [];
    await broker.consume({ durable: true, queue: 'changelog', prefetch: 1 }, (d) => {
      seenAt.push(performance.now());
      if (!d.redelivered) throw failure;
      d.ack();
    });
    const [event] = makeEvents(1);

    await broker.publish(publications([event!]));

    expect(seenAt).toHaveLength(2);
    expect(seenAt[1]! - seenAt[0]!).toBeGreaterThanOrEqual(95);
    expect(logger.withMessage('consumer failed; the event will be redelivered')).toEqual([
      { level: 'error', obj: { err: failure, event_id: event!.id }, msg: 'consumer failed; the event will be redelivered' },
    ]);
  });

  it('when a redelivery delay is given, then a nacked event waits that long, and its consumer takes nothing else meanwhile', async () => {
    broker = createInProcessBroker({ redeliveryDelayMs: 300 });
    const seen: Array<[string, number]> = [];
    const events = makeEvents(2);
    await broker.consume({ durable: true, queue: 'changelog', prefetch: 1 }, (d) => {
      seen.push([d.event.id, performance.now()]);
      if (d.event.id === events[0]!.id && !d.redelivered) d.nack();
      else d.ack();
    });

    await broker.publish(publications(events));

    expect(seen.map(([id]) => id)).toEqual([events[0]!.id, events[0]!.id, events[1]!.id]);
    expect(seen[1]![1] - seen[0]![1]).toBeGreaterThanOrEqual(295);
  });

  it('when the confirm timeout passes, then publish rejects saying so', async () => {
    broker = createInProcessBroker({ confirmTimeoutMs: 100 });
    await broker.consume({ durable: true, queue: 'changelog', prefetch: 1 }, () => {});

    await expect(broker.publish(publications(makeEvents(1)))).rejects.toThrow(
      new Error('in-process broker: the durable consumers did not take the events within 100 ms'),
    );
  });

  it('when a withdrawn event was held nacked past the confirm timeout, then it is not redelivered and the events after it still flow', async () => {
    broker = createInProcessBroker({ confirmTimeoutMs: 250, redeliveryDelayMs: 300 });
    const seen: string[] = [];
    const [stuck, later] = makeEvents(2);
    await broker.consume({ durable: true, queue: 'changelog', prefetch: 1 }, (d) => {
      seen.push(d.event.id);
      if (d.event.id === stuck!.id) d.nack();
      else d.ack();
    });

    await expect(broker.publish(publications([stuck!]))).rejects.toThrow(/did not take the events/);
    await broker.publish(publications([later!]));

    expect(seen).toEqual([stuck!.id, later!.id]);
  });

  it('when several consumers share a durable queue, then they take its events in turn', async () => {
    broker = createInProcessBroker();
    const a = collector();
    const b = collector();
    const c = collector();
    for (const consumer of [a, b, c]) await broker.consume({ durable: true, queue: 'changelog', prefetch: 10 }, consumer.handler);
    const events = makeEvents(7);

    await broker.publish(publications(events));

    const ids = events.map((e) => e.id);
    expect(a.ids()).toEqual([ids[0], ids[3], ids[6]]);
    expect(b.ids()).toEqual([ids[1], ids[4]]);
    expect(c.ids()).toEqual([ids[2], ids[5]]);
  });

  it('when closed, then a pending publish rejects saying so, and a nacked event is not redelivered', async () => {
    broker = createInProcessBroker({ redeliveryDelayMs: 20 });
    const seen: Delivery[] = [];
    await broker.consume({ durable: true, queue: 'changelog', prefetch: 1 }, (d) => {
      seen.push(d);
      d.nack();
    });
    const published = broker.publish(publications(makeEvents(1)));
    await waitFor(() => expect(seen).toHaveLength(1));

    await broker.close();
    await broker.close();

    await expect(published).rejects.toThrow(new Error('in-process broker closed before the events were consumed'));
    await sleep(100);
    expect(seen).toHaveLength(1);
    expect(broker.state()).toBe('down');
  });

  it('when a delivery is acked or nacked more than once, then only the first counts and prefetch still holds', async () => {
    broker = createInProcessBroker({ redeliveryDelayMs: 20 });
    const held: Delivery[] = [];
    const seen: string[] = [];
    await broker.consume({ durable: true, queue: 'changelog', prefetch: 1 }, (d) => {
      seen.push(d.event.id);
      held.push(d);
    });
    const events = makeEvents(3);

    void broker.publish(publications(events)).catch(() => {});
    await waitFor(() => expect(held).toHaveLength(1));
    held[0]!.ack();
    held[0]!.ack();
    held[0]!.nack();
    await waitFor(() => expect(held).toHaveLength(2));
    await sleep(100);

    // A second ack would free a second slot: two in flight with prefetch 1; the nack would bring the event back.
    expect(held).toHaveLength(2);
    expect(seen).toEqual([events[0]!.id, events[1]!.id]);
  });

  it('when one publish is withdrawn, then the events of another publish waiting in the same queue stay', async () => {
    broker = createInProcessBroker({ confirmTimeoutMs: 400 });
    const held: Delivery[] = [];
    await broker.consume({ durable: true, queue: 'changelog', prefetch: 1 }, (d) => void held.push(d));
    const [first, second] = makeEvents(2);

    const withdrawn = broker.publish(publications([first!]));
    await sleep(200);
    const kept = broker.publish(publications([second!]));
    await expect(withdrawn).rejects.toThrow(/did not take the events/);
    held[0]!.ack();

    await waitFor(() => expect(held.map((d) => d.event.id)).toEqual([first!.id, second!.id]));
    held[1]!.ack();
    await expect(kept).resolves.toBeUndefined();
  });
});

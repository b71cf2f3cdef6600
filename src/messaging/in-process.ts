import type { OrderEvent } from '../events/envelope.js';
import { silentLogger, type Logger } from '../logger.js';
import type { Broker, BrokerState, ConsumerOptions, Delivery, Publication } from './broker.js';

export interface InProcessBrokerOptions {
  /** How long a nacked delivery waits before it is offered again (default 100 ms). */
  readonly redeliveryDelayMs?: number;
  /**
   * A publish whose events the durable consumers have not all acked within this time rejects, and
   * its events leave the durable queues: the publisher still has them and sends them again (default 10 s).
   */
  readonly confirmTimeoutMs?: number;
  readonly logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
}

type Handler = (delivery: Delivery) => Promise<void> | void;

interface PendingPublish {
  remaining: number;
  /** Timed out: its messages are withdrawn, and a late ack or nack of one of them is ignored. */
  abandoned: boolean;
  resolve(): void;
  reject(error: Error): void;
}

interface Message {
  readonly seq: number;
  readonly event: OrderEvent;
  readonly body: Buffer;
  readonly logPosition: string | undefined;
  readonly requestId: string | undefined;
  readonly publish: PendingPublish | undefined;
  redelivered: boolean;
}

interface Consumer {
  readonly prefetch: number;
  readonly handler: Handler;
  inFlight: number;
}

interface Queue {
  readonly ready: Message[];
  readonly consumers: Consumer[];
  nextConsumer: number;
  nextSeq: number;
  dispatchScheduled: boolean;
}

/**
 * A broker inside this process with RabbitMQ's delivery semantics. Having nothing durable, it
 * confirms a publish only once every durable queue's consumer has acked the events.
 */
export function createInProcessBroker(options: InProcessBrokerOptions = {}): Broker {
  const redeliveryDelayMs = options.redeliveryDelayMs ?? 100;
  const confirmTimeoutMs = options.confirmTimeoutMs ?? 10_000;
  const logger = options.logger ?? silentLogger;
  const durableQueues = new Map<string, Queue>();
  const privateQueues = new Set<Queue>();
  const pendingPublishes = new Set<PendingPublish>();
  const redeliveryTimers = new Set<NodeJS.Timeout>();
  let closed = false;

  function newQueue(): Queue {
    return { ready: [], consumers: [], nextConsumer: 0, nextSeq: 0, dispatchScheduled: false };
  }

  function enqueue(queue: Queue, event: OrderEvent, publication: Publication, publish?: PendingPublish): void {
    const { body, logPosition, requestId } = publication;
    queue.ready.push({ seq: queue.nextSeq++, event, body, logPosition, requestId, publish, redelivered: false });
    scheduleDispatch(queue);
  }

  // A redelivery goes back to where it was published, as RabbitMQ does on requeue.
  function requeue(queue: Queue, message: Message): void {
    const at = queue.ready.findIndex((m) => m.seq > message.seq);
    queue.ready.splice(at === -1 ? queue.ready.length : at, 0, message);
    scheduleDispatch(queue);
  }

  // Deferred so that handlers never run inside publish(), ack() or consume().
  function scheduleDispatch(queue: Queue): void {
    // Stryker disable next-line ConditionalExpression,LogicalOperator: dispatch() stops by itself once closed
    if (queue.dispatchScheduled || closed) return;
    // Stryker disable next-line BooleanLiteral: a second dispatch finds nothing to deliver
    queue.dispatchScheduled = true;
    queueMicrotask(() => {
      queue.dispatchScheduled = false;
      dispatch(queue);
    });
  }

  function dispatch(queue: Queue): void {
    while (!closed && queue.ready.length > 0) {
      const consumer = nextFreeConsumer(queue);
      if (!consumer) return;
      deliver(queue, consumer, queue.ready.shift()!);
    }
  }

  function nextFreeConsumer(queue: Queue): Consumer | undefined {
    const count = queue.consumers.length;
    // Stryker disable next-line EqualityOperator: one more turn meets the first consumer again, busy
    for (let i = 0; i < count; i++) {
      const index = (queue.nextConsumer + i) % count;
      const consumer = queue.consumers[index]!;
      if (consumer.inFlight < consumer.prefetch) {
        queue.nextConsumer = (index + 1) % count;
        return consumer;
      }
    }
    return undefined;
  }

  function deliver(queue: Queue, consumer: Consumer, message: Message): void {
    consumer.inFlight++;
    let settled = false;
    const settle = (): boolean => {
      if (settled || closed) return false;
      settled = true;
      return true;
    };
    const delivery: Delivery = {
      event: message.event,
      body: message.body,
      redelivered: message.redelivered,
      logPosition: message.logPosition,
      requestId: message.requestId,
      ack() {
        if (!settle()) return;
        consumer.inFlight--;
        confirm(message);
        scheduleDispatch(queue);
      },
      nack() {
        if (!settle()) return;
        // Stays in flight during the delay, so a consumer that keeps failing cannot spin.
        const timer = setTimeout(() => {
          redeliveryTimers.delete(timer);
          consumer.inFlight--;
          message.redelivered = true;
          if (message.publish?.abandoned) scheduleDispatch(queue);
          else requeue(queue, message);
        }, redeliveryDelayMs);
        redeliveryTimers.add(timer);
      },
    };
    Promise.resolve()
      .then(() => consumer.handler(delivery))
      .catch((err: unknown) => {
        logger.error({ err, event_id: message.event.id }, 'consumer failed; the event will be redelivered');
        delivery.nack();
      });
  }

  function confirm(message: Message): void {
    const publish = message.publish;
    if (!publish || publish.abandoned || --publish.remaining > 0) return;
    pendingPublishes.delete(publish);
    publish.resolve();
  }

  function awaitDurableAcks(remaining: number): { publish?: PendingPublish; done: Promise<void> } {
    if (remaining === 0) return { done: Promise.resolve() };
    let publish!: PendingPublish;
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => abandon(publish), confirmTimeoutMs);
      publish = {
        remaining,
        abandoned: false,
        resolve: () => (clearTimeout(timer), resolve()),
        reject: (error) => (clearTimeout(timer), reject(error)),
      };
    });
    pendingPublishes.add(publish);
    return { publish, done };
  }

  // A consumer that cannot take its events (its store is down) must not hold the publisher forever.
  function abandon(publish: PendingPublish): void {
    publish.abandoned = true;
    pendingPublishes.delete(publish);
    for (const queue of durableQueues.values()) {
      for (let i = queue.ready.length - 1; i >= 0; i--) if (queue.ready[i]!.publish === publish) queue.ready.splice(i, 1);
    }
    publish.reject(new Error(`in-process broker: the durable consumers did not take the events within ${confirmTimeoutMs} ms`));
  }

  return {
    async publish(batch: readonly Publication[]): Promise<void> {
      if (closed) throw new Error('in-process broker is closed');
      const durable = [...durableQueues.values()];
      const { publish, done } = awaitDurableAcks(batch.length * durable.length);
      for (const publication of batch) {
        // Parsed once, as a RabbitMQ consumer would decode it; every queue shares the body and the event.
        const delivered = JSON.parse(publication.body.toString('utf8')) as OrderEvent;
        for (const queue of durable) enqueue(queue, delivered, publication, publish);
        for (const queue of privateQueues) enqueue(queue, delivered, publication);
      }
      await done;
    },

    async consume(consumerOptions: ConsumerOptions, handler: Handler): Promise<void> {
      if (closed) throw new Error('in-process broker is closed');
      const { durable, queue: name, prefetch } = consumerOptions;
      if (!Number.isInteger(prefetch) || prefetch < 1) throw new RangeError(`prefetch must be a positive integer, got ${prefetch}`);
      let queue: Queue;
      if (durable) {
        if (!name) throw new Error('a durable consumer needs a queue name');
        queue = durableQueues.get(name) ?? newQueue();
        durableQueues.set(name, queue);
      } else {
        queue = newQueue();
        privateQueues.add(queue);
      }
      queue.consumers.push({ prefetch, handler, inFlight: 0 });
      // Bound from here on, and never lost: the queue lives as long as the process.
      consumerOptions.onSubscribed?.();
      scheduleDispatch(queue);
    },

    state(): BrokerState {
      return closed ? 'down' : 'up';
    },

    // Up from creation to close; nothing waits for it to change.
    onStateChange() {},

    async close(): Promise<void> {
      // Closing again finds every timer, publish and queue already cleared.
      closed = true;
      for (const timer of redeliveryTimers) clearTimeout(timer);
      redeliveryTimers.clear();
      for (const publish of pendingPublishes) publish.reject(new Error('in-process broker closed before the events were consumed'));
      pendingPublishes.clear();
      durableQueues.clear();
      privateQueues.clear();
    },
  };
}

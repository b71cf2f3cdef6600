import type { EventType, OrderEvent } from '../events/envelope.js';

/**
 * One event as it goes out: its JSON exactly as stored (the database rendered it, money with two
 * decimals), with what routing and consumers need beside it, so nothing is parsed to publish it.
 */
export interface Publication {
  readonly id: string;
  readonly type: EventType;
  readonly body: Buffer;
  /** The event's place in the log (`xid:position`), carried to consumers in `x-log-position`. */
  readonly logPosition?: string | undefined;
  /** The request that wrote the event, carried to consumers in `x-request-id` so their logs name it. */
  readonly requestId?: string | undefined;
}

/** A publication of an event object, for publishers that hold one rather than stored JSON. */
export function publicationOf(event: OrderEvent, logPosition?: string): Publication {
  return { id: event.id, type: event.type, body: Buffer.from(JSON.stringify(event)), logPosition };
}

/**
 * A delivery handed to a consumer. The consumer calls `ack` once it has made the event durable
 * (or decided to drop it); `nack` asks for redelivery later.
 */
export interface Delivery {
  readonly event: OrderEvent;
  /** The raw JSON body as received, so fan-out code need not serialize again. */
  readonly body: Buffer;
  readonly redelivered: boolean;
  /** The event's place in the log (`xid:position`), when the publisher gave one. */
  readonly logPosition: string | undefined;
  /** The request that wrote the event, when the publisher gave one. */
  readonly requestId?: string | undefined;
  ack(): void;
  nack(): void;
}

export interface ConsumerOptions {
  /**
   * Durable, shared queues survive restarts and are shared by every instance (competing consumers); otherwise
   * the queue belongs to this process alone.
   */
  readonly durable: boolean;
  /** Queue name; required for durable queues. */
  readonly queue?: string;
  /** Unacknowledged deliveries allowed in flight. */
  readonly prefetch: number;
  /**
   * Called each time the consumer's queue is bound and consuming, at start and after every reconnect. A consumer
   * whose queue is not durable lost what was published meanwhile, and fills that gap from the log here.
   */
  readonly onSubscribed?: () => void;
  /** Called when the consumer's subscription is lost (its channel or connection ended). */
  readonly onUnsubscribed?: () => void;
}

/** `blocked`: connected, but the broker refuses publishes for now (a RabbitMQ memory or disk alarm); consuming goes on. */
export type BrokerState = 'up' | 'blocked' | 'down' | 'connecting';

export interface Broker {
  /** Publishes every event, in order, body as given; resolves only when the broker has confirmed all of them. */
  publish(batch: readonly Publication[]): Promise<void>;
  /** Starts consuming; deliveries for one order arrive in publish order. */
  consume(options: ConsumerOptions, handler: (delivery: Delivery) => Promise<void> | void): Promise<void>;
  state(): BrokerState;
  /** Calls `listener` on every change of state, so waiters resume when the broker comes back. */
  onStateChange(listener: (state: BrokerState) => void): void;
  close(): Promise<void>;
}

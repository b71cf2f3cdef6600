import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { Logger } from '../logger.js';
import type { ConsumerOptions, Delivery } from './broker.js';
import { decodeEvent } from './decode.js';

/** The message header that carries an event's place in the log. */
export const LOG_POSITION_HEADER = 'x-log-position';
/** The message header that carries the id of the request that wrote the event. */
export const REQUEST_ID_HEADER = 'x-request-id';

/** Both event types; a queue bound with it receives every order event. */
export const ORDER_EVENTS_PATTERN = 'order.*';

export type Handler = (delivery: Delivery) => Promise<void> | void;

export interface ConsumerContext {
  readonly exchange: string;
  readonly logger: Pick<Logger, 'warn' | 'error'>;
  readonly redeliveryDelayMs: number;
  /** Called when the consumer's channel ends or the server cancels it; the owner reconnects. */
  readonly onLost: () => void;
  /** Arguments of durable queues (their type). */
  readonly durableArguments: Record<string, unknown>;
}

export type DurableQueueType = 'classic' | 'quorum';

/**
 * A durable queue's arguments. A quorum queue gets no delivery limit: the change-log writer hands events
 * back while its store is away, and RabbitMQ 4 would drop a message after 20 such returns. RabbitMQ 3
 * has no limit by default and reads a negative one as 0, so the argument is sent to 4 and later only.
 */
export function durableQueueArguments(type: DurableQueueType, serverVersion: string): Record<string, unknown> {
  if (type === 'classic') return {};
  const major = Number(/^(\d+)\./.exec(serverVersion)?.[1] ?? 0);
  return { 'x-queue-type': 'quorum', ...(major >= 4 ? { 'x-delivery-limit': -1 } : {}) };
}

/** Declares and binds a durable, shared queue; returns its name. */
export async function declareDurableQueue(
  channel: Channel,
  exchange: string,
  name: string,
  args: Record<string, unknown> = {},
): Promise<string> {
  let queue: string;
  try {
    ({ queue } = await channel.assertQueue(name, { durable: true, arguments: args }));
  } catch (error) {
    // 406 PRECONDITION_FAILED: the queue exists with another type or other arguments, which never change.
    if ((error as { code?: unknown }).code !== 406) throw error;
    throw new Error(
      `${(error as Error).message}. A queue's type is fixed when it is first declared: ` +
        `drain and delete queue ${name}, or name a new one in RABBITMQ_CHANGELOG_QUEUE`,
      { cause: error },
    );
  }
  await channel.bindQueue(queue, exchange, ORDER_EVENTS_PATTERN);
  return queue;
}

async function declareQueue(channel: Channel, context: ConsumerContext, options: ConsumerOptions): Promise<string> {
  const { exchange } = context;
  if (options.durable) return declareDurableQueue(channel, exchange, options.queue!, context.durableArguments);
  // Server-named and deleted with this connection: every instance gets every event.
  // Stryker disable next-line BooleanLiteral: either flag alone removes this queue with its connection
  const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
  await channel.bindQueue(queue, exchange, ORDER_EVENTS_PATTERN);
  return queue;
}

/** Opens a channel of its own for one consumer on this connection and starts delivering to the handler. */
export async function startConsumer(
  connection: ChannelModel,
  options: ConsumerOptions,
  handler: Handler,
  context: ConsumerContext,
): Promise<void> {
  const { logger } = context;
  const channel = await connection.createChannel();
  let alive = true;
  channel.on('error', (err: unknown) => logger.warn({ err, queue: options.queue }, 'RabbitMQ consumer channel error'));
  let subscribed = false;
  channel.on('close', () => {
    alive = false;
    if (subscribed) options.onUnsubscribed?.();
    subscribed = false;
    context.onLost();
  });
  await channel.prefetch(options.prefetch);
  const queue = await declareQueue(channel, context, options);

  // An ack or nack after the channel died would throw; the server redelivers those messages anyway.
  const settleQuietly = (action: () => void): void => {
    if (!alive) return;
    try {
      action();
    } catch (err) {
      logger.warn({ err, queue }, 'could not settle a delivery; it will be redelivered');
    }
  };

  const onMessage = (message: ConsumeMessage | null): void => {
    if (message === null) {
      logger.warn({ queue }, 'RabbitMQ cancelled the consumer');
      if (subscribed) options.onUnsubscribed?.();
      subscribed = false;
      context.onLost();
      return;
    }
    const decoded = decodeEvent(message.content);
    if (!decoded.ok) {
      // Acked away so that one poison message never blocks the queue.
      logger.error({ queue, message_id: message.properties.messageId, reason: decoded.reason }, 'dropping an invalid message');
      settleQuietly(() => channel.ack(message));
      return;
    }
    let settled = false;
    const delivery: Delivery = {
      event: decoded.event,
      body: message.content,
      redelivered: message.fields.redelivered,
      logPosition: headerString(message.properties.headers?.[LOG_POSITION_HEADER]),
      requestId: headerString(message.properties.headers?.[REQUEST_ID_HEADER]),
      ack() {
        if (settled) return;
        settled = true;
        settleQuietly(() => channel.ack(message));
      },
      nack() {
        if (settled) return;
        settled = true;
        // Held for a moment so that a consumer that keeps failing does not spin.
        setTimeout(() => settleQuietly(() => channel.nack(message, false, true)), context.redeliveryDelayMs).unref();
      },
    };
    Promise.resolve()
      .then(() => handler(delivery))
      .catch((err: unknown) => {
        logger.error({ err, queue, event_id: decoded.event.id }, 'consumer failed; the event will be redelivered');
        delivery.nack();
      });
  };

  // Acknowledged one by one (amqplib's default).
  await channel.consume(queue, onMessage);
  // Stryker disable next-line ConditionalExpression: a channel that closed during consume() already reported the loss
  if (!alive) return;
  subscribed = true;
  options.onSubscribed?.();
}

// amqplib hands header strings back as Buffers when they were sent as long strings.
function headerString(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  return Buffer.isBuffer(value) ? value.toString('utf8') : undefined;
}

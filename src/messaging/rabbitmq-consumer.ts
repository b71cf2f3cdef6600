import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { ConsumerOptions, Delivery } from './broker.js';
import { decodeEvent } from './decode.js';
import type { BrokerLogger } from './logger.js';

/** The message header that carries an event's place in the log. */
export const LOG_POSITION_HEADER = 'x-log-position';
/** The message header that carries the id of the request that wrote the event. */
export const REQUEST_ID_HEADER = 'x-request-id';

/** Both event types; a queue bound with it receives every order event. */
export const ORDER_EVENTS_PATTERN = 'order.*';

export type Handler = (delivery: Delivery) => Promise<void> | void;

export interface ConsumerContext {
  readonly exchange: string;
  readonly logger: BrokerLogger;
  readonly redeliveryDelayMs: number;
  /** Called when the consumer's channel ends or the server cancels it; the owner reconnects. */
  readonly onLost: () => void;
}

/** Declares and binds a durable, shared queue; returns its name. */
export async function declareDurableQueue(channel: Channel, exchange: string, name: string): Promise<string> {
  const { queue } = await channel.assertQueue(name, { durable: true });
  await channel.bindQueue(queue, exchange, ORDER_EVENTS_PATTERN);
  return queue;
}

async function declareQueue(channel: Channel, exchange: string, options: ConsumerOptions): Promise<string> {
  if (options.durable) return declareDurableQueue(channel, exchange, options.queue!);
  // Server-named and deleted with this connection: every instance gets every event.
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
  channel.on('close', () => {
    alive = false;
    context.onLost();
  });
  await channel.prefetch(options.prefetch);
  const queue = await declareQueue(channel, context.exchange, options);

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

  await channel.consume(queue, onMessage, { noAck: false });
}

// amqplib hands header strings back as Buffers when they were sent as long strings.
function headerString(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  return Buffer.isBuffer(value) ? value.toString('utf8') : undefined;
}

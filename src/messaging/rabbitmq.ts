import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import { Backoff, jittered } from '../backoff.js';
import { EXCHANGE } from '../events/envelope.js';
import { silentLogger, type Logger } from '../logger.js';
import type { Broker, BrokerState, ConsumerOptions, Publication } from './broker.js';
import {
  declareDurableQueue,
  durableQueueArguments,
  LOG_POSITION_HEADER,
  REQUEST_ID_HEADER,
  startConsumer,
  type DurableQueueType,
  type Handler,
} from './rabbitmq-consumer.js';

export interface RabbitMqBrokerOptions {
  /** amqp:// or amqps:// URL; a `heartbeat` query parameter overrides heartbeatSeconds. */
  readonly url: string;
  /** Durable topic exchange the events go to (default `orders`). */
  readonly exchange?: string;
  readonly logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** First reconnect delay; it doubles per failed attempt up to reconnectMaxMs (defaults 100 ms, 5 s). */
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
  /** A publish not confirmed within this time rejects (default 10 s). */
  readonly confirmTimeoutMs?: number;
  /** Gives up on a TCP connect + AMQP handshake after this long (default 5 s). */
  readonly connectTimeoutMs?: number;
  /** How soon a silently dead connection is noticed: about twice this (default 10 s). */
  readonly heartbeatSeconds?: number;
  /** How long a nacked delivery is held before RabbitMQ requeues it (default 100 ms). */
  readonly redeliveryDelayMs?: number;
  /** Durable queues declared and bound on every connect, so events wait for consumers that have not started yet. */
  readonly declareQueues?: readonly string[];
  /** The type of every durable queue (default classic); quorum replicates it across a cluster. */
  readonly durableQueueType?: DurableQueueType;
}

interface ConsumerSpec {
  readonly options: ConsumerOptions;
  readonly handler: Handler;
}

/**
 * A broker on RabbitMQ that reconnects on its own. While disconnected, publish() rejects at once
 * rather than buffering: the outbox relay retries from the database.
 */
export function createRabbitMqBroker(options: RabbitMqBrokerOptions): Broker {
  const exchange = options.exchange ?? EXCHANGE;
  const logger = options.logger ?? silentLogger;
  const confirmTimeoutMs = options.confirmTimeoutMs ?? 10_000;
  const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
  const redeliveryDelayMs = options.redeliveryDelayMs ?? 100;
  const url = withHeartbeat(options.url, options.heartbeatSeconds ?? 10);
  const target = describe(options.url);
  const consumers = new Set<ConsumerSpec>();

  let state: BrokerState = 'connecting';
  const stateListeners: ((state: BrokerState) => void)[] = [];
  const setState = (next: BrokerState): void => {
    if (next === state) return;
    state = next;
    for (const listener of stateListeners) listener(next);
  };
  let connection: ChannelModel | undefined;
  let publisher: ConfirmChannel | undefined;
  let closed = false;
  const reconnects = new Backoff({ minMs: options.reconnectMinMs ?? 100, maxMs: options.reconnectMaxMs ?? 5000 });
  let retryTimer: NodeJS.Timeout | undefined;
  let connecting: Promise<void> | undefined;
  // connection.blocked can arrive while the topology is still being set up, before the state is 'up'.
  let blocked = false;

  function connectNow(): void {
    // Stryker disable next-line ArrowFunction: only close() awaits `connecting`, and a settled one is nothing
    connecting = connect().finally(() => (connecting = undefined));
  }

  async function connect(): Promise<void> {
    setState('connecting');
    let conn: ChannelModel;
    try {
      // Nagle would hold small frames (publishes, acks) back for the peer's delayed ACK: tens of ms each.
      // Stryker disable next-line BooleanLiteral: Nagle changes only when frames leave
      conn = await amqp.connect(url, { timeout: connectTimeoutMs, noDelay: true });
    } catch (err) {
      // Once per outage, not per attempt: "connected to RabbitMQ" says when it is over.
      if (reconnects.failures === 0) logger.warn({ err, target }, 'cannot connect to RabbitMQ; retrying with back-off');
      scheduleReconnect();
      return;
    }
    if (closed) return closeQuietly(conn);
    connection = conn;
    blocked = false;
    conn.on('error', (err: unknown) => logger.warn({ err, target }, 'RabbitMQ connection error'));
    conn.on('close', () => lose(conn, 'connection closed'));
    // A memory or disk alarm: publishes would wait unconfirmed, so the relay waits for 'up' instead; consumers go on.
    conn.on('blocked', (reason: unknown) => {
      logger.warn({ reason }, 'RabbitMQ is blocking publishes');
      if (connection === conn && state === 'up') setState('blocked');
      blocked = true;
    });
    conn.on('unblocked', () => {
      logger.info({}, 'RabbitMQ accepts publishes again');
      blocked = false;
      if (connection === conn && state === 'blocked') setState('up');
    });
    try {
      publisher = await openPublisher(conn);
      for (const spec of consumers) await startOn(conn, spec);
    } catch (err) {
      logger.warn({ err, target }, 'RabbitMQ topology setup failed');
      lose(conn, 'setup failed');
      return;
    }
    if (connection !== conn || closed) return;
    reconnects.reset();
    setState(blocked ? 'blocked' : 'up');
    logger.info({ target, exchange }, 'connected to RabbitMQ');
  }

  async function openPublisher(conn: ChannelModel): Promise<ConfirmChannel> {
    const channel = await conn.createConfirmChannel();
    channel.on('error', (err: unknown) => logger.warn({ err }, 'RabbitMQ publish channel error'));
    channel.on('close', () => lose(conn, 'publish channel closed'));
    // Durable: amqplib's default.
    await channel.assertExchange(exchange, 'topic');
    for (const queue of options.declareQueues ?? []) await declareDurableQueue(channel, exchange, queue, durableArgumentsOn(conn));
    return channel;
  }

  async function startOn(conn: ChannelModel, spec: ConsumerSpec): Promise<void> {
    // Each consumer meets a connection once: connect() starts consumers only before 'up', and consume() only after.
    await startConsumer(conn, spec.options, spec.handler, {
      exchange,
      logger,
      redeliveryDelayMs,
      onLost: () => lose(conn, 'consumer channel lost'),
      durableArguments: durableArgumentsOn(conn),
    });
  }

  // Any lost channel drops the whole connection: one reconnect path re-establishes everything.
  function lose(conn: ChannelModel, reason: string): void {
    if (connection !== conn) return;
    connection = undefined;
    publisher = undefined;
    void closeQuietly(conn);
    if (closed) return;
    logger.warn({ target, reason }, 'lost RabbitMQ; reconnecting');
    scheduleReconnect();
  }

  function scheduleReconnect(): void {
    if (closed || retryTimer) return;
    setState('down');
    // Jittered so that many instances do not reconnect in lockstep after an outage.
    const delay = jittered(reconnects.next());
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      connectNow();
    }, delay);
  }

  function publishOne(channel: ConfirmChannel, { id, type, body, logPosition, requestId }: Publication): Promise<void> {
    return new Promise((resolve, reject) => {
      const headers = {
        ...(logPosition ? { [LOG_POSITION_HEADER]: logPosition } : {}),
        ...(requestId ? { [REQUEST_ID_HEADER]: requestId } : {}),
      };
      const properties = { persistent: true, messageId: id, contentType: 'application/json', type, headers };
      channel.publish(exchange, type, body, properties, (err: unknown) => {
        if (err) reject(err instanceof Error ? err : new Error(String(err)));
        else resolve();
      });
    });
  }

  const durableArgumentsOn = (conn: ChannelModel) =>
    durableQueueArguments(options.durableQueueType ?? 'classic', String(conn.connection.serverProperties.version ?? ''));

  connectNow();

  return {
    async publish(batch: readonly Publication[]): Promise<void> {
      if (closed) throw new Error('RabbitMQ broker is closed');
      const channel = publisher;
      if (!channel || state !== 'up') throw new Error(`RabbitMQ is ${state}; events not published`);
      // A channel that dies mid-way rejects every unconfirmed message; a stalled one hits the timeout.
      const confirms = Promise.all(batch.map((publication) => publishOne(channel, publication)));
      await withTimeout(confirms, confirmTimeoutMs, `RabbitMQ did not confirm within ${confirmTimeoutMs} ms`);
    },

    async consume(consumerOptions: ConsumerOptions, handler: Handler): Promise<void> {
      if (closed) throw new Error('RabbitMQ broker is closed');
      const { durable, queue, prefetch } = consumerOptions;
      if (!Number.isInteger(prefetch) || prefetch < 1) throw new RangeError(`prefetch must be a positive integer, got ${prefetch}`);
      if (durable && !queue) throw new Error('a durable consumer needs a queue name');
      const spec: ConsumerSpec = { options: consumerOptions, handler };
      consumers.add(spec);
      const conn = connection;
      if (!conn || (state !== 'up' && state !== 'blocked')) return; // started by the connect in progress or the next one
      try {
        await startOn(conn, spec);
      } catch (err) {
        logger.warn({ err, queue }, 'could not start the consumer; it starts after reconnecting');
        lose(conn, 'consumer setup failed');
      }
    },

    state(): BrokerState {
      return state;
    },

    onStateChange(listener) {
      stateListeners.push(listener);
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      clearTimeout(retryTimer);
      retryTimer = undefined;
      await connecting;
      const conn = connection;
      connection = undefined;
      publisher = undefined;
      setState('down');
      if (conn) await closeQuietly(conn);
    },
  };
}

async function closeQuietly(conn: ChannelModel): Promise<void> {
  try {
    // Stryker disable next-line StringLiteral: the error is swallowed below
    await withTimeout(conn.close(), 2000, 'RabbitMQ close timed out');
  } catch {
    // Already closed or unreachable: nothing left to release.
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function withHeartbeat(url: string, seconds: number): string {
  const parsed = new URL(url);
  if (!parsed.searchParams.has('heartbeat')) parsed.searchParams.set('heartbeat', String(seconds));
  return parsed.toString();
}

// Host and port only: the URL carries credentials that must not reach the logs.
function describe(url: string): string {
  const { protocol, hostname, port } = new URL(url);
  return `${hostname}:${port || (protocol === 'amqps:' ? 5671 : 5672)}`;
}

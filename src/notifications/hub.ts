import { WebSocket } from 'ws';
import type { OrderEvent } from '../events/envelope.js';
import { silentLogger, type Logger } from '../logger.js';
import { catchUp, type ReplayAfter } from './catch-up.js';
import { Client, type ClientCounters, type ClientFilter } from './client.js';
import { createWriteCoalescer } from './coalesce.js';
import { toOutgoing } from './frame.js';
import { createEventLedger, type Verdict } from './ledger.js';

export interface NotificationHubOptions {
  /** Send buffer past which a client is disconnected with 4008 (default 1 MiB). */
  readonly maxBufferedBytes?: number;
  /** Keep-alive ping period; a client silent for a whole period is terminated (default 30 s). */
  readonly pingIntervalMs?: number;
  /** How long a closing client may take to finish the close handshake before it is terminated (default 2 s). */
  readonly closeGraceMs?: number;
  /** How long a replay waits for a full send buffer to drain before the client counts as slow (default 10 s). */
  readonly stallTimeoutMs?: number;
  /** Live events held per client while its replay is sent; past it the client is closed with 1013 (default 10,000). */
  readonly maxCatchUpBacklog?: number;
  /** Event ids remembered to drop broker redeliveries (default 50,000). */
  readonly recentEventIds?: number;
  /** Orders whose last sequence is remembered to drop stale events (default 100,000). */
  readonly trackedOrders?: number;
  readonly logger?: Pick<Logger, 'debug' | 'warn'>;
}

export interface ConnectOptions {
  readonly filter?: ClientFilter;
  /** Resume after this event id: replay what was missed before live events. */
  readonly after?: string;
  readonly replayAfter?: ReplayAfter;
}

export type BroadcastResult = 'broadcast' | Exclude<Verdict, 'new'>;

export interface HubStats {
  readonly clients: number;
  /** Bytes waiting in all clients' send buffers right now. */
  readonly bufferedBytes: number;
  /** The largest send buffer any client has reached. */
  readonly peakBufferedBytes: number;
  readonly slowConsumerDisconnects: number;
  readonly duplicatesDropped: number;
  readonly staleDropped: number;
  /** Event frames written to clients, live and replayed. */
  readonly framesSent: number;
  /** Connections that asked to resume with `after`. */
  readonly resumes: number;
  /** Replayed event ids a resumed client still expects live; pruned on every ping. */
  readonly replayedHeld: number;
}

export interface NotificationHub {
  /** Sends the event to every matching client; `body`, when given, is its JSON and is sent as is. */
  broadcast(event: OrderEvent, body?: Buffer, logPosition?: string): BroadcastResult;
  /** Takes over an open socket: filters, keep-alive, backpressure and, with `after`, the replay. */
  connect(socket: WebSocket, options?: ConnectOptions): void;
  /** Whether the event was broadcast recently (a redelivery of it would be dropped as a duplicate). */
  knows(eventId: string): boolean;
  /** Closes every client with `code`: they resume (or reload) on their own. */
  closeAll(code: number, reason: string): void;
  /** Forgets every event broadcast (the log they came from is gone) and closes every client with `code`. */
  reset(code: number, reason: string): void;
  clientCount(): number;
  stats(): HubStats;
  /** Closes every client with 1001 and resolves when all are gone. */
  close(): Promise<void>;
}

export function createNotificationHub(options: NotificationHubOptions = {}): NotificationHub {
  const limits = {
    maxBufferedBytes: options.maxBufferedBytes ?? 1024 * 1024,
    closeGraceMs: options.closeGraceMs ?? 2_000,
    stallTimeoutMs: options.stallTimeoutMs ?? 10_000,
    maxCatchUpBacklog: options.maxCatchUpBacklog ?? 10_000,
  };
  const log = options.logger ?? silentLogger;
  const newLedger = () =>
    createEventLedger({
      recentEventIds: options.recentEventIds ?? 50_000,
      trackedOrders: options.trackedOrders ?? 100_000,
    });
  let ledger = newLedger();
  const clients = new Set<Client>();
  const coalescer = createWriteCoalescer();
  const counters: ClientCounters = { peakBufferedBytes: 0, slowConsumerDisconnects: 0, framesSent: 0 };
  let resumes = 0;
  const dropped = { duplicate: 0, stale: 0 };
  let closed = false;

  const pinger = setInterval(() => {
    for (const client of clients) {
      client.heartbeat();
      client.pruneReplayed(ledger);
    }
  }, options.pingIntervalMs ?? 30_000);
  pinger.unref();

  return {
    broadcast(event, body, logPosition) {
      const verdict = ledger.admit(event);
      if (verdict !== 'new') {
        dropped[verdict] += 1;
        return verdict;
      }
      if (clients.size === 0) return 'broadcast';
      const out = toOutgoing(event, body, logPosition);
      for (const client of clients) {
        try {
          client.offer(out);
        } catch (err) {
          // One broken socket must not stop the fan-out to the others.
          log.warn({ err }, 'notification send failed; dropping the client');
          client.socket.terminate();
        }
      }
      return 'broadcast';
    },

    connect(socket, { filter = {}, after, replayAfter } = {}) {
      if (after !== undefined && replayAfter === undefined) throw new TypeError('connect: `after` needs `replayAfter`');
      const client = new Client(socket, filter, limits, counters, coalescer);
      socket.on('pong', () => {
        client.alive = true;
      });
      // ws has already started closing when it reports a protocol error; make sure the socket goes.
      socket.on('error', (err) => {
        log.debug({ err }, 'notification client error');
        // ws sent its own close frame before it emitted 'error': a reason here would never go out.
        client.closeWith(1011);
      });
      socket.once('close', () => {
        clients.delete(client);
        client.dispose();
      });
      if (closed) {
        client.closeWith(1001, 'server shutting down');
        return;
      }
      if (!client.isOpen()) return;
      clients.add(client);
      if (after !== undefined && replayAfter !== undefined) {
        resumes += 1;
        void catchUp(client, after, replayAfter, ledger, log);
      }
    },

    knows: (eventId) => ledger.knows(eventId),

    closeAll(code, reason) {
      for (const client of clients) client.closeWith(code, reason);
    },

    reset(code, reason) {
      ledger = newLedger();
      for (const client of clients) client.closeWith(code, reason);
    },

    clientCount: () => clients.size,

    stats() {
      let bufferedBytes = 0;
      let replayedHeld = 0;
      for (const client of clients) {
        bufferedBytes += client.socket.bufferedAmount;
        replayedHeld += client.replayed.size;
      }
      return {
        clients: clients.size,
        bufferedBytes,
        peakBufferedBytes: counters.peakBufferedBytes,
        slowConsumerDisconnects: counters.slowConsumerDisconnects,
        duplicatesDropped: dropped.duplicate,
        staleDropped: dropped.stale,
        framesSent: counters.framesSent,
        resumes,
        replayedHeld,
      };
    },

    async close() {
      closed = true;
      clearInterval(pinger);
      const gone = [...clients].map(
        (client) =>
          new Promise<void>((resolve) => {
            // Stryker disable next-line ConditionalExpression: never CLOSED here (ws closes and emits in one step); kept for safety
            if (client.socket.readyState === WebSocket.CLOSED) resolve();
            else client.socket.once('close', () => resolve());
            client.closeWith(1001, 'server shutting down');
          }),
      );
      await Promise.all(gone);
    },
  };
}

import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { comparePositions, type LogPosition } from '../events/log-position.js';
import type { WriteCoalescer } from './coalesce.js';
import type { Outgoing } from './frame.js';
import type { EventLedger } from './ledger.js';

export const CLOSE_SLOW_CONSUMER = 4008;

export interface ClientFilter {
  readonly orderId?: number;
  readonly clientEmail?: string;
}

export interface ClientLimits {
  readonly maxBufferedBytes: number;
  readonly closeGraceMs: number;
  readonly stallTimeoutMs: number;
  readonly maxCatchUpBacklog: number;
}

/** Shared with the hub so it can report on every client at once. */
export interface ClientCounters {
  peakBufferedBytes: number;
  slowConsumerDisconnects: number;
  framesSent: number;
}

interface ReplayedEvent {
  readonly orderId: number;
  readonly sequence: number;
}

const DRAIN_POLL_MS = 10;

/**
 * Whether a frame of `bytes` may join a send buffer holding `buffered`, of which `held` are this turn's frames
 * held for one write: a socket whose peer has taken everything else takes any frame, a busy one up to `max` in all.
 */
export function fitsSendBuffer(buffered: number, bytes: number, max: number, held = 0): boolean {
  return buffered === held || buffered + bytes <= max;
}

/** One connected socket: its filter, its send buffer bound, its keep-alive and its catch-up state. */
export class Client {
  alive = true;
  /** Live events held back while a replay is being sent; undefined once the client is live. */
  backlog: Outgoing[] | undefined;
  /** A resumed client's last event: live events at or before it in the log are ones it already had. */
  floor: LogPosition | undefined;
  /** Replayed events the hub has not broadcast yet, skipped when they arrive live. */
  readonly replayed = new Map<string, ReplayedEvent>();
  private readonly raw: Duplex | undefined;
  private readonly emailKey: string | undefined;
  private graceTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly socket: WebSocket,
    private readonly filter: ClientFilter,
    private readonly limits: ClientLimits,
    private readonly counters: ClientCounters,
    /** Holds raw writes until the end of the event-loop turn, so events broadcast together go out in one write. */
    private readonly coalescer?: WriteCoalescer,
  ) {
    this.emailKey = filter.clientEmail?.toLowerCase();
    // A pre-built frame is only valid on a socket with no extension (no permessage-deflate) to transform it.
    // Stryker disable next-line ConditionalExpression,EqualityOperator,StringLiteral: only the speed differs (no permessage-deflate here)
    this.raw = socket.extensions === '' ? (socket as unknown as { _socket?: Duplex })._socket : undefined;
  }

  isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  matches(orderId: number, emailKey: string): boolean {
    if (this.filter.orderId !== undefined && orderId !== this.filter.orderId) return false;
    return this.emailKey === undefined || emailKey === this.emailKey;
  }

  /** A live event from the hub. */
  offer(out: Outgoing): void {
    if (!this.matches(out.event.order_id, out.emailKey)) return;
    if (this.replayed.delete(out.event.id)) return;
    if (this.hadBefore(out)) return;
    if (this.backlog === undefined) {
      this.write(out);
    } else if (this.backlog.length < this.limits.maxCatchUpBacklog) {
      this.backlog.push(out);
    } else {
      this.closeWith(1013, `replay too slow: over ${this.limits.maxCatchUpBacklog} live events waiting; resume later`);
    }
  }

  /** A live event at or before a resumed client's last event in the log: it had it before it resumed. */
  hadBefore(out: Outgoing): boolean {
    return this.floor !== undefined && out.position !== undefined && comparePositions(out.position, this.floor) <= 0;
  }

  /** Sends now, or disconnects the client when the frame would take its send buffer over the bound. */
  write(out: Outgoing): boolean {
    if (!this.isOpen()) return false;
    if (!this.makeRoomFor(out.frame.length)) {
      this.counters.slowConsumerDisconnects += 1;
      this.closeWith(CLOSE_SLOW_CONSUMER, `slow consumer: send buffer over ${this.limits.maxBufferedBytes} bytes`);
      return false;
    }
    if (this.raw && this.coalescer) this.coalescer.send(this.raw, out.frame);
    else if (this.raw) this.raw.write(out.frame);
    else this.socket.send(out.payload, { binary: false });
    this.counters.framesSent += 1;
    this.counters.peakBufferedBytes = Math.max(this.counters.peakBufferedBytes, this.socket.bufferedAmount);
    return true;
  }

  /** Like write, but first waits (up to stallTimeoutMs) for room in the send buffer: replays can be long. */
  async writePaced(out: Outgoing): Promise<boolean> {
    const deadline = Date.now() + this.limits.stallTimeoutMs;
    // Stryker disable next-line EqualityOperator: `<=` waits one millisecond longer
    while (this.isOpen() && !this.makeRoomFor(out.frame.length) && Date.now() < deadline) {
      await sleep(DRAIN_POLL_MS);
    }
    return this.write(out);
  }

  /** Pings, or terminates a client that never answered the previous ping. */
  heartbeat(): void {
    if (!this.alive) {
      this.socket.terminate();
      return;
    }
    this.alive = false;
    // ws drops a ping with no data on a closing or closed socket; a server's socket is never CONNECTING, where ping throws.
    this.socket.ping();
  }

  /** Forgets replayed events the live stream has passed without them: they will never arrive. */
  pruneReplayed(ledger: EventLedger): void {
    for (const [id, { orderId, sequence }] of this.replayed) {
      if (ledger.hasPassed(orderId, sequence, id)) this.replayed.delete(id);
    }
  }

  /** Starts the close handshake and terminates the socket if it cannot finish within the grace period. */
  closeWith(code: number, reason?: string): void {
    if (this.graceTimer !== undefined || this.socket.readyState === WebSocket.CLOSED) return;
    this.backlog = undefined;
    this.socket.close(code, reason);
    this.graceTimer = setTimeout(() => this.socket.terminate(), this.limits.closeGraceMs);
    this.graceTimer.unref();
  }

  dispose(): void {
    clearTimeout(this.graceTimer);
    this.backlog = undefined;
    this.replayed.clear();
  }

  /**
   * Whether a frame of `bytes` fits the send buffer bound. Frames held for the turn's one write are sent
   * first when this one would take them past the bound, so that what is held never passes it.
   */
  private makeRoomFor(bytes: number): boolean {
    let held = 0;
    if (this.raw && this.coalescer) {
      held = this.coalescer.heldBytes(this.raw);
      if (held + bytes > this.limits.maxBufferedBytes) {
        this.coalescer.release(this.raw);
        held = 0;
      }
    }
    return fitsSendBuffer(this.socket.bufferedAmount, bytes, this.limits.maxBufferedBytes, held);
  }
}

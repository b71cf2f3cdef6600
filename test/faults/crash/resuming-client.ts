import WebSocket from 'ws';
import type { OrderEvent } from '../../../src/events/envelope.js';
import { sleep } from './http.js';
import type { ServiceLife } from './life.js';

export interface ClientOptions {
  random: () => number;
  /** A connection is closed by the client after a random time up to this... */
  maxStayMs: number;
  /** ...and the client stays away up to this long before it resumes. */
  maxAwayMs: number;
  /** How long it stays away after the first time the server goes away under it, like a phone out of coverage. */
  awayAfterFirstDropMs?: number;
}

/**
 * A WebSocket client that keeps up with every event the way docs/events.md says to: it remembers the
 * last event id it received and, whenever its connection ends (a kill, or its own choice at a
 * random moment), reconnects with `?after=` that id.
 */
export class ResumingClient {
  readonly received: OrderEvent[] = [];
  /** Connections opened with ?after=. */
  resumes = 0;
  /** Close codes other than normal closure and a killed server's 1006. */
  readonly refusals: string[] = [];
  /** Events that arrived before the previous event of their order had: each order's must come in sequence. */
  readonly outOfSequence: string[] = [];
  private readonly seen = new Set<string>();
  private readonly lastSequence = new Map<number, number>();
  private lastId: string | undefined;
  private dropped = false;
  private running = true;
  private stopping!: () => void;
  private readonly stopped = new Promise<undefined>((resolve) => (this.stopping = () => resolve(undefined)));
  private socket: WebSocket | undefined;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly life: ServiceLife,
    private readonly options: ClientOptions,
  ) {}

  /** Connects; resolves once the first connection is open. */
  async start(): Promise<void> {
    let opened!: () => void;
    const open = new Promise<void>((resolve) => (opened = resolve));
    this.loop = this.run(opened);
    await open;
  }

  has(eventId: string): boolean {
    return this.seen.has(eventId);
  }

  distinct(): number {
    return this.seen.size;
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopping();
    this.socket?.close(1000);
    await this.loop;
  }

  private async run(opened: () => void): Promise<void> {
    while (this.running) {
      const base = await Promise.race([this.life.url(), this.stopped]);
      if (!this.running || base === undefined) return;
      const code = await this.session(base, opened);
      const firstDrop = code === 1006 && !this.dropped;
      if (code === 1006) this.dropped = true;
      const away = firstDrop && this.options.awayAfterFirstDropMs !== undefined ? this.options.awayAfterFirstDropMs : this.options.random() * this.options.maxAwayMs;
      await this.sleepUnlessStopped(away);
    }
  }

  /** One connection, until the server goes away or the client leaves at a random moment. */
  private session(base: string, opened: () => void): Promise<number> {
    const after = this.lastId;
    return new Promise((resolve) => {
      const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws/notifications${after ? `?after=${after}` : ''}`);
      this.socket = ws;
      let leave: NodeJS.Timeout | undefined;
      const leaveLater = () => {
        leave = setTimeout(() => (this.lastId ? ws.close(1000) : leaveLater()), 100 + this.options.random() * this.options.maxStayMs);
      };
      ws.on('open', () => {
        if (after) this.resumes++;
        opened();
        leaveLater();
      });
      ws.on('message', (data) => this.receive(JSON.parse(String(data)) as OrderEvent));
      ws.on('unexpected-response', (_request, response) => {
        this.refusals.push(`upgrade answered ${response.statusCode}`);
        ws.terminate();
        resolve(0);
      });
      ws.on('error', () => undefined); // a close follows
      ws.on('close', (code, reason) => {
        clearTimeout(leave);
        if (code !== 1000 && code !== 1005 && code !== 1006) this.refusals.push(`closed ${code} ${String(reason)} (after=${after})`);
        resolve(code);
      });
    });
  }

  private async sleepUnlessStopped(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (this.running && Date.now() < until) await sleep(Math.min(100, until - Date.now()));
  }

  private receive(event: OrderEvent): void {
    this.received.push(event);
    this.lastId = event.id;
    if (this.seen.has(event.id)) return;
    this.seen.add(event.id);
    const previous = this.lastSequence.get(event.order_id) ?? 0;
    if (event.sequence !== previous + 1 && this.outOfSequence.length < 20) {
      this.outOfSequence.push(`order ${event.order_id}: sequence ${event.sequence} after ${previous}`);
    }
    this.lastSequence.set(event.order_id, Math.max(previous, event.sequence));
  }
}

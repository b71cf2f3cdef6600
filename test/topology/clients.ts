import WebSocket from 'ws';
import type { OrderEvent } from '../../src/events/envelope.js';
import { sleep } from '../faults/crash/http.js';

/** The notifier could not fill a gap its queue left: resume with `after` the last event received. */
export const CLOSE_RESUME = 4010;
/** The close code that tells a client its resume point can no longer be honoured: reload, then follow live. */
export const CLOSE_RELOAD = 4011;
/** `after` names an event no longer kept. */
export const CLOSE_UNKNOWN_EVENT = 4404;

export interface ClientOptions {
  random: () => number;
  /** A connection is closed by the client itself after a random time up to this (0: never)... */
  maxStayMs: number;
  /** ...and it stays away up to this long before it resumes. */
  maxAwayMs: number;
}

/** The events of one stretch between reloads: from the first connection, or from a reload on. */
export interface Segment {
  /** True for the first stretch: the client was there before any event it must have. */
  readonly fromStart: boolean;
  readonly events: OrderEvent[];
  readonly ids: Set<string>;
}

/**
 * A WebSocket client that follows docs/events.md: it remembers the last event id it received and,
 * whenever its socket drops (a kill, a cut, 4010, or its own choice), reconnects with `?after=` that id.
 * While the notifier answers `503 notifier_not_ready` it waits Retry-After and tries again. Closed
 * with 4011 (or 4404) it reloads: reconnects without `after`, and from there on is held only to
 * what it received after the reload.
 */
export class TopologyClient {
  readonly segments: Segment[] = [{ fromStart: true, events: [], ids: new Set() }];
  resumes = 0;
  reloads = 0;
  notReady = 0;
  notReadyWithoutRetryAfter = 0;
  /** Sockets that ended other than by the client (1006, 1001, 1011 ...): each needed a resume. */
  drops = 0;
  /** Answers and close codes docs/events.md does not allow here. */
  readonly problems: string[] = [];
  /** Every connection: where its events start in `received`, what it resumed after, how it ended. */
  readonly connections: { firstIndex: number; after: string | undefined; closedWith?: number }[] = [];
  /** The close codes seen, for figures. */
  readonly closeCodes = new Map<number, number>();
  private lastId: string | undefined;
  private running = true;
  private stopping!: () => void;
  private readonly stopped = new Promise<undefined>((resolve) => (this.stopping = () => resolve(undefined)));
  private socket: WebSocket | undefined;
  private loop: Promise<void> | undefined;

  constructor(
    readonly name: string,
    private readonly notifierUrl: () => Promise<string>,
    private readonly options: ClientOptions,
  ) {}

  /** Connects; resolves once the first connection is open (bounded by the caller). */
  async start(): Promise<void> {
    let opened!: () => void;
    const open = new Promise<void>((resolve) => (opened = resolve));
    this.loop = this.run(opened);
    await open;
  }

  get received(): OrderEvent[] {
    return this.segments.flatMap((s) => s.events);
  }

  get current(): Segment {
    return this.segments.at(-1)!;
  }

  has(eventId: string): boolean {
    return this.current.ids.has(eventId);
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopping();
    this.socket?.close(1000);
    await this.loop;
  }

  private async run(opened: () => void): Promise<void> {
    while (this.running) {
      const base = await Promise.race([this.notifierUrl(), this.stopped]);
      if (!this.running || base === undefined) return;
      const outcome = await this.session(base, opened);
      if (outcome.reload) {
        this.reloads++;
        this.lastId = undefined;
        this.segments.push({ fromStart: false, events: [], ids: new Set() });
      }
      await this.sleepUnlessStopped(outcome.waitMs);
    }
  }

  /** One connection, until the server ends it or the client leaves at a random moment. */
  private session(base: string, opened: () => void): Promise<{ reload: boolean; waitMs: number }> {
    const after = this.lastId;
    const away = () => this.options.random() * this.options.maxAwayMs;
    return new Promise((resolve) => {
      const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws/notifications${after ? `?after=${after}` : ''}`);
      this.socket = ws;
      let leave: NodeJS.Timeout | undefined;
      let leftByChoice = false;
      let refused = false;
      ws.on('open', () => {
        if (after) this.resumes++;
        this.connections.push({ firstIndex: this.received.length, after });
        opened();
        if (this.options.maxStayMs > 0) {
          leave = setTimeout(() => {
            leftByChoice = true;
            ws.close(1000);
          }, 200 + this.options.random() * this.options.maxStayMs);
        }
      });
      ws.on('message', (data) => {
        const event = JSON.parse(String(data)) as OrderEvent;
        this.current.events.push(event);
        this.current.ids.add(event.id);
        this.lastId = event.id;
      });
      ws.on('unexpected-response', (_request, response) => {
        refused = true;
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString()));
        response.on('end', () => {
          refused = true;
          ws.terminate();
          const code = /"code"\s*:\s*"([^"]+)"/.exec(text)?.[1];
          if (response.statusCode === 503 && code === 'notifier_not_ready') {
            this.notReady++;
            const retryAfter = Number(response.headers['retry-after']);
            if (!(retryAfter > 0)) this.notReadyWithoutRetryAfter++;
            resolve({ reload: false, waitMs: Math.min(retryAfter > 0 ? retryAfter * 1000 : 500, 1_000) });
            return;
          }
          if (this.problems.length < 20) this.problems.push(`upgrade answered ${response.statusCode} ${code ?? text.slice(0, 100)} (after=${after})`);
          resolve({ reload: false, waitMs: 200 });
        });
        response.on('error', () => resolve({ reload: false, waitMs: 200 }));
        response.on('close', () => resolve({ reload: false, waitMs: 200 }));
      });
      ws.on('error', () => undefined); // a close follows
      ws.on('close', (code, reason) => {
        clearTimeout(leave);
        if (refused) return;
        const connection = this.connections.at(-1);
        if (connection && connection.closedWith === undefined) connection.closedWith = code;
        this.closeCodes.set(code, (this.closeCodes.get(code) ?? 0) + 1);
        if (!leftByChoice && this.running) this.drops++;
        const reload = code === CLOSE_RELOAD || code === CLOSE_UNKNOWN_EVENT;
        // 4404 is for ids no longer kept (days): here it means a resume point was lost.
        if (code === CLOSE_UNKNOWN_EVENT && this.problems.length < 20) this.problems.push(`closed 4404 ${String(reason)} (after=${after})`);
        if (![1000, 1001, 1005, 1006, 1011, 1012, 1013, CLOSE_RESUME, CLOSE_RELOAD, CLOSE_UNKNOWN_EVENT].includes(code) && this.problems.length < 20) {
          this.problems.push(`closed ${code} ${String(reason)} (after=${after})`);
        }
        resolve({ reload, waitMs: leftByChoice ? away() : 100 });
      });
    });
  }

  /** Where a missed event lies: the received events around it in log order, and the connections they came on. */
  explainGap(rank: number, rankOf: Map<string, number>): string {
    const received = this.received;
    let before: number | undefined;
    let after: number | undefined;
    received.forEach((event, i) => {
      const r = rankOf.get(event.id);
      if (r === undefined) return;
      if (r < rank && (before === undefined || r > rankOf.get(received[before]!.id)!)) before = i;
      if (r > rank && (after === undefined || r < rankOf.get(received[after]!.id)!)) after = i;
    });
    const describe = (i: number | undefined) => {
      if (i === undefined) return 'nothing';
      const c = this.connections.findLastIndex((x) => x.firstIndex <= i);
      const connection = this.connections[c];
      const resumedAt = connection?.after ? rankOf.get(connection.after) : undefined;
      return `frame #${i} (log rank ${rankOf.get(received[i]!.id)}) on connection ${c + 1} (${connection?.after ? `after= rank ${resumedAt}` : 'fresh'}, closed ${connection?.closedWith ?? 'open'})`;
    };
    return `between ${describe(before)} and ${describe(after)}`;
  }

  private async sleepUnlessStopped(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (this.running && Date.now() < until) await sleep(Math.min(100, until - Date.now()));
  }
}

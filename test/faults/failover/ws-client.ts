import WebSocket from 'ws';
import type { OrderEvent } from '../../../src/events/envelope.js';
import { sleep } from '../../helpers/timing.js';

export interface Received {
  event: OrderEvent;
  at: number;
  /** 0 until the server first says "reload" (4011), then one more after each. */
  epoch: number;
}

/** Close codes that tell the client to start again without `after` rather than resume. */
const RELOAD_CODES = new Set([4011, 4404]);

/**
 * A WebSocket client on /ws/notifications that keeps up as docs/events.md says: whenever its socket drops
 * it reconnects with `?after=<the last event id it received>`; told to reload (4011), it reconnects
 * without `after` and counts a new epoch. With `leaveEveryMs` it also drops its own socket now and then.
 */
export class FailoverClient {
  readonly received: Received[] = [];
  readonly closes: { code: number; reason: string; at: number }[] = [];
  /** Upgrades the server refused, with the problem's code. */
  readonly refusals: { status: number; code?: string; retryAfter: string | null; at: number }[] = [];
  /** When each epoch's first connection opened. */
  readonly epochOpenedAt: number[] = [];
  resumes = 0;
  private epoch = 0;
  private lastId: string | undefined;
  private running = true;
  private socket: WebSocket | undefined;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly base: string,
    private readonly leaveEveryMs?: number,
  ) {}

  get reloads(): number {
    return this.epoch;
  }

  /** Connects; resolves once the first connection is open (bounded by 10 s). */
  async start(): Promise<void> {
    this.loop = this.run();
    const deadline = performance.now() + 10_000;
    while (this.epochOpenedAt.length === 0) {
      if (performance.now() > deadline) throw new Error(`no WebSocket connection within 10 s: ${JSON.stringify(this.refusals.slice(-3))}`);
      await sleep(20);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    this.socket?.close(1000);
    await this.loop;
  }

  private async run(): Promise<void> {
    for (let n = 0; this.running && n < 1_000; n++) {
      const code = await this.session();
      if (RELOAD_CODES.has(code)) {
        this.epoch++;
        this.lastId = undefined;
      }
      if (this.running && code >= 0) await sleep(code === 1000 ? 50 : 150);
    }
  }

  /** One connection; resolves with its close code, or -1 when the upgrade was refused (after its Retry-After, at most 1 s). */
  private session(): Promise<number> {
    const after = this.lastId;
    const epoch = this.epoch;
    return new Promise((resolve) => {
      const ws = new WebSocket(`${this.base.replace(/^http/, 'ws')}/ws/notifications${after ? `?after=${after}` : ''}`);
      this.socket = ws;
      let leave: NodeJS.Timeout | undefined;
      let refused = false;
      const leaveLater = () => {
        if (this.leaveEveryMs === undefined) return;
        leave = setTimeout(() => (this.lastId ? ws.close(1000) : leaveLater()), this.leaveEveryMs * (0.5 + Math.random()));
      };
      ws.on('open', () => {
        if (after) this.resumes++;
        this.epochOpenedAt[epoch] ??= performance.now();
        leaveLater();
      });
      ws.on('message', (data) => {
        const event = JSON.parse(String(data)) as OrderEvent;
        this.received.push({ event, at: performance.now(), epoch });
        this.lastId = event.id;
      });
      ws.on('unexpected-response', (_request, response) => {
        refused = true;
        const chunks: Buffer[] = [];
        response.on('data', (c: Buffer) => chunks.push(c));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          const code = text.startsWith('{') ? ((JSON.parse(text) as { code?: string }).code ?? undefined) : undefined;
          const retryAfter = response.headers['retry-after'] ?? null;
          this.refusals.push({ status: response.statusCode ?? 0, ...(code ? { code } : {}), retryAfter: typeof retryAfter === 'string' ? retryAfter : null, at: performance.now() });
          ws.terminate();
          void sleep(Math.min(1_000, Number(retryAfter) * 1_000 || 200)).then(() => resolve(-1));
        });
      });
      ws.on('error', () => undefined); // a close follows
      ws.on('close', (code, reason) => {
        clearTimeout(leave);
        if (refused) return;
        this.closes.push({ code, reason: String(reason), at: performance.now() });
        resolve(code);
      });
    });
  }
}

import { NEXT_STATUSES, type OrderStatus } from '../../helpers/order-model.js';
import { sleep } from '../../helpers/timing.js';

/** Every request is bounded, so a hung service fails the test instead of stalling it. */
const REQUEST_TIMEOUT_MS = 10_000;

export interface OrderBody {
  id: number;
  client_email: string;
  created_at: string;
  status: OrderStatus;
  version: number;
}

/** One answer the writers or the prober got; status -1 when no answer came. */
export interface Answer {
  method: 'POST' | 'PATCH' | 'GET';
  path: string;
  startedAt: number;
  endedAt: number;
  status: number;
  code?: string;
  retryAfter: string | null;
  checks?: Record<string, string>;
}

/** What a writer was told of one order: its 201, and what the PATCHes it sent since answered. */
export interface Acknowledged {
  /** The 201 body. */
  created: OrderBody;
  at: number;
  status: OrderStatus;
  /** The highest version a 200 PATCH answered for this order. */
  version: number;
  /** A PATCH got no 200 (a 503, a cut connection): it may still have committed, so the order is read before the next. */
  uncertain?: boolean;
}

/**
 * A few writers in bounded, paced loops: each creates orders and moves some of its own along, and a
 * prober reads /readyz every 200 ms. Every answer is kept, with when it was asked and answered.
 */
export class Load {
  readonly answers: Answer[] = [];
  readonly probes: Answer[] = [];
  /** By client_email, unique per request. */
  readonly acknowledged = new Map<string, Acknowledged>();
  /** PATCHes answered 200 with another order than the one acknowledged under that id (a lost order's id reused). */
  strangersChanged = 0;
  private running = true;
  private done: Promise<unknown> | undefined;

  constructor(
    private readonly base: string,
    private readonly productId: number,
    private readonly tag: string,
  ) {}

  start(writers: number, requestsPerSecond: number): void {
    const gapMs = (1000 * writers) / requestsPerSecond;
    this.done = Promise.all([this.probe(), ...Array.from({ length: writers }, (_, w) => this.write(w, gapMs))]);
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }

  /** The first 201 to a POST sent at or after `since`, as milliseconds after `since`. */
  firstCreatedAfter(since: number): number | undefined {
    const first = this.answers.filter((a) => a.method === 'POST' && a.status === 201 && a.startedAt >= since).sort((a, b) => a.endedAt - b.endedAt)[0];
    return first && first.endedAt - since;
  }

  /** Resolves once a POST sent after `since` was answered 201, or after timeoutMs. */
  async waitForCreated(since: number, timeoutMs: number): Promise<number | undefined> {
    const deadline = performance.now() + timeoutMs;
    while (this.firstCreatedAfter(since) === undefined && performance.now() < deadline) await sleep(20);
    return this.firstCreatedAfter(since);
  }

  private async write(writer: number, gapMs: number): Promise<void> {
    const mine: Acknowledged[] = [];
    for (let n = 0; this.running && n < 2_000; n++) {
      const startedAt = performance.now();
      const movable = mine.filter((o) => NEXT_STATUSES[o.status].length > 0);
      if (n % 4 === 3 && movable.length > 0) await this.move(movable[n % movable.length]!);
      else {
        const created = await this.create(`w${writer}`, n);
        if (created) mine.push(created);
      }
      await sleep(gapMs - (performance.now() - startedAt));
    }
  }

  /** One order outside the writers' loops; throws unless it is acknowledged. */
  async createOne(name: string): Promise<Acknowledged> {
    const created = await this.create(name, 0);
    if (!created) throw new Error(`POST /orders/ for ${name} was not acknowledged: ${JSON.stringify(this.answers.at(-1))}`);
    return created;
  }

  private async create(who: string, n: number): Promise<Acknowledged | undefined> {
    const email = `${who}-${n}.${this.tag}@failover.example.com`;
    const input = { product_id: this.productId, quantity: 1 + (n % 3), client_name: `${who} order ${n}`, client_email: email };
    const { status, body, at } = await this.request('POST', '/orders/', input);
    if (status !== 201 || !body) return undefined;
    const order = body as unknown as OrderBody;
    const acknowledged = { created: order, at, status: order.status, version: order.version };
    this.acknowledged.set(email, acknowledged);
    return acknowledged;
  }

  private async move(known: Acknowledged): Promise<void> {
    if (known.uncertain) {
      const { status, body } = await this.request('GET', `/orders/${known.created.id}`);
      const order = body as unknown as OrderBody | undefined;
      if (status !== 200 || !order || order.client_email !== known.created.client_email) return;
      Object.assign(known, { status: order.status, version: Math.max(known.version, order.version), uncertain: false });
      if (NEXT_STATUSES[known.status].length === 0) return;
    }
    const to = NEXT_STATUSES[known.status][0]!;
    const { status, body } = await this.request('PATCH', `/orders/${known.created.id}`, { status: to });
    if (status !== 200 || !body) {
      known.uncertain = status !== 404;
      return;
    }
    const order = body as unknown as OrderBody;
    if (order.client_email !== known.created.client_email) {
      this.strangersChanged++;
      return;
    }
    known.status = order.status;
    known.version = order.version;
  }

  private async probe(): Promise<void> {
    for (let n = 0; this.running && n < 2_000; n++) {
      await this.request('GET', '/readyz');
      await sleep(200);
    }
  }

  private async request(method: Answer['method'], path: string, payload?: unknown): Promise<{ status: number; body?: Record<string, unknown>; at: number }> {
    const answer: Answer = { method, path, startedAt: performance.now(), endedAt: 0, status: -1, retryAfter: null };
    let body: Record<string, unknown> | undefined;
    try {
      const response = await fetch(`${this.base}${path}`, {
        method,
        headers: payload === undefined ? {} : { 'content-type': 'application/json' },
        ...(payload === undefined ? {} : { body: JSON.stringify(payload) }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      answer.status = response.status;
      answer.retryAfter = response.headers.get('retry-after');
      const text = await response.text();
      body = text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : undefined;
      if (response.status >= 400 && typeof body?.code === 'string') answer.code = body.code;
      if (path === '/readyz' && body?.checks) answer.checks = body.checks as Record<string, string>;
    } catch {
      answer.status = -1;
    }
    answer.endedAt = performance.now();
    (path === '/readyz' ? this.probes : this.answers).push(answer);
    return { status: answer.status, ...(body ? { body } : {}), at: answer.endedAt };
  }
}

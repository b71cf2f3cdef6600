import autocannon, { type Context, type RawRequest, type RequestSpec } from 'autocannon';
import type { BenchDatabase } from './infra.js';
import { Samples, type LatencySummary } from './stats.js';

export interface LoadResult {
  requestsPerSecond: number;
  latency: LatencySummary;
  completed: number;
  seconds: number;
  statuses: Record<string, number>;
  errors: number;
  timeouts: number;
}

/** Closed-loop load: `connections` keep-alive connections, each sending its next request when answered. */
async function cannon(url: string, connections: number, seconds: number, request: RequestSpec): Promise<LoadResult> {
  const samples = new Samples(connections * seconds * 2000);
  const instance = autocannon({ url, connections, duration: seconds, timeout: 10, requests: [request] });
  // autocannon's own histogram is in whole milliseconds; this keeps the fractions.
  instance.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => samples.add(ms));
  const result = await instance;
  const statuses = Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, { count }]) => [code, count]));
  const completed = Object.values(statuses).reduce((a, b) => a + b, 0);
  return {
    requestsPerSecond: completed / result.duration,
    latency: samples.summary(),
    completed,
    seconds: result.duration,
    statuses,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}

const isNameOf = (name: unknown, seq: number) =>
  typeof name === 'string' && (name === `Bench client ${seq}` || name.startsWith(`Bench client ${seq} @`));

const header = (headers: Record<string, string>, name: string) => Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1];

/**
 * Every order the bench asks for: its body (unique per request), and what the API answered. Each answer
 * is checked; at the end the database must hold exactly the answered orders plus, at most, those whose
 * requests were in flight when the load generator stopped.
 */
export class OrderLedger {
  private sent = 0;
  /** Sequence number → order id, for every 201. */
  readonly created = new Map<number, number>();
  private readonly ids = new Set<number>();
  readonly statuses: Record<string, number> = {};
  readonly problems: string[] = [];
  private answered = 0;

  constructor(
    private readonly tag: string,
    readonly productId: number,
  ) {}

  email(seq: number): string {
    return `p${seq}.${this.tag}@bench.example.com`;
  }

  quantity(seq: number): number {
    return 1 + (seq % 5);
  }

  /** The next request's body; `sentAt` (epoch ms) rides in the client name for the WebSocket clients. */
  next(sentAt?: number): { seq: number; body: string } {
    const seq = ++this.sent;
    const name = sentAt === undefined ? `Bench client ${seq}` : `Bench client ${seq} @${sentAt.toFixed(3)}`;
    const body = JSON.stringify({
      product_id: this.productId,
      quantity: this.quantity(seq),
      client_name: name,
      client_email: this.email(seq),
    });
    return { seq, body };
  }

  answer(seq: number, status: number, body: string, location: string | undefined): void {
    this.answered += 1;
    this.statuses[status] = (this.statuses[status] ?? 0) + 1;
    if (status !== 201) return this.problem(`POST #${seq}: ${status} ${body.slice(0, 200)}`);
    let order: Record<string, unknown>;
    try {
      order = JSON.parse(body) as Record<string, unknown>;
    } catch {
      return this.problem(`POST #${seq}: body is not JSON: ${body.slice(0, 200)}`);
    }
    const id = order.id;
    const q = this.quantity(seq);
    const exact =
      typeof order.unit_price === 'number' &&
      typeof order.total_price === 'number' &&
      Math.round(order.unit_price * 100) * q === Math.round(order.total_price * 100);
    if (
      typeof id !== 'number' ||
      !Number.isInteger(id) ||
      id < 1 ||
      order.product_id !== this.productId ||
      order.quantity !== q ||
      order.client_email !== this.email(seq) ||
      !isNameOf(order.client_name, seq) ||
      order.status !== 'Pending' ||
      !exact
    ) {
      return this.problem(`POST #${seq}: unexpected order ${body.slice(0, 300)}`);
    }
    if (location !== undefined && location !== `/orders/${id}`) return this.problem(`POST #${seq}: Location ${location} for order ${id}`);
    if (this.ids.has(id)) return this.problem(`POST #${seq}: order id ${id} given twice`);
    this.ids.add(id);
    this.created.set(seq, id);
  }

  problem(message: string): void {
    if (this.problems.length < 20) this.problems.push(message);
    else if (this.problems.length === 20) this.problems.push('… more problems not shown');
  }

  get sentCount(): number {
    return this.sent;
  }

  get unanswered(): number {
    return this.sent - this.answered;
  }

  seqOf(email: string): number | undefined {
    const match = /^p(\d+)\.([^@]+)@bench\.example\.com$/.exec(email);
    return match && match[2] === this.tag ? Number(match[1]) : undefined;
  }
}

export function postOrdersRequest(ledger: OrderLedger): RequestSpec {
  return {
    method: 'POST',
    path: '/orders/',
    headers: { 'content-type': 'application/json' },
    setupRequest(request: RawRequest, context: Context) {
      const { seq, body } = ledger.next();
      context.seq = seq;
      request.body = body;
      return request;
    },
    onResponse(status, body, context, headers) {
      ledger.answer(context.seq as number, status, body, header(headers, 'location'));
    },
  };
}

export function loadPostOrders(url: string, connections: number, seconds: number, ledger: OrderLedger): Promise<LoadResult> {
  return cannon(url, connections, seconds, postOrdersRequest(ledger));
}

export interface ReadCheck {
  readonly problems: string[];
  statuses: Record<string, number>;
}

/** GET /orders/{id} for ids picked at random among `ids`; each answer must be that order. */
export function loadGetOrders(
  url: string,
  connections: number,
  seconds: number,
  ids: readonly number[],
  check: ReadCheck,
): Promise<LoadResult> {
  return cannon(url, connections, seconds, {
    method: 'GET',
    setupRequest(request: RawRequest, context: Context) {
      const id = ids[Math.floor(Math.random() * ids.length)]!;
      context.id = id;
      request.path = `/orders/${id}`;
      return request;
    },
    onResponse(status, body, context) {
      check.statuses[status] = (check.statuses[status] ?? 0) + 1;
      let ok = status === 200;
      if (ok) {
        try {
          const order = JSON.parse(body) as { id?: unknown; status?: unknown };
          ok = order.id === context.id && order.status === 'Pending';
        } catch {
          ok = false;
        }
      }
      if (!ok && check.problems.length < 20) check.problems.push(`GET /orders/${String(context.id)}: ${status} ${body.slice(0, 200)}`);
    },
  });
}

export interface DatabaseOrders {
  /** Rows in `orders`. */
  rows: number;
  /** Of those, orders whose request was still in flight when the load stopped (sent, created, answer not read). */
  inFlight: number;
}

/** The orders table holds exactly the orders answered 201, plus at most the requests left in flight. */
export async function verifyOrders(db: Pick<BenchDatabase, 'scalar'>, ledger: OrderLedger): Promise<DatabaseOrders> {
  const rows = await db.scalar<{ id: number; client_email: string }[] | null>(
    `SELECT json_agg(json_build_object('id', id, 'client_email', client_email)) FROM orders`,
  );
  const seen = new Set<number>();
  let inFlight = 0;
  for (const row of rows ?? []) {
    const seq = ledger.seqOf(row.client_email);
    if (seq === undefined || seq > ledger.sentCount) {
      ledger.problem(`orders table: unexpected row ${JSON.stringify(row)}`);
      continue;
    }
    if (seen.has(seq)) ledger.problem(`orders table: request #${seq} created two orders`);
    seen.add(seq);
    const answeredId = ledger.created.get(seq);
    if (answeredId === undefined) inFlight += 1;
    else if (answeredId !== Number(row.id)) ledger.problem(`orders table: request #${seq} answered id ${answeredId} but stored ${row.id}`);
  }
  for (const [seq, id] of ledger.created)
    if (!seen.has(seq)) ledger.problem(`orders table: order ${id} (request #${seq}) answered 201 but not stored`);
  if (inFlight > ledger.unanswered)
    ledger.problem(`orders table: ${inFlight} unanswered orders stored, but only ${ledger.unanswered} requests were unanswered`);
  return { rows: rows?.length ?? 0, inFlight };
}

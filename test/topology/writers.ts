import { sleep, type Reply } from '../faults/crash/http.js';
import { NEXT_STATUSES, type OrderInput, type OrderStatus } from '../helpers/order-model.js';
import { problemCode, type Requests } from './requests.js';

export type OrderBody = Record<string, unknown> & { id: number; status: OrderStatus; version: number; product_id: number; quantity: number; client_email: string };

/** What a writer knows of an order: only what it was answered. */
export interface KnownOrder {
  id: number;
  created: OrderBody;
  status: OrderStatus;
  version: number;
  /** A PATCH that got no answer, or 503: applied or not, a read tells. */
  uncertain?: { to: OrderStatus; stale: boolean };
}

export interface KeyState {
  writer: number;
  body: OrderInput;
  since: number;
  outcome: 'pending' | 'created' | 'refused';
  orderId?: number;
  attempts: number;
}

/** An invariant number and what broke it, as seen while the load ran. */
export type Violation = { invariant: number; message: string };

/** Everything the writers were told, to hold the service to it afterwards. */
export class Ledger {
  readonly orders = new Map<number, KnownOrder>();
  /** Every Idempotency-Key sent, by key. */
  readonly keys = new Map<string, KeyState>();
  /** Acknowledged status changes: each must be the event of that sequence in the order's history. */
  readonly patches: { orderId: number; version: number; to: OrderStatus }[] = [];
  readonly violations: Violation[] = [];
  readonly counts = {
    keyedRetries: 0,
    replayed: 0,
    inProgress: 0,
    refusedForStock: 0,
    patched: 0,
    cancelled: 0,
    staleSent: 0,
    preconditionFailed: 0,
    uncertainApplied: 0,
    uncertainNotApplied: 0,
    reads: 0,
  };

  violation(invariant: number, message: string): void {
    if (this.violations.filter((v) => v.invariant === invariant).length < 20) this.violations.push({ invariant, message });
  }
}

export interface WriterContext {
  requests: Requests;
  ledger: Ledger;
  random: () => number;
  products: { unlimited: number; stocked: number };
  /** Makes keys and emails unique to this run. */
  tag: string;
  stopped: () => boolean;
  halted: Promise<void>;
  maxOps: number;
  thinkMs: number;
}

const parse = (reply: Reply): OrderBody | undefined => {
  try {
    return reply.body === undefined ? undefined : (JSON.parse(reply.body) as OrderBody);
  } catch {
    return undefined;
  }
};

/**
 * One client of the API, in a bounded loop against whichever api process answers: creates orders
 * with an Idempotency-Key (retried with the same key and body until answered), moves its orders on
 * with If-Match (now and then deliberately stale), cancels some, reads them and the stock back.
 */
export async function runWriter(writer: number, ctx: WriterContext): Promise<void> {
  const { random } = ctx;
  const mine: KnownOrder[] = [];
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  for (let n = 0; n < ctx.maxOps && !ctx.stopped(); n++) {
    await sleep(ctx.thinkMs * (0.5 + random()));
    const open = mine.filter((o) => NEXT_STATUSES[o.status].length > 0);
    const roll = random();
    if (roll < 0.35 || open.length === 0) {
      const key = `topology-${ctx.tag}-${writer}-${n}`;
      const body: OrderInput = {
        product_id: random() < 0.4 ? ctx.products.stocked : ctx.products.unlimited,
        quantity: 1 + Math.floor(random() * 3),
        client_name: `Writer ${writer} order ${n}`,
        client_email: `w${writer}-${n}.${ctx.tag}@topology.example.com`,
      };
      ctx.ledger.keys.set(key, { writer, body, since: Date.now(), outcome: 'pending', attempts: 0 });
      const known = await createKeyed(ctx, key, 20_000);
      if (known) mine.push(known);
    } else if (roll < 0.85) {
      await changeStatus(ctx, pick(open), random);
    } else {
      await readBack(ctx, pick(mine));
    }
  }
}

/** Sends a keyed create until it is answered 201 or 409 insufficient_stock, or `budgetMs` has passed. */
export async function createKeyed(ctx: Pick<WriterContext, 'requests' | 'ledger' | 'halted' | 'stopped'>, key: string, budgetMs: number): Promise<KnownOrder | undefined> {
  const { ledger } = ctx;
  const state = ledger.keys.get(key)!;
  const deadline = Date.now() + budgetMs;
  while (state.outcome === 'pending' && Date.now() < deadline) {
    if (state.attempts++ > 0) ledger.counts.keyedRetries++;
    const reply = await ctx.requests.send(ctx.halted, 'POST', '/orders/', state.body, { 'idempotency-key': key });
    if (!reply || reply.status === 503 || (reply.status === 201 && !reply.body)) {
      if (ctx.stopped() && !reply) return undefined;
      await sleep(150);
      continue;
    }
    const code = problemCode(reply);
    if (reply.status === 409 && code === 'idempotency_request_in_progress') {
      ledger.counts.inProgress++;
      const retryAfter = Number(reply.headers.get('retry-after'));
      if (!(retryAfter > 0)) ledger.violation(2, `409 in progress for ${key} without Retry-After`);
      await sleep(Math.min(retryAfter > 0 ? retryAfter * 1000 : 1000, 1_000));
      continue;
    }
    if (reply.status === 409 && code === 'insufficient_stock') {
      state.outcome = 'refused';
      ledger.counts.refusedForStock++;
      return undefined;
    }
    const body = reply.status === 201 ? parse(reply) : undefined;
    if (!body) {
      ledger.violation(1, `keyed POST ${key} answered ${reply.status}: ${reply.body?.slice(0, 200)}`);
      state.outcome = 'refused';
      return undefined;
    }
    if (reply.headers.get('idempotent-replayed') === 'true') ledger.counts.replayed++;
    if (state.orderId !== undefined && state.orderId !== body.id) ledger.violation(2, `Idempotency-Key ${key} answered order ${state.orderId}, then ${body.id}`);
    const existing = ledger.orders.get(body.id);
    if (existing && existing.created.client_email !== state.body.client_email) ledger.violation(2, `keyed POST ${key} answered order ${body.id}, which another key created`);
    state.outcome = 'created';
    state.orderId = body.id;
    if (existing) return undefined;
    const known: KnownOrder = { id: body.id, created: body, status: body.status, version: body.version };
    ledger.orders.set(body.id, known);
    return known;
  }
  return undefined;
}

async function changeStatus(ctx: WriterContext, order: KnownOrder, random: () => number): Promise<void> {
  const { ledger } = ctx;
  if (order.uncertain && !(await resolveUncertain(ctx, order))) return;
  const choices = NEXT_STATUSES[order.status];
  if (choices.length === 0) return;
  const to = choices.includes('Cancelled') && random() < 0.25 ? 'Cancelled' : choices[0]!;
  const stale = order.version > 1 && random() < 0.1;
  const ifMatch = stale ? order.version - 1 : order.version;
  if (stale) ledger.counts.staleSent++;
  const reply = await ctx.requests.send(ctx.halted, 'PATCH', `/orders/${order.id}`, { status: to }, { 'if-match': `"${ifMatch}"` });
  if (!reply || reply.status === 503 || (reply.status === 200 && !reply.body)) {
    order.uncertain = { to, stale };
    return;
  }
  if (reply.status === 412) {
    ledger.counts.preconditionFailed++;
    if (stale) return;
    const now = await readOrder(ctx, order.id);
    if (now && now.version === ifMatch) ledger.violation(4, `PATCH /orders/${order.id} with If-Match "${ifMatch}" answered 412, but the order is at version ${now.version}`);
    else if (now) ledger.violation(4, `order ${order.id} moved from v${ifMatch} to v${now.version} without an acknowledged change (412)`);
    return;
  }
  const body = reply.status === 200 ? parse(reply) : undefined;
  if (!body) return ledger.violation(4, `PATCH /orders/${order.id} ${order.status} → ${to} (If-Match "${ifMatch}") answered ${reply.status}: ${reply.body?.slice(0, 200)}`);
  if (stale) ledger.violation(4, `PATCH /orders/${order.id} with stale If-Match "${ifMatch}" (order at v${order.version}) was applied`);
  if (body.status !== to || body.version !== order.version + 1) {
    ledger.violation(4, `PATCH /orders/${order.id} → ${to} at v${order.version} answered ${body.status} v${body.version}`);
  }
  acknowledge(ledger, order, to, body.version);
}

function acknowledge(ledger: Ledger, order: KnownOrder, to: OrderStatus, version: number): void {
  ledger.counts.patched++;
  if (to === 'Cancelled') ledger.counts.cancelled++;
  ledger.patches.push({ orderId: order.id, version, to });
  order.status = to;
  order.version = version;
}

/** Reads the order until it answers (bounded); undefined when it never did. */
async function readOrder(ctx: Pick<WriterContext, 'requests' | 'halted'>, id: number): Promise<OrderBody | undefined> {
  for (let attempt = 0; attempt < 40; attempt++) {
    const reply = await ctx.requests.send(ctx.halted, 'GET', `/orders/${id}`);
    const body = reply?.status === 200 ? parse(reply) : undefined;
    if (body) return body;
    await sleep(150);
  }
  return undefined;
}

/** A change that got no answer either happened or did not: a read tells which, and nothing else is allowed. */
export async function resolveUncertain(ctx: Pick<WriterContext, 'requests' | 'halted' | 'ledger'>, order: KnownOrder): Promise<boolean> {
  const { ledger } = ctx;
  const { to, stale } = order.uncertain!;
  const now = await readOrder(ctx, order.id);
  if (!now) return false;
  delete order.uncertain;
  if (now.version === order.version && now.status === order.status) {
    ledger.counts.uncertainNotApplied++;
  } else if (!stale && now.version === order.version + 1 && now.status === to) {
    ledger.counts.uncertainApplied++;
    acknowledge(ledger, order, to, now.version);
  } else {
    ledger.violation(4, `order ${order.id} was ${order.status} v${order.version} with a change to ${to}${stale ? ' (stale If-Match)' : ''} unanswered, and is now ${now.status} v${now.version}`);
    Object.assign(order, { status: now.status, version: now.version });
  }
  return true;
}

async function readBack(ctx: WriterContext, order: KnownOrder): Promise<void> {
  const { ledger } = ctx;
  if (order.uncertain) {
    await resolveUncertain(ctx, order);
    return;
  }
  ledger.counts.reads++;
  const reply = await ctx.requests.send(ctx.halted, 'GET', `/orders/${order.id}`);
  const body = reply?.status === 200 ? parse(reply) : undefined;
  if (body && (body.status !== order.status || body.version !== order.version)) {
    ledger.violation(1, `order ${order.id} read as ${body.status} v${body.version}, acknowledged as ${order.status} v${order.version}`);
  }
  const product = await ctx.requests.send(ctx.halted, 'GET', `/products/${ctx.products.stocked}`);
  const stock = product?.status === 200 && product.body ? (JSON.parse(product.body) as { stock: number }).stock : undefined;
  if (stock !== undefined && stock < 0) ledger.violation(3, `product ${ctx.products.stocked} read with stock ${stock}`);
}

/** After the load: every key retried until answered, every unanswered change read back (bounded). */
export async function settle(ctx: Pick<WriterContext, 'requests' | 'ledger' | 'halted' | 'stopped'>, timeoutMs: number): Promise<void> {
  const { ledger } = ctx;
  const deadline = Date.now() + timeoutMs;
  for (const [key, state] of ledger.keys) {
    if (state.outcome === 'pending') await createKeyed(ctx, key, Math.max(0, deadline - Date.now()));
  }
  for (const [key, state] of ledger.keys) {
    if (state.outcome === 'pending') ledger.violation(2, `Idempotency-Key ${key} still not answered ${((Date.now() - state.since) / 1000).toFixed(1)} s after it was first sent`);
  }
  for (const order of ledger.orders.values()) if (order.uncertain) await resolveUncertain(ctx, order);
  for (const order of ledger.orders.values()) if (order.uncertain) ledger.violation(4, `order ${order.id}: an unanswered change could not be read back`);
}

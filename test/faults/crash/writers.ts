import { NEXT_STATUSES, type OrderInput, type OrderStatus } from '../../helpers/order-model.js';
import { call, CutOff, sleep, type Reply } from './http.js';
import type { ServiceLife } from './life.js';

export type OrderBody = Record<string, unknown> & { id: number; status: OrderStatus; version: number };

/** What a client knows of an order: what it was answered, and nothing else. */
export interface KnownOrder {
  id: number;
  /** The 201 body (first or replayed). */
  created: OrderBody;
  status: OrderStatus;
  version: number;
  /** A status change sent when the service died: applied or not, the next read tells. */
  uncertain?: OrderStatus;
}

interface PendingKey {
  writer: number;
  body: OrderInput;
  since: number;
  retryAt: number;
  attempts: number;
}

/** Everything the writers were told, to hold the service to it after the kills. */
export class Ledger {
  readonly orders = new Map<number, KnownOrder>();
  /** Bodies of creates answered 201, by email (unique per request). */
  readonly acknowledged = new Map<string, OrderInput>();
  /** Creates without a key that a kill cut off: each may or may not have committed. */
  readonly cutOffCreates = new Set<string>();
  readonly pendingKeys = new Map<string, PendingKey>();
  readonly violations: string[] = [];
  readonly counts = {
    requests: 0,
    cutOff: 0,
    created: 0,
    keyed: 0,
    keyedRetried: 0,
    replayed: 0,
    inProgress: 0,
    inProgressWithRetryAfter: 0,
    statusChanges: 0,
    changesResolvedApplied: 0,
    changesResolvedNotApplied: 0,
    reads: 0,
  };
  longestKeyWaitMs = 0;

  violation(message: string): void {
    if (this.violations.length < 50) this.violations.push(message);
  }

  record(body: OrderBody, input: OrderInput): KnownOrder {
    const known = { id: body.id, created: body, status: body.status, version: body.version };
    this.orders.set(body.id, known);
    this.acknowledged.set(input.client_email, input);
    return known;
  }
}

export interface WriterContext {
  life: ServiceLife;
  ledger: Ledger;
  random: () => number;
  products: { unlimited: number; stocked: number };
  /** Makes keys and emails unique to this run. */
  tag: string;
  stopped: () => boolean;
  /** Resolves when writing stops, so no writer waits for a service that will not come back. */
  halted: Promise<void>;
  maxOps: number;
}

const parse = (reply: Reply): OrderBody | undefined => (reply.body === undefined ? undefined : (JSON.parse(reply.body) as OrderBody));
const code = (reply: Reply): string | undefined => (reply.body?.startsWith('{') ? (JSON.parse(reply.body) as { code?: string }).code : undefined);

/**
 * One client of the API, in a bounded loop: creates orders (some with an Idempotency-Key, retried
 * after a kill with the same key and body), moves its own orders through their statuses, reads them.
 */
export async function runWriter(writer: number, ctx: WriterContext): Promise<void> {
  const { ledger, random } = ctx;
  const mine: KnownOrder[] = [];
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const newInput = (n: number): OrderInput => ({
    product_id: random() < 0.5 ? ctx.products.unlimited : ctx.products.stocked,
    quantity: 1 + Math.floor(random() * 3),
    client_name: `Writer ${writer} order ${n}`,
    client_email: `w${writer}-${n}.${ctx.tag}@crash.example.com`,
  });

  for (let n = 0; n < ctx.maxOps && !ctx.stopped(); n++) {
    const base = await Promise.race([ctx.life.url(), ctx.halted]);
    if (base === undefined) return;
    ledger.counts.requests++;
    try {
      const due = [...ledger.pendingKeys].find(([, p]) => p.writer === writer && p.retryAt <= Date.now());
      const open = mine.filter((o) => NEXT_STATUSES[o.status].length > 0);
      const roll = random();
      if (due) {
        const known = await sendKeyed(base, ledger, due[0]);
        if (known) mine.push(known);
      } else if (roll < 0.3 || open.length === 0) {
        const known = await createWithoutKey(base, ledger, newInput(n));
        if (known) mine.push(known);
      } else if (roll < 0.5) {
        const key = `crash-${ctx.tag}-${writer}-${n}`;
        ledger.pendingKeys.set(key, { writer, body: newInput(n), since: Date.now(), retryAt: 0, attempts: 0 });
        ledger.counts.keyed++;
        const known = await sendKeyed(base, ledger, key);
        if (known) mine.push(known);
      } else if (roll < 0.9) {
        const order = pick(open);
        await changeStatus(base, ledger, order, pick(NEXT_STATUSES[order.status]));
      } else {
        await readBack(base, ledger, pick(mine));
      }
    } catch (error) {
      if (!(error instanceof CutOff)) throw error;
      ledger.counts.cutOff++;
    }
  }
}

async function createWithoutKey(base: string, ledger: Ledger, input: OrderInput): Promise<KnownOrder | undefined> {
  let reply: Reply;
  try {
    reply = await call(base, 'POST', '/orders/', input);
  } catch (error) {
    ledger.cutOffCreates.add(input.client_email);
    throw error;
  }
  if (reply.status !== 201) return void ledger.violation(`POST /orders/ answered ${reply.status}: ${reply.body}`);
  ledger.counts.created++;
  const body = parse(reply);
  // Acknowledged even when the body was cut off: it must be there, found by its email.
  if (!body) return void ledger.acknowledged.set(input.client_email, input);
  return ledger.record(body, input);
}

/** Sends (or re-sends) a keyed create; resolves with the order once one answer carried it. */
export async function sendKeyed(base: string, ledger: Ledger, key: string): Promise<KnownOrder | undefined> {
  const pending = ledger.pendingKeys.get(key)!;
  if (pending.attempts++ > 0) ledger.counts.keyedRetried++;
  const reply = await call(base, 'POST', '/orders/', pending.body, { 'idempotency-key': key });
  if (reply.status === 409 && code(reply) === 'idempotency_request_in_progress') {
    ledger.counts.inProgress++;
    const retryAfter = Number(reply.headers.get('retry-after'));
    if (retryAfter > 0) ledger.counts.inProgressWithRetryAfter++;
    pending.retryAt = Date.now() + (retryAfter > 0 ? retryAfter * 1000 : 1000);
    return undefined;
  }
  const body = parse(reply);
  if (reply.status !== 201) return void ledger.violation(`keyed POST ${key} answered ${reply.status}: ${reply.body}`);
  if (!body) return undefined; // cut off mid-body: the retry will replay it
  ledger.pendingKeys.delete(key);
  if (reply.headers.get('idempotent-replayed') === 'true') ledger.counts.replayed++;
  else ledger.counts.created++;
  if (pending.attempts > 1) ledger.longestKeyWaitMs = Math.max(ledger.longestKeyWaitMs, Date.now() - pending.since);
  if (ledger.orders.has(body.id)) return void ledger.violation(`keyed POST ${key} created order ${body.id}, which another request had already created`);
  return ledger.record(body, pending.body);
}

async function changeStatus(base: string, ledger: Ledger, order: KnownOrder, to: OrderStatus): Promise<void> {
  if (order.uncertain) {
    await resolveUncertain(base, ledger, order);
    if (!NEXT_STATUSES[order.status].includes(to)) return;
  }
  let reply: Reply;
  try {
    reply = await call(base, 'PATCH', `/orders/${order.id}`, { status: to });
  } catch (error) {
    order.uncertain = to;
    throw error;
  }
  if (reply.status !== 200) return ledger.violation(`PATCH /orders/${order.id} ${order.status} → ${to} answered ${reply.status}: ${reply.body}`);
  const body = parse(reply);
  if (!body) {
    order.uncertain = to;
    return;
  }
  if (body.status !== to || body.version !== order.version + 1) {
    ledger.violation(`PATCH /orders/${order.id} → ${to} at version ${order.version} answered ${body.status} at version ${body.version}`);
  }
  ledger.counts.statusChanges++;
  Object.assign(order, { status: body.status, version: body.version });
}

/** A change cut off by a kill either happened or did not: a read tells which, and nothing else is allowed. */
export async function resolveUncertain(base: string, ledger: Ledger, order: KnownOrder): Promise<void> {
  const reply = await call(base, 'GET', `/orders/${order.id}`);
  const body = parse(reply);
  const to = order.uncertain!;
  if (reply.status !== 200 || !body) return ledger.violation(`GET /orders/${order.id} answered ${reply.status}: ${reply.body}`);
  if (body.version === order.version && body.status === order.status) {
    ledger.counts.changesResolvedNotApplied++;
  } else if (body.version === order.version + 1 && body.status === to) {
    ledger.counts.changesResolvedApplied++;
    ledger.counts.statusChanges++;
    Object.assign(order, { status: to, version: body.version });
  } else {
    ledger.violation(`order ${order.id} was ${order.status} v${order.version} with a change to ${to} cut off, and is now ${body.status} v${body.version}`);
  }
  delete order.uncertain;
}

async function readBack(base: string, ledger: Ledger, order: KnownOrder): Promise<void> {
  if (order.uncertain) return resolveUncertain(base, ledger, order);
  const reply = await call(base, 'GET', `/orders/${order.id}`);
  ledger.counts.reads++;
  const body = parse(reply);
  if (reply.status !== 200 || !body) return ledger.violation(`GET /orders/${order.id} answered ${reply.status}: ${reply.body}`);
  if (body.status !== order.status || body.version !== order.version) {
    ledger.violation(`order ${order.id} read as ${body.status} v${body.version}, acknowledged as ${order.status} v${order.version}`);
  }
}

/** After the last restart: every keyed create is retried until answered, every cut-off change is read back. */
export async function settle(base: string, ledger: Ledger, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (ledger.pendingKeys.size > 0 && Date.now() < deadline) {
    for (const [key, pending] of ledger.pendingKeys) {
      if (pending.retryAt <= Date.now()) await sendKeyed(base, ledger, key);
    }
    if (ledger.pendingKeys.size > 0) await sleep(100);
  }
  for (const [key, pending] of ledger.pendingKeys) {
    ledger.violation(`Idempotency-Key ${key} still not answered with its order ${((Date.now() - pending.since) / 1000).toFixed(1)} s after it was first sent`);
  }
  for (const order of ledger.orders.values()) if (order.uncertain) await resolveUncertain(base, ledger, order);
}

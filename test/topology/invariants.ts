import { isDeepStrictEqual } from 'node:util';
import type { Database } from '../../src/db/client.js';
import type { OrderEvent } from '../../src/events/envelope.js';
import { call, sleep } from '../faults/crash/http.js';
import { listOrders } from '../faults/crash/verify.js';
import { canMove, type OrderStatus } from '../helpers/order-model.js';
import type { TopologyClient } from './clients.js';
import { inBatches } from './harness.js';
import type { Requests } from './requests.js';
import type { Ledger, OrderBody } from './writers.js';

export const INVARIANTS = {
  1: 'every acknowledged order is present, as it was created',
  2: 'every Idempotency-Key created at most one order, and a retry answered that one',
  3: 'stock is conserved and never negative',
  4: 'every acknowledged PATCH is reflected and every 412 was truly stale',
  5: "every order's history is gapless (1..n) and each transition valid",
  6: 'the change log equals the outbox: every event once',
  7: 'every WebSocket client got every event once, in order per order (after its resumes; from its last reload on)',
  8: 'no 5xx but 503, and no request over 5 s',
} as const;
export type InvariantNumber = keyof typeof INVARIANTS;

const UNCHANGING = ['product_id', 'quantity', 'client_name', 'client_email', 'unit_price', 'total_price', 'created_at'] as const;
const EXAMPLES = 8;

/** Each invariant's problems; `count` may exceed the examples kept. */
export class Findings {
  private readonly found = new Map<InvariantNumber, { count: number; examples: string[] }>(
    (Object.keys(INVARIANTS).map(Number) as InvariantNumber[]).map((n) => [n, { count: 0, examples: [] }]),
  );

  add(n: InvariantNumber, message: string): void {
    const entry = this.found.get(n)!;
    entry.count++;
    if (entry.examples.length < EXAMPLES) entry.examples.push(message);
  }

  of(n: InvariantNumber): { count: number; examples: string[] } {
    return this.found.get(n)!;
  }

  /** One line per invariant: held, or how often it broke with examples. */
  report(): string {
    return [...this.found]
      .map(([n, { count, examples }]) => (count === 0 ? `  (${n}) held: ${INVARIANTS[n]}` : `  (${n}) BROKEN ${count}×: ${INVARIANTS[n]}\n${examples.map((e) => `        - ${e}`).join('\n')}`))
      .join('\n');
  }
}

export interface LoggedRow {
  id: string;
  orderId: number;
  sequence: number;
  /** Place in the log's order (xid, position). */
  rank: number;
}

/** Waits (bounded) until the relay's checkpoint has passed every outbox row, then reads the outbox in log order. */
export async function readOutbox(db: Database, timeoutMs: number): Promise<{ rows: LoggedRow[]; unshipped: number }> {
  const deadline = Date.now() + timeoutMs;
  let unshipped = -1;
  while (Date.now() < deadline) {
    [{ n: unshipped }] = (await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM outbox o WHERE NOT EXISTS (SELECT 1 FROM outbox_checkpoint c WHERE (o.xid, o.position) <= (c.xid, c.position))`,
    )) as [{ n: number }];
    if (unshipped === 0) break;
    await sleep(200);
  }
  const rows = await db.query<{ id: string; order_id: number; sequence: number }>('SELECT event_id::text AS id, order_id, sequence FROM outbox ORDER BY xid, position');
  return { rows: rows.map((r, rank) => ({ id: r.id, orderId: Number(r.order_id), sequence: Number(r.sequence), rank })), unshipped };
}

/** Waits (bounded) until each order's history has as many events as the outbox holds for it, then reads them all. */
export async function readHistories(base: string, orderIds: readonly number[], outbox: readonly LoggedRow[], timeoutMs: number): Promise<Map<number, OrderEvent[]>> {
  const expected = new Map<number, number>();
  for (const row of outbox) expected.set(row.orderId, (expected.get(row.orderId) ?? 0) + 1);
  const histories = new Map<number, OrderEvent[]>();
  let waiting = [...orderIds];
  const deadline = Date.now() + timeoutMs;
  while (waiting.length > 0) {
    await inBatches(waiting, 8, async (id) => {
      const reply = await call(base, 'GET', `/orders/${id}/history`);
      if (reply.status === 200 && reply.body) histories.set(id, JSON.parse(reply.body) as OrderEvent[]);
    });
    waiting = waiting.filter((id) => (histories.get(id)?.length ?? 0) < (expected.get(id) ?? 0));
    if (waiting.length === 0 || Date.now() > deadline) break;
    await sleep(300);
  }
  return histories;
}

/** Waits (bounded) until every client's current stretch holds every event it must, then stops them. */
export async function catchUpClients(clients: readonly TopologyClient[], outbox: readonly LoggedRow[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && clients.some((c) => missing(c, outbox).length > 0)) await sleep(100);
  await Promise.all(clients.map((c) => c.stop()));
}

/** What the client's current stretch lacks: every event from its start (or, after a reload, from its first event on in log order). */
function missing(client: TopologyClient, outbox: readonly LoggedRow[]): LoggedRow[] {
  const segment = client.current;
  const rankOf = new Map(outbox.map((r) => [r.id, r.rank]));
  const from = segment.fromStart ? 0 : rankOf.get(segment.events[0]?.id ?? '') ?? Number.POSITIVE_INFINITY;
  return outbox.filter((r) => r.rank >= from && !segment.ids.has(r.id));
}

export interface CheckInput {
  base: string;
  db: Database;
  embeddedChangeLog: boolean;
  ledger: Ledger;
  requests: Requests;
  clients: readonly TopologyClient[];
  products: { unlimited: number; stocked: number };
  initialStock: number;
  catchUpMs: number;
}

export interface CheckFigures {
  orders: number;
  events: number;
  unshipped: number;
  received: number;
}

/** Holds the run to the eight invariants. */
export async function checkInvariants(input: CheckInput, findings: Findings): Promise<CheckFigures> {
  const { base, ledger } = input;
  for (const v of ledger.violations) findings.add(v.invariant as InvariantNumber, v.message);

  const found = (await listOrders(base, [input.products.unlimited, input.products.stocked])) as unknown as Map<number, OrderBody>;
  const { rows: outbox, unshipped } = await readOutbox(input.db, input.catchUpMs);
  if (unshipped !== 0) findings.add(6, `${unshipped} outbox events still not shipped after ${input.catchUpMs / 1000} s`);

  checkOrders(input, found, findings);
  await checkKeys(input, found, findings);
  await checkStock(input, found, findings);

  const histories = await readHistories(base, [...found.keys()], outbox, input.catchUpMs);
  checkHistories(input, found, histories, findings);
  await checkChangeLog(input, outbox, histories, findings);

  await catchUpClients(input.clients, outbox, input.catchUpMs);
  checkClients(input.clients, outbox, findings);

  if (input.requests.serverErrors > 0 || input.requests.slow > 0) {
    findings.add(8, `${input.requests.serverErrors} answers 5xx other than 503, ${input.requests.slow} over 5 s`);
  }
  for (const p of input.requests.problems) findings.add(8, p);
  return { orders: found.size, events: outbox.length, unshipped, received: input.clients.reduce((n, c) => n + c.received.length, 0) };
}

function checkOrders({ ledger }: CheckInput, found: Map<number, OrderBody>, findings: Findings): void {
  for (const [key, state] of ledger.keys) {
    if (state.outcome !== 'created') continue;
    const order = found.get(state.orderId!);
    if (!order) findings.add(1, `order ${state.orderId} acknowledged for key ${key} is missing`);
    else if (order.client_email !== state.body.client_email || order.product_id !== state.body.product_id || order.quantity !== state.body.quantity) {
      findings.add(1, `order ${order.id} does not match the request of key ${key}`);
    }
  }
  for (const known of ledger.orders.values()) {
    const order = found.get(known.id);
    if (!order) continue;
    const changed = UNCHANGING.filter((field) => order[field] !== known.created[field]);
    if (changed.length) findings.add(1, `order ${known.id} changed ${changed.map((f) => `${f}: ${String(known.created[f])} → ${String(order[f])}`).join(', ')}`);
    if (order.status !== known.status || order.version !== known.version) {
      findings.add(4, `order ${known.id} is ${order.status} v${order.version}, acknowledged as ${known.status} v${known.version}`);
    }
  }
}

async function checkKeys({ base, ledger }: CheckInput, found: Map<number, OrderBody>, findings: Findings): Promise<void> {
  const byEmail = new Map<string, OrderBody[]>();
  for (const order of found.values()) byEmail.set(order.client_email, [...(byEmail.get(order.client_email) ?? []), order]);
  const keyEmails = new Set([...ledger.keys.values()].map((s) => s.body.client_email));
  for (const [key, state] of ledger.keys) {
    const orders = byEmail.get(state.body.client_email) ?? [];
    const allowed = state.outcome === 'created' ? [1] : state.outcome === 'refused' ? [0] : [0, 1];
    if (!allowed.includes(orders.length)) findings.add(2, `key ${key} (${state.outcome}, ${state.attempts} attempts) has ${orders.length} orders: ${orders.map((o) => o.id).join(', ')}`);
  }
  for (const order of found.values()) if (!keyEmails.has(order.client_email)) findings.add(2, `order ${order.id} (${order.client_email}) was made by no request`);
  // A retry after everything settled still answers the order the key first created.
  const created = [...ledger.keys].filter(([, s]) => s.outcome === 'created').slice(0, 30);
  for (const [key, state] of created) {
    const reply = await call(base, 'POST', '/orders/', state.body, { 'idempotency-key': key });
    const id = reply.status === 201 && reply.body ? (JSON.parse(reply.body) as { id: number }).id : undefined;
    if (id !== state.orderId || reply.headers.get('idempotent-replayed') !== 'true') {
      findings.add(2, `retry of key ${key} answered ${reply.status} order ${id} (replayed: ${reply.headers.get('idempotent-replayed')}), first order ${state.orderId}`);
    }
  }
}

async function checkStock({ base, products, initialStock }: CheckInput, found: Map<number, OrderBody>, findings: Findings): Promise<void> {
  const reply = await call(base, 'GET', `/products/${products.stocked}`);
  const stock = reply.body ? (JSON.parse(reply.body) as { stock: number }).stock : NaN;
  const reserved = [...found.values()].filter((o) => o.product_id === products.stocked && o.status !== 'Cancelled').reduce((n, o) => n + o.quantity, 0);
  if (!(stock >= 0)) findings.add(3, `stock left is ${stock}`);
  if (stock + reserved !== initialStock) findings.add(3, `stock left ${stock} + ${reserved} held by live orders = ${stock + reserved}, started with ${initialStock}`);
}

function checkHistories({ ledger }: CheckInput, found: Map<number, OrderBody>, histories: Map<number, OrderEvent[]>, findings: Findings): void {
  for (const order of found.values()) {
    const history = histories.get(order.id) ?? [];
    const sequences = history.map((e) => e.sequence);
    const expected = Array.from({ length: order.version }, (_, i) => i + 1);
    if (!isDeepStrictEqual(sequences, expected)) findings.add(5, `order ${order.id} v${order.version}: history sequences [${sequences.join(',')}]`);
    if (history[0]?.type !== 'order.created' || history.filter((e) => e.type === 'order.created').length !== 1) {
      findings.add(5, `order ${order.id}: history does not begin with its one order.created (${history.map((e) => e.type).join(', ')})`);
    }
    history.slice(1).forEach((event, i) => {
      const from = history[i]!.order.status as OrderStatus;
      const to = event.order.status as OrderStatus;
      if (event.type !== 'order.status_changed' || event.change?.from !== from || event.change?.to !== to || !canMove(from, to)) {
        findings.add(5, `order ${order.id}: event ${event.sequence} ${event.type} ${JSON.stringify(event.change)} does not follow ${from}`);
      }
    });
    const last = history.at(-1);
    if (last && !isDeepStrictEqual(last.order, order)) findings.add(5, `order ${order.id}: its last event shows ${last.order.status} v${String(last.order.version)}, the API ${order.status} v${order.version}`);
  }
  for (const patch of ledger.patches) {
    const event = histories.get(patch.orderId)?.find((e) => e.sequence === patch.version);
    if (event?.type !== 'order.status_changed' || event.change?.to !== patch.to) {
      findings.add(4, `acknowledged PATCH of order ${patch.orderId} to ${patch.to} (v${patch.version}) is not its event ${patch.version} (${event?.type} ${JSON.stringify(event?.change)})`);
    }
  }
}

async function checkChangeLog({ db, embeddedChangeLog }: CheckInput, outbox: readonly LoggedRow[], histories: Map<number, OrderEvent[]>, findings: Findings): Promise<void> {
  const outboxByOrder = new Map<number, string[]>();
  for (const row of outbox) outboxByOrder.set(row.orderId, [...(outboxByOrder.get(row.orderId) ?? []), row.id]);
  for (const orderId of new Set([...outboxByOrder.keys(), ...histories.keys()])) {
    const logged = (histories.get(orderId) ?? []).map((e) => e.id).sort();
    const written = [...(outboxByOrder.get(orderId) ?? [])].sort();
    if (!isDeepStrictEqual(logged, written)) {
      const lacking = written.filter((id) => !logged.includes(id));
      findings.add(6, `order ${orderId}: change log has ${logged.length} events (${new Set(logged).size} distinct), outbox ${written.length}${lacking.length ? `; lacking ${lacking.slice(0, 2).join(', ')}` : ''}`);
    }
  }
  if (embeddedChangeLog) {
    const [row] = await db.query<{ n: number; distinct: number }>('SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS distinct FROM order_changes');
    if (row!.n !== outbox.length || row!.distinct !== outbox.length) findings.add(6, `order_changes has ${row!.n} rows (${row!.distinct} distinct events), the outbox ${outbox.length}`);
  }
}

function checkClients(clients: readonly TopologyClient[], outbox: readonly LoggedRow[], findings: Findings): void {
  const known = new Set(outbox.map((r) => r.id));
  const rankOf = new Map(outbox.map((r) => [r.id, r.rank]));
  for (const client of clients) {
    const lacking = missing(client, outbox);
    if (lacking.length) {
      const orders = new Set(lacking.map((r) => r.orderId));
      const first = lacking[0]!;
      findings.add(
        7,
        `${client.name} missed ${lacking.length} events of ${orders.size} orders (log ranks ${first.rank}..${lacking.at(-1)!.rank}); the first, order ${first.orderId} sequence ${first.sequence} (rank ${first.rank}), ` +
          `lies ${client.explainGap(first.rank, rankOf)}`,
      );
    }
    client.segments.forEach((segment, s) => {
      const where = client.segments.length > 1 ? `${client.name} (stretch ${s + 1})` : client.name;
      const seen = new Set<string>();
      const last = new Map<number, number>();
      let duplicates = 0;
      const outOfOrder: string[] = [];
      for (const event of segment.events) {
        if (!known.has(event.id)) findings.add(7, `${where} got event ${event.id} (order ${event.order_id} sequence ${event.sequence}), which is in no outbox`);
        if (seen.has(event.id)) {
          duplicates++;
          continue;
        }
        seen.add(event.id);
        const previous = last.get(event.order_id);
        const expected = previous === undefined ? (segment.fromStart ? 1 : event.sequence) : previous + 1;
        if (event.sequence !== expected) outOfOrder.push(`order ${event.order_id}: sequence ${event.sequence} after ${previous ?? 'none'}`);
        last.set(event.order_id, Math.max(previous ?? 0, event.sequence));
      }
      if (duplicates) findings.add(7, `${where} got ${duplicates} events twice`);
      if (outOfOrder.length) findings.add(7, `${where}: ${outOfOrder.length} events that do not follow their order's previous one (a gap or a reorder), e.g. ${outOfOrder.slice(0, 3).join('; ')}`);
    });
    for (const p of client.problems) findings.add(7, `${client.name}: ${p}`);
    if (client.notReadyWithoutRetryAfter) findings.add(7, `${client.name}: ${client.notReadyWithoutRetryAfter} answers 503 notifier_not_ready without Retry-After`);
  }
}

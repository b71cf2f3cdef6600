import { isDeepStrictEqual } from 'node:util';
import type { OrderEvent } from '../../../src/events/envelope.js';
import { call, sleep } from './http.js';
import type { ResumingClient } from './resuming-client.js';
import type { Ledger, OrderBody } from './writers.js';

const UNCHANGING = ['product_id', 'quantity', 'client_name', 'client_email', 'unit_price', 'total_price', 'created_at'] as const;

export interface Findings {
  orders: number;
  committedUnacknowledged: number;
  events: number;
  eventIds: Set<string>;
  problems: string[];
}

async function getJson<T>(base: string, path: string): Promise<T> {
  const reply = await call(base, 'GET', path);
  if (reply.status !== 200 || reply.body === undefined) throw new Error(`GET ${path} answered ${reply.status}: ${reply.body}`);
  return JSON.parse(reply.body) as T;
}

/** Every order of these products, through the API, paging with the cursor. */
export async function listOrders(base: string, productIds: readonly number[]): Promise<Map<number, OrderBody>> {
  const found = new Map<number, OrderBody>();
  for (const productId of productIds) {
    let cursor: string | null = null;
    do {
      const page: { items: OrderBody[]; next_cursor: string | null } = await getJson(base, `/orders?product_id=${productId}&limit=200${cursor ? `&cursor=${cursor}` : ''}`);
      for (const order of page.items) found.set(order.id, order);
      cursor = page.next_cursor;
    } while (cursor);
  }
  return found;
}

/**
 * Holds the service to what the writers were told: every acknowledged order there and unchanged
 * but for acknowledged changes, nothing there that no request could have made, and each order's
 * history exactly one order.created and its status changes, gapless.
 */
export async function checkOrders(base: string, ledger: Ledger, found: Map<number, OrderBody>, historyTimeoutMs: number): Promise<Findings> {
  const problems: string[] = [];
  const byEmail = new Map([...found.values()].map((o) => [o.client_email as string, o]));
  for (const known of ledger.orders.values()) {
    const order = found.get(known.id);
    if (!order) {
      problems.push(`acknowledged order ${known.id} (${known.created.client_email}) is missing`);
      continue;
    }
    const changed = UNCHANGING.filter((field) => order[field] !== known.created[field]);
    if (changed.length) problems.push(`order ${known.id} changed ${changed.map((f) => `${f}: ${String(known.created[f])} → ${String(order[f])}`).join(', ')}`);
    if (order.status !== known.status || order.version !== known.version) {
      problems.push(`order ${known.id} is ${order.status} v${order.version}, acknowledged as ${known.status} v${known.version}`);
    }
  }
  for (const [email, input] of ledger.acknowledged) {
    const order = byEmail.get(email);
    if (!order) problems.push(`order acknowledged for ${email} is missing`);
    else if (order.product_id !== input.product_id || order.quantity !== input.quantity) problems.push(`order ${order.id} does not match the request that made it`);
  }
  let committedUnacknowledged = 0;
  for (const order of found.values()) {
    if (ledger.acknowledged.has(order.client_email as string)) continue;
    if (ledger.cutOffCreates.has(order.client_email as string)) committedUnacknowledged++;
    else problems.push(`order ${order.id} (${order.client_email}) exists but no request could have made it`);
  }

  const histories = await readHistories(base, found, historyTimeoutMs);
  const eventIds = new Set<string>();
  for (const [id, history] of histories) {
    const order = found.get(id)!;
    history.forEach((e) => eventIds.add(e.id));
    problems.push(...historyProblems(order, history));
  }
  return { orders: found.size, committedUnacknowledged, events: eventIds.size, eventIds, problems };
}

/** Waits (bounded) until each order's change log has as many events as its version, then reads them all. */
async function readHistories(base: string, found: Map<number, OrderBody>, timeoutMs: number): Promise<Map<number, OrderEvent[]>> {
  const histories = new Map<number, OrderEvent[]>();
  let waiting = [...found.values()];
  const deadline = Date.now() + timeoutMs;
  while (waiting.length > 0) {
    const still: OrderBody[] = [];
    for (const order of waiting) {
      const history = await getJson<OrderEvent[]>(base, `/orders/${order.id}/history`);
      histories.set(order.id, history);
      if (history.length < order.version) still.push(order);
    }
    waiting = still;
    if (waiting.length === 0 || Date.now() > deadline) break;
    await sleep(200);
  }
  return histories;
}

function historyProblems(order: OrderBody, history: OrderEvent[]): string[] {
  const problems: string[] = [];
  const sequences = history.map((e) => e.sequence);
  const expected = Array.from({ length: order.version }, (_, i) => i + 1);
  if (!isDeepStrictEqual(sequences, expected)) problems.push(`order ${order.id} v${order.version}: history sequences [${sequences.join(',')}]`);
  const created = history.filter((e) => e.type === 'order.created');
  if (created.length !== 1 || history[0]?.type !== 'order.created') problems.push(`order ${order.id}: ${created.length} order.created events, first is ${history[0]?.type}`);
  history.slice(1).forEach((event, i) => {
    const before = history[i]!;
    if (event.type !== 'order.status_changed' || event.change?.from !== before.order.status || event.change?.to !== event.order.status) {
      problems.push(`order ${order.id}: event ${event.sequence} ${event.type} ${JSON.stringify(event.change)} does not follow ${before.order.status}`);
    }
  });
  const last = history.at(-1);
  if (last && !isDeepStrictEqual(last.order, order)) problems.push(`order ${order.id}: its last event shows ${JSON.stringify(last.order)}, the API ${JSON.stringify(order)}`);
  return problems;
}

export interface ClientFindings {
  resumes: number;
  received: number;
  missed: number;
  duplicates: number;
  unknown: number;
  problems: string[];
}

/** Waits (bounded) until every client has every event, then counts what each missed, got twice, or got that never happened. */
export async function checkClients(clients: readonly ResumingClient[], eventIds: Set<string>, timeoutMs: number): Promise<ClientFindings> {
  const lacking = () => clients.reduce((n, c) => n + [...eventIds].filter((id) => !c.has(id)).length, 0);
  const deadline = Date.now() + timeoutMs;
  while (lacking() > 0 && Date.now() < deadline) await sleep(100);
  await Promise.all(clients.map((c) => c.stop()));
  const findings: ClientFindings = { resumes: 0, received: 0, missed: 0, duplicates: 0, unknown: 0, problems: [] };
  clients.forEach((client, i) => {
    const missed = [...eventIds].filter((id) => !client.has(id));
    const unknown = client.received.filter((e) => !eventIds.has(e.id));
    findings.resumes += client.resumes;
    findings.received += client.received.length;
    findings.missed += missed.length;
    findings.duplicates += client.received.length - client.distinct();
    findings.unknown += unknown.length;
    if (missed.length) findings.problems.push(`client ${i} missed ${missed.length} events, e.g. ${missed.slice(0, 3).join(', ')}`);
    if (unknown.length) findings.problems.push(`client ${i} got ${unknown.length} events that are in no order's history`);
    findings.problems.push(...client.outOfSequence.map((s) => `client ${i}: ${s}`), ...client.refusals.map((s) => `client ${i}: ${s}`));
  });
  return findings;
}

export async function stockLeft(base: string, productId: number): Promise<number> {
  return (await getJson<{ stock: number }>(base, `/products/${productId}`)).stock;
}

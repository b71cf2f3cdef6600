import type { OrderEvent } from '../../../src/events/envelope.js';
import { sleep } from '../../helpers/timing.js';
import type { Acknowledged, Answer, OrderBody } from './load.js';
import type { FailoverClient } from './ws-client.js';

export interface DatabaseView {
  orders: Map<number, OrderBody>;
  /** Each order's history as the API answers it. */
  histories: Map<number, OrderEvent[]>;
  /** Every event of an order as it now exists (the history's events of that very order: same created_at and email). */
  events: Map<string, OrderEvent>;
}

async function getJson<T>(base: string, path: string): Promise<{ status: number; body: T }> {
  const response = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(10_000) });
  return { status: response.status, body: (await response.json()) as T };
}

/** Every order through GET /orders and each one's history, waiting (bounded) until each history has as many events as its version. */
export async function readDatabase(base: string, timeoutMs: number): Promise<DatabaseView> {
  const orders = new Map<number, OrderBody>();
  let cursor: string | null = null;
  for (let page = 0; page < 100; page++) {
    const { status, body }: { status: number; body: { items: OrderBody[]; next_cursor: string | null } } = await getJson(base, `/orders?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    if (status !== 200) throw new Error(`GET /orders answered ${status}`);
    for (const order of body.items) orders.set(order.id, order);
    cursor = body.next_cursor;
    if (!cursor) break;
  }
  const histories = new Map<number, OrderEvent[]>();
  let waiting = [...orders.values()];
  const deadline = performance.now() + timeoutMs;
  while (waiting.length > 0) {
    const still: OrderBody[] = [];
    for (const order of waiting) {
      const { status, body } = await getJson<OrderEvent[]>(base, `/orders/${order.id}/history`);
      histories.set(order.id, status === 200 ? body : []);
      if (ownEvents(order, histories.get(order.id)!).length < order.version) still.push(order);
    }
    waiting = still;
    if (waiting.length === 0 || performance.now() > deadline) break;
    await sleep(200);
  }
  const events = new Map<string, OrderEvent>();
  for (const [id, history] of histories) for (const e of ownEvents(orders.get(id)!, history)) events.set(e.id, e);
  return { orders, histories, events };
}

const ownEvents = (order: OrderBody, history: OrderEvent[]) => history.filter((e) => e.order.created_at === order.created_at && e.order.client_email === order.client_email);

/** What is wrong with an order's history: anything but its own events, sequences 1..version, once each. */
export function historyProblems(order: OrderBody, history: OrderEvent[]): string[] {
  const problems: string[] = [];
  const foreign = history.length - ownEvents(order, history).length;
  if (foreign > 0) problems.push(`order ${order.id}: history has ${foreign} events of another order that had this id`);
  const sequences = history.map((e) => e.sequence).join(',');
  const expected = Array.from({ length: order.version }, (_, i) => i + 1).join(',');
  if (sequences !== expected) problems.push(`order ${order.id} v${order.version}: history sequences [${sequences}]`);
  return problems;
}

/** Acknowledged orders the database no longer has (gone, or the id now names another order), and acknowledged changes it lost. */
export function lostWrites(acknowledged: Iterable<Acknowledged>, db: DatabaseView): { orders: Acknowledged[]; changes: Acknowledged[] } {
  const orders: Acknowledged[] = [];
  const changes: Acknowledged[] = [];
  for (const known of acknowledged) {
    const now = db.orders.get(known.created.id);
    if (!now || now.client_email !== known.created.client_email) orders.push(known);
    else if (now.version < known.version) changes.push(known);
  }
  return { orders, changes };
}

export interface ClientFindings {
  received: number;
  missed: string[];
  duplicates: number;
  /** Events of no order the database now has (a lost order's). */
  unknown: number;
  outOfOrder: string[];
}

const orderKey = (e: OrderEvent) => `${e.order_id}@${e.order.created_at}`;

/**
 * One client against the database: `required` events it must have got, each at most once per epoch,
 * each order's (an order is its id and created_at) in sequence; a lost order's events are not counted in sequences.
 */
export function checkClient(client: FailoverClient, db: DatabaseView, required: Iterable<string>): ClientFindings {
  const seen = new Set<string>();
  const perEpoch = new Map<number, Set<string>>();
  const last = new Map<string, number>();
  const findings: ClientFindings = { received: client.received.length, missed: [], duplicates: 0, unknown: 0, outOfOrder: [] };
  for (const { event, epoch } of client.received) {
    const ids = perEpoch.get(epoch) ?? perEpoch.set(epoch, new Set()).get(epoch)!;
    if (ids.has(event.id)) findings.duplicates++;
    ids.add(event.id);
    seen.add(event.id);
    if (!db.events.has(event.id)) {
      findings.unknown++;
      continue;
    }
    const key = `${epoch}/${orderKey(event)}`;
    const previous = last.get(key);
    const expected = previous === undefined ? (epoch === 0 ? 1 : event.sequence) : previous + 1;
    if (event.sequence !== expected && event.sequence > (previous ?? 0) && findings.outOfOrder.length < 10) {
      findings.outOfOrder.push(`order ${event.order_id}: sequence ${event.sequence} after ${previous ?? 'nothing'} (epoch ${epoch})`);
    }
    last.set(key, Math.max(previous ?? 0, event.sequence));
  }
  for (const id of required) if (!seen.has(id)) findings.missed.push(id);
  return findings;
}

/** Waits (bounded) until every client has every required event. */
export async function waitForClients(clients: readonly FailoverClient[], required: (c: FailoverClient) => string[], timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  const lacking = () => clients.some((c) => {
    const got = new Set(c.received.map((r) => r.event.id));
    return required(c).some((id) => !got.has(id));
  });
  while (lacking() && performance.now() < deadline) await sleep(100);
}

/** Answers that break the failure contract, counted by kind: any status but `allowed`, and any 503 without Retry-After. */
export function badAnswers(answers: readonly Answer[], allowed: readonly number[]): string[] {
  const bad = new Map<string, number>();
  const count = (kind: string) => bad.set(kind, (bad.get(kind) ?? 0) + 1);
  for (const a of answers) {
    const what = `${a.method} ${a.path.replace(/\/\d+/, '/{id}')} ${a.status}${a.code ? ` ${a.code}` : ''}`;
    if (!allowed.includes(a.status)) count(what);
    else if (a.status === 503 && !a.retryAfter) count(`${what} without Retry-After`);
  }
  return [...bad].map(([kind, n]) => `${n} × ${kind}`);
}

/** Counts of statuses and problem codes, for the figures. */
export function tally(answers: readonly Answer[]): string {
  const counts = new Map<string, number>();
  for (const a of answers) counts.set(`${a.status}${a.code ? ` ${a.code}` : ''}`, (counts.get(`${a.status}${a.code ? ` ${a.code}` : ''}`) ?? 0) + 1);
  return [...counts].sort().map(([k, n]) => `${k}: ${n}`).join(', ');
}

import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type fc from 'fast-check';
import { OrderModel, cents, type OrderInput } from '../helpers/order-model.js';
import { send } from './http.js';

/** Ids no run ever creates: the service must answer them as unknown. */
export const UNKNOWN_PRODUCT_ID = 2_147_483_647;
export const UNKNOWN_ORDER_ID = Number.MAX_SAFE_INTEGER;

/** The model plus what this run made in the service, so commands address only the run's own data. */
export interface Model {
  state: OrderModel;
  runId: string;
  /** Product ids by slot; every run starts with its own. */
  productIds: number[];
  emails: string[];
  /** The body first sent with each key slot, so a retry can send it again. */
  keyedBodies: Map<number, OrderInput>;
  bursts: number;
}

export interface Real {
  app: FastifyInstance;
  stats: CommandStats;
}

export type OrderCommand = fc.AsyncCommand<Model, Real, false>;

export class CommandStats {
  runs = 0;
  readonly byName = new Map<string, number>();
  count(name: string): void {
    this.byName.set(name, (this.byName.get(name) ?? 0) + 1);
  }
  total(): number {
    return [...this.byName.values()].reduce((a, b) => a + b, 0);
  }
  toString(): string {
    return [...this.byName].sort(([a], [b]) => a.localeCompare(b)).map(([name, n]) => `${name} ${n}`).join(', ');
  }
}

/** Small stocks, so that runs reach "insufficient stock" and restocking often. */
const STARTING_CATALOG = [
  { price: '100.00', stock: null },
  { price: '3.33', stock: 10 },
  { price: '0.10', stock: 3 },
] as const;

export const PRODUCT_SLOTS = STARTING_CATALOG.length;
export const EMAIL_SLOTS = 3;
export const KEY_SLOTS = 3;

/** A fresh run: its own products (created through the API) and client emails, and a model that knows them. */
export async function startRun(app: FastifyInstance, stats: CommandStats): Promise<{ model: Model; real: Real }> {
  stats.runs++;
  const runId = randomUUID().slice(0, 8);
  const state = new OrderModel();
  const productIds: number[] = [];
  for (const [slot, product] of STARTING_CATALOG.entries()) {
    const created = await send(app, 'POST', '/products', { name: `run ${runId} product ${slot}`, price: Number(product.price), stock: product.stock });
    if (created.status !== 201) throw new Error(`could not create a product: ${created.status} ${created.body}`);
    const id = created.json<{ id: number }>().id;
    state.addProduct({ id, priceCents: cents(product.price), stock: product.stock });
    productIds.push(id);
  }
  const emails = Array.from({ length: EMAIL_SLOTS }, (_, i) => `client${i}.${runId}@example.com`);
  return { model: { state, runId, productIds, emails, keyedBodies: new Map(), bursts: 0 }, real: { app, stats } };
}

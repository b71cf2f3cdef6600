import { ORDER_STATUSES, type OrderStatus } from '../../src/events/envelope.js';

/**
 * The contract of DESIGN.md as a plain in-memory model: what the API must answer and how its state
 * moves. Money is in whole cents, so every total is exact; the service's ids are adopted, not predicted.
 */

export { ORDER_STATUSES, type OrderStatus };

export const NEXT_STATUSES: Readonly<Record<OrderStatus, readonly OrderStatus[]>> = {
  Pending: ['Confirmed', 'Cancelled'],
  Confirmed: ['Shipped', 'Cancelled'],
  Shipped: ['Delivered'],
  Delivered: [],
  Cancelled: [],
};

export const canMove = (from: OrderStatus, to: OrderStatus): boolean => NEXT_STATUSES[from].includes(to);

export interface OrderInput {
  product_id: number;
  quantity: number;
  client_name: string;
  client_email: string;
}

export interface ModelProduct {
  id: number;
  priceCents: number;
  /** null = unlimited */
  stock: number | null;
}

export interface ModelOrder {
  id: number;
  product_id: number;
  quantity: number;
  client_name: string;
  client_email: string;
  status: OrderStatus;
  unitCents: number;
  totalCents: number;
  version: number;
  created_at: string;
}

export type CreateDecision =
  | { status: 201; unitCents: number; totalCents: number }
  | { status: 409; code: 'insufficient_stock' }
  | { status: 422; code: 'unknown_product' };

export type StatusDecision = { status: 200 } | { status: 404; code: 'order_not_found' } | { status: 409; code: 'invalid_transition' };

/** What a POST with an Idempotency-Key was first answered, to be replayed as it was. */
export interface RememberedAnswer {
  fingerprint: string;
  status: number;
  body: string;
}

export type KeyedDecision =
  | { kind: 'first' }
  | { kind: 'replay'; answer: RememberedAnswer }
  | { kind: 'reused'; status: 422; code: 'idempotency_key_reused' };

export interface OrderFilter {
  status?: OrderStatus;
  client_email?: string;
  product_id?: number;
}

export class OrderModel {
  readonly products = new Map<number, ModelProduct>();
  readonly orders = new Map<number, ModelOrder>();
  readonly keys = new Map<string, RememberedAnswer>();

  /** The order ids in creation order, so commands can pick one by index. */
  orderIds(): number[] {
    return [...this.orders.keys()];
  }

  addProduct(product: ModelProduct): void {
    this.products.set(product.id, { ...product });
  }

  decideCreate(input: OrderInput): CreateDecision {
    const product = this.products.get(input.product_id);
    if (!product) return { status: 422, code: 'unknown_product' };
    if (product.stock !== null && product.stock < input.quantity) return { status: 409, code: 'insufficient_stock' };
    return { status: 201, unitCents: product.priceCents, totalCents: product.priceCents * input.quantity };
  }

  /** Records an order the service created (with the id it chose) and reserves its stock. */
  applyCreate(id: number, input: OrderInput, createdAt: string): ModelOrder {
    const decision = this.decideCreate(input);
    if (decision.status !== 201) throw new Error(`model: order ${id} should not have been created (${decision.code})`);
    if (this.orders.has(id)) throw new Error(`model: order id ${id} handed out twice`);
    const product = this.products.get(input.product_id)!;
    if (product.stock !== null) product.stock -= input.quantity;
    const order: ModelOrder = {
      id,
      product_id: input.product_id,
      quantity: input.quantity,
      client_name: input.client_name.trim(),
      client_email: input.client_email,
      status: 'Pending',
      unitCents: decision.unitCents,
      totalCents: decision.totalCents,
      version: 1,
      created_at: createdAt,
    };
    this.orders.set(id, order);
    return order;
  }

  decideStatusChange(id: number, to: OrderStatus): StatusDecision {
    const order = this.orders.get(id);
    if (!order) return { status: 404, code: 'order_not_found' };
    return canMove(order.status, to) ? { status: 200 } : { status: 409, code: 'invalid_transition' };
  }

  /** Moves the order one step; a cancellation gives its quantity back to a product whose stock is counted. */
  applyStatusChange(id: number, to: OrderStatus): ModelOrder {
    const order = this.orders.get(id);
    if (!order || !canMove(order.status, to)) throw new Error(`model: order ${id} cannot become ${to}`);
    order.status = to;
    order.version++;
    const product = this.products.get(order.product_id);
    if (to === 'Cancelled' && product && product.stock !== null) product.stock += order.quantity;
    return order;
  }

  patchProduct(id: number, changes: { priceCents?: number; stock?: number | null }): ModelProduct | undefined {
    const product = this.products.get(id);
    if (!product) return undefined;
    if (changes.priceCents !== undefined) product.priceCents = changes.priceCents;
    if (changes.stock !== undefined) product.stock = changes.stock;
    return product;
  }

  decideKeyed(key: string, fingerprint: string): KeyedDecision {
    const answer = this.keys.get(key);
    if (!answer) return { kind: 'first' };
    if (answer.fingerprint !== fingerprint) return { kind: 'reused', status: 422, code: 'idempotency_key_reused' };
    return { kind: 'replay', answer };
  }

  remember(key: string, answer: RememberedAnswer): void {
    this.keys.set(key, answer);
  }

  /** GET /orders with these filters: newest (highest id) first. */
  list(filter: OrderFilter): ModelOrder[] {
    return [...this.orders.values()]
      .filter((o) => filter.status === undefined || o.status === filter.status)
      .filter((o) => filter.client_email === undefined || o.client_email === filter.client_email)
      .filter((o) => filter.product_id === undefined || o.product_id === filter.product_id)
      .sort((a, b) => b.id - a.id);
  }
}

/** What identifies a request body for Idempotency-Key: its fields after trimming, in any key order. */
export function fingerprintOf(input: OrderInput): string {
  return JSON.stringify([input.product_id, input.quantity, input.client_name.trim(), input.client_email]);
}

/** Exact cents of a decimal written in JSON text ("76.5", "76.50", "76"); never through a float. */
export function cents(decimal: string): number {
  const match = /^(\d+)(?:\.(\d{1,2}))?$/.exec(decimal);
  if (!match) throw new Error(`not a money amount with at most two decimals: ${decimal}`);
  return Number(match[1]) * 100 + Number((match[2] ?? '').padEnd(2, '0'));
}

/** Cents as the API writes money: two decimals. */
export function money(amount: number): string {
  return `${Math.trunc(amount / 100)}.${String(amount % 100).padStart(2, '0')}`;
}

/** The literal text of each occurrence of a numeric field in a JSON body, in order: money is checked as written. */
export function rawNumbers(body: string, field: string): string[] {
  return [...body.matchAll(new RegExp(`"${field}":(-?[0-9.eE+-]+)`, 'g'))].map((m) => m[1]!);
}

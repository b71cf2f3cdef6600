import type { Queryable } from '../db/client.js';
import type { OrderStatus } from '../events/envelope.js';
import { envelopeJson, orderJson, isoTime, STATEMENT } from './sql.js';

/** The order as JSON text, rendered by the database: sent to clients as it is. */
export type OrderJson = string & { readonly __brand: 'OrderJson' };

// One statement reserves stock, prices the order, inserts it, writes its event and remembers the
// idempotent response: one round trip, one transaction, and stock can never go negative.
const CREATE_ORDER = `
WITH product AS (
  SELECT id, price, stock FROM products WHERE id = $1
), reserved AS (
  UPDATE products p SET stock = p.stock - $2::int, updated_at = $5::timestamptz
  FROM product WHERE p.id = product.id AND product.stock IS NOT NULL AND p.stock >= $2::int
  RETURNING p.id, p.price
), priced AS (
  SELECT id, price FROM product WHERE stock IS NULL
  UNION ALL SELECT id, price FROM reserved
), created AS (
  INSERT INTO orders (product_id, quantity, client_name, client_email, status, unit_price, total_price, version, created_at, updated_at)
  SELECT id, $2::int, $3, $4, 'Pending', price, price * $2::int, 1, $5::timestamptz, $5::timestamptz FROM priced
  RETURNING *
), body AS (
  SELECT created.*, ${orderJson('created')} AS json FROM created
), event AS (
  INSERT INTO outbox (event_id, order_id, sequence, type, payload, request_id)
  SELECT $6::uuid, body.id, body.version, 'order.created',
    ${envelopeJson('body', 'body.json', '$6::uuid', 'order.created')}, $8::text FROM body
), remembered AS (
  UPDATE idempotency_keys SET response_status = 201, response_body = body.json FROM body WHERE key = $7::text
)
SELECT EXISTS (SELECT 1 FROM product) AS product_found, (SELECT id FROM body) AS id, (SELECT json::text FROM body) AS json`;

export interface NewOrder {
  productId: number;
  quantity: number;
  clientName: string;
  clientEmail: string;
  now: Date;
  eventId: string;
  idempotencyKey: string | null;
  /** The request that placed the order, written beside its event. */
  requestId?: string | null;
}

export type CreateResult = { kind: 'created'; id: number; json: OrderJson } | { kind: 'unknown_product' } | { kind: 'insufficient_stock' };

export async function insertOrder(db: Queryable, o: NewOrder): Promise<CreateResult> {
  const params = [
    o.productId,
    o.quantity,
    o.clientName,
    o.clientEmail,
    o.now.toISOString(),
    o.eventId,
    o.idempotencyKey,
    o.requestId ?? null,
  ];
  const [row] = await db.query<{ product_found: boolean; id: number | null; json: OrderJson | null }>(
    CREATE_ORDER,
    params,
    STATEMENT.createOrder,
  );
  if (row?.json && row.id) return { kind: 'created', id: row.id, json: row.json };
  return row?.product_found ? { kind: 'insufficient_stock' } : { kind: 'unknown_product' };
}

/** The order's JSON and its version, which is its entity tag. */
export interface VersionedOrder {
  json: OrderJson;
  version: number;
}

const GET_ORDER = `SELECT ${orderJson('o')}::text AS json, o.version FROM orders o WHERE o.id = $1`;

export async function findOrderJson(db: Queryable, id: number): Promise<VersionedOrder | undefined> {
  const [row] = await db.query<VersionedOrder>(GET_ORDER, [id], STATEMENT.getOrder);
  return row;
}

export async function findOrderState(db: Queryable, id: number): Promise<{ status: OrderStatus; version: number } | undefined> {
  const [row] = await db.query<{ status: OrderStatus; version: number }>(
    'SELECT status, version FROM orders WHERE id = $1',
    [id],
    STATEMENT.getOrderState,
  );
  return row;
}

// The version check makes the change conditional on what the decision saw; a cancelled order
// returns its quantity to a product whose stock is counted.
const CHANGE_STATUS = `
WITH changed AS (
  UPDATE orders SET status = $3, version = version + 1, updated_at = $5::timestamptz
  WHERE id = $1 AND version = $2 RETURNING *
), restocked AS (
  UPDATE products p SET stock = p.stock + changed.quantity, updated_at = $5::timestamptz
  FROM changed WHERE $7::boolean AND p.id = changed.product_id AND p.stock IS NOT NULL
), body AS (
  SELECT changed.*, ${orderJson('changed')} AS json FROM changed
), event AS (
  INSERT INTO outbox (event_id, order_id, sequence, type, payload, request_id)
  SELECT $6::uuid, body.id, body.version, 'order.status_changed',
    ${envelopeJson('body', 'body.json', '$6::uuid', 'order.status_changed', { from: '$4::text', to: '$3::text' })}, $8::text FROM body
)
SELECT json::text AS json FROM body`;

export interface StatusUpdate {
  id: number;
  expectedVersion: number;
  from: OrderStatus;
  to: OrderStatus;
  restock: boolean;
  now: Date;
  eventId: string;
  requestId?: string | null;
}

/** Applies a decided change; undefined when the order changed since the decision was made. */
export async function updateOrderStatus(db: Queryable, u: StatusUpdate): Promise<VersionedOrder | undefined> {
  const params = [u.id, u.expectedVersion, u.to, u.from, u.now.toISOString(), u.eventId, u.restock, u.requestId ?? null];
  const [row] = await db.query<{ json: OrderJson }>(CHANGE_STATUS, params, STATEMENT.changeStatus);
  return row && { json: row.json, version: u.expectedVersion + 1 };
}

export interface OrderFilter {
  status?: OrderStatus | undefined;
  clientEmail?: string | undefined;
  productId?: number | undefined;
  beforeId?: number | undefined;
  limit: number;
}

export async function listOrderJson(db: Queryable, f: OrderFilter): Promise<OrderJson[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (clause: (p: string) => string, value: unknown) => {
    params.push(value);
    where.push(clause(`$${params.length}`));
  };
  if (f.status) add((p) => `o.status = ${p}`, f.status);
  if (f.clientEmail) add((p) => `o.client_email = ${p}`, f.clientEmail);
  if (f.productId) add((p) => `o.product_id = ${p}`, f.productId);
  if (f.beforeId) add((p) => `o.id < ${p}`, f.beforeId);
  params.push(f.limit);
  const text = `SELECT ${orderJson('o')}::text AS json FROM orders o
    ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY o.id DESC LIMIT $${params.length}`;
  const rows = await db.query<{ json: OrderJson }>(text, params);
  return rows.map((r) => r.json);
}

/** When the order was created, as its JSON writes it; undefined when there is no such order. */
export async function orderCreatedAt(db: Queryable, id: number): Promise<string | undefined> {
  const [row] = await db.query<{ created_at: string }>(
    `SELECT ${isoTime('created_at')} AS created_at FROM orders WHERE id = $1`,
    [id],
    STATEMENT.orderCreatedAt,
  );
  return row?.created_at;
}

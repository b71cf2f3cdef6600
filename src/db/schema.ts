import { sql } from 'drizzle-orm';
import { bigint, check, customType, index, integer, json, numeric, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';

const createdAt = () => timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow();
const updatedAt = () => timestamp('updated_at', { withTimezone: true, precision: 3 }).notNull().defaultNow();

export const products = pgTable(
  'products',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    name: text('name').notNull(),
    // Money is numeric, never float: prices and totals stay exact to the cent.
    price: numeric('price', { precision: 12, scale: 2 }).notNull(),
    stock: integer('stock'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [check('products_price_not_negative', sql`${t.price} >= 0`), check('products_stock_not_negative', sql`${t.stock} >= 0`)],
);

export const orders = pgTable(
  'orders',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    productId: integer('product_id')
      .notNull()
      .references(() => products.id),
    quantity: integer('quantity').notNull(),
    clientName: text('client_name').notNull(),
    clientEmail: text('client_email').notNull(),
    status: text('status').notNull(),
    unitPrice: numeric('unit_price', { precision: 12, scale: 2 }).notNull(),
    totalPrice: numeric('total_price', { precision: 16, scale: 2 }).notNull(),
    version: integer('version').notNull(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    check('orders_quantity_range', sql`${t.quantity} BETWEEN 1 AND 10000`),
    check('orders_status_known', sql`${t.status} IN ('Pending', 'Confirmed', 'Shipped', 'Delivered', 'Cancelled')`),
    index('orders_client_email_id').on(t.clientEmail, t.id),
    index('orders_status_id').on(t.status, t.id),
    index('orders_product_id_id').on(t.productId, t.id),
  ],
);

/** PostgreSQL's 64-bit transaction id: the transaction that wrote a row, which fixes its place in the log. */
const xid8 = customType<{ data: string; driverData: string }>({ dataType: () => 'xid8' });

/**
 * Events written in the same transaction as the change they report. Their order is (xid, position):
 * see src/outbox/store.ts for why that order is exact and never depends on a clock.
 */
export const outbox = pgTable(
  'outbox',
  {
    position: bigint('position', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    xid: xid8('xid')
      .notNull()
      .default(sql`pg_current_xact_id()`),
    eventId: uuid('event_id').notNull(),
    orderId: bigint('order_id', { mode: 'number' }).notNull(),
    sequence: integer('sequence').notNull(),
    type: text('type').notNull(),
    // json, not jsonb: the text is kept as written, so the relay ships it without re-encoding.
    payload: json('payload').notNull(),
    // The X-Request-Id of the request that wrote the event, carried to consumers so logs can follow it.
    requestId: text('request_id'),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('outbox_event_id').on(t.eventId),
    uniqueIndex('outbox_order_sequence').on(t.orderId, t.sequence),
    index('outbox_xid_position').on(t.xid, t.position),
  ],
);

/** Where the relay has shipped the log up to, inclusive: one row, moved once per confirmed batch. */
export const outboxCheckpoint = pgTable('outbox_checkpoint', {
  name: text('name').primaryKey(),
  xid: xid8('xid').notNull(),
  position: bigint('position', { mode: 'number' }).notNull(),
});

export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    key: text('key').primaryKey(),
    fingerprint: text('fingerprint').notNull(),
    responseStatus: integer('response_status'),
    responseBody: json('response_body'),
    createdAt: createdAt(),
  },
  (t) => [index('idempotency_keys_created_at').on(t.createdAt)],
);

/** The embedded change log, used when MONGODB_URL is unset: one row per event id. */
export const orderChanges = pgTable(
  'order_changes',
  {
    eventId: uuid('event_id').primaryKey(),
    orderId: bigint('order_id', { mode: 'number' }).notNull(),
    sequence: integer('sequence').notNull(),
    type: text('type').notNull(),
    occurredAt: timestamp('occurred_at', { withTimezone: true, precision: 3 }).notNull(),
    envelope: json('envelope').notNull(),
  },
  (t) => [index('order_changes_order_sequence').on(t.orderId, t.sequence)],
);

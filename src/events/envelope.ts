import { Type, type Static } from '@sinclair/typebox';
import { DECIMAL_PLACES, MONEY_DECIMALS } from '../http/money.js';

/** Money as this API writes it: a JSON number with exactly two decimals (`200.00`). */
const Money = (description: string) =>
  Type.Number({ [DECIMAL_PLACES]: MONEY_DECIMALS, description: `${description}; written with exactly two decimals` });

export const ORDER_STATUSES = ['Pending', 'Confirmed', 'Shipped', 'Delivered', 'Cancelled'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];
// An enum rather than a union of literals, so a bad value gets one clear error, not one per branch.
export const OrderStatus = Type.Unsafe<OrderStatus>({ type: 'string', enum: [...ORDER_STATUSES] });

export const Order = Type.Object(
  {
    id: Type.Integer({ minimum: 1 }),
    product_id: Type.Integer({ minimum: 1 }),
    quantity: Type.Integer({ minimum: 1 }),
    client_name: Type.String(),
    client_email: Type.String(),
    status: OrderStatus,
    total_price: Money('unit_price × quantity, exact to the cent'),
    unit_price: Money('catalog price at the time of the order'),
    created_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
    version: Type.Integer({ minimum: 1, description: 'bumped by every change; equals the sequence of the latest event' }),
  },
  { $id: 'Order' },
);
export type Order = Static<typeof Order>;

export const EVENT_TYPES = ['order.created', 'order.status_changed'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** The one envelope used on RabbitMQ, over WebSocket and in the change log. */
export const OrderEvent = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    type: Type.Unsafe<EventType>({ type: 'string', enum: [...EVENT_TYPES] }),
    schema_version: Type.Literal(1),
    occurred_at: Type.String({ format: 'date-time' }),
    order_id: Type.Integer({ minimum: 1 }),
    sequence: Type.Integer({ minimum: 1 }),
    order: Order,
    change: Type.Optional(Type.Object({ from: OrderStatus, to: OrderStatus })),
  },
  { $id: 'OrderEvent' },
);
export type OrderEvent = Static<typeof OrderEvent>;

export const EXCHANGE = 'orders';

const MONEY_FIELDS: ReadonlySet<string> = new Set(['total_price', 'unit_price']);

/**
 * JSON for an envelope held as an object (a MongoDB document, a test's event) with money written as the database
 * writes it, two decimals (`200.00`); JSON.stringify would write `200`. Exact for every amount below 2^53 cents.
 */
export function envelopeJson(value: unknown, key?: string): string {
  if (typeof value === 'number' && key !== undefined && MONEY_FIELDS.has(key)) return value.toFixed(MONEY_DECIMALS);
  if (Array.isArray(value)) return `[${value.map((item) => envelopeJson(item)).join(',')}]`;
  if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    const fields = Object.entries(value).filter(([, field]) => field !== undefined);
    return `{${fields.map(([name, field]) => `${JSON.stringify(name)}:${envelopeJson(field, name)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

import { Type, type Static } from '@sinclair/typebox';

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
    total_price: Type.Number({ description: 'unit_price × quantity, exact to the cent' }),
    unit_price: Type.Number({ description: 'catalog price at the time of the order' }),
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

import { Type, type Static } from '@sinclair/typebox';
import { Order, OrderEvent, OrderStatus } from '../events/envelope.js';
import { PRINTABLE, VISIBLE } from '../http/validation.js';

const PG_INT_MAX = 2_147_483_647;

export const ProductId = Type.Integer({ minimum: 1, maximum: PG_INT_MAX });
export const OrderId = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });

export const CreateOrderBody = Type.Object(
  {
    product_id: ProductId,
    quantity: Type.Integer({ minimum: 1, maximum: 10_000 }),
    client_name: Type.String({
      minLength: 1,
      maxLength: 200,
      pattern: PRINTABLE,
      allOf: [{ pattern: VISIBLE }],
      description: 'trimmed before it is checked; at least one visible character',
    }),
    client_email: Type.String({ format: 'email', maxLength: 254 }),
  },
  {
    additionalProperties: false,
    examples: [{ product_id: 1, quantity: 2, client_name: 'John Doe', client_email: 'john.doe@example.com' }],
  },
);
export type CreateOrderBody = Static<typeof CreateOrderBody>;

export const ChangeStatusBody = Type.Object({ status: OrderStatus }, { additionalProperties: false });
export type ChangeStatusBody = Static<typeof ChangeStatusBody>;

export const OrderParams = Type.Object({ id: OrderId });

export const ListOrdersQuery = Type.Object(
  {
    status: Type.Optional(OrderStatus),
    client_email: Type.Optional(Type.String({ minLength: 1, maxLength: 254 })),
    product_id: Type.Optional(ProductId),
    limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'next_cursor of the previous page' })),
  },
  { additionalProperties: false },
);
export type ListOrdersQuery = Static<typeof ListOrdersQuery>;

export const OrderPage = Type.Object({
  items: Type.Array(Type.Ref(Order)),
  next_cursor: Type.Union([Type.String(), Type.Null()]),
});

export const OrderHistory = Type.Array(Type.Ref(OrderEvent));

export const IdempotencyKeyHeader = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7e]+$' })),
});

export const ConditionalReadHeaders = Type.Object({
  'if-none-match': Type.Optional(Type.String({ maxLength: 1024, description: 'the ETag of the copy the client has' })),
});

export const ConditionalChangeHeaders = Type.Object({
  'if-match': Type.Optional(Type.String({ maxLength: 1024, description: 'the ETag of the version the client means to change' })),
});

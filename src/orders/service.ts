import type { Database } from '../db/client.js';
import { ApiError, toProblem } from '../errors.js';
import type { OrderEvent, OrderStatus } from '../events/envelope.js';
import { claimKey, fingerprint, rememberResponse, releaseKey } from './idempotency.js';
import { findOrderJson, findOrderState, insertOrder, listOrderJson, orderExists, updateOrderStatus, type OrderJson } from './repository.js';
import type { CreateOrderBody, ListOrdersQuery } from './schemas.js';
import { changeStatus } from './status.js';

export interface OrderServiceDeps {
  db: Database;
  now: () => Date;
  newId: () => string;
  /** Called after a commit that wrote events, so the relay ships them without waiting for its sweep. */
  eventsWritten: () => void;
  /** One order's events, oldest first, from the change log. */
  history: (orderId: number) => Promise<OrderEvent[]>;
}

export interface CreateOutcome {
  status: number;
  body: string;
  replayed: boolean;
  orderId?: number;
}

/** A version conflict means someone else changed the order between read and write: decide again. */
const MAX_STATUS_ATTEMPTS = 5;

export function createOrderService(deps: OrderServiceDeps) {
  const { db } = deps;

  async function placeOrder(input: CreateOrderBody, idempotencyKey: string | null): Promise<CreateOutcome> {
    const result = await insertOrder(db, {
      productId: input.product_id,
      quantity: input.quantity,
      clientName: input.client_name,
      clientEmail: input.client_email,
      now: deps.now(),
      eventId: deps.newId(),
      idempotencyKey,
    });
    if (result.kind === 'created') {
      deps.eventsWritten();
      return { status: 201, body: result.json, replayed: false, orderId: result.id };
    }
    const error =
      result.kind === 'unknown_product'
        ? new ApiError('unknown_product', `There is no product ${input.product_id}.`, [{ field: 'product_id', message: 'no such product' }])
        : new ApiError('insufficient_stock', `Product ${input.product_id} has fewer than ${input.quantity} in stock.`);
    return { status: error.status, body: JSON.stringify(toProblem(error)), replayed: false };
  }

  return {
    async createOrder(input: CreateOrderBody, idempotencyKey: string | undefined): Promise<CreateOutcome> {
      if (!idempotencyKey) return placeOrder(input, null);
      const claim = await claimKey(db, idempotencyKey, fingerprint(input));
      if (claim.kind === 'replay') return replay(claim.status, claim.body);
      try {
        const outcome = await placeOrder(input, idempotencyKey);
        if (outcome.status !== 201) await rememberResponse(db, idempotencyKey, outcome.status, outcome.body);
        return outcome;
      } catch (error) {
        await releaseKey(db, idempotencyKey).catch(() => undefined);
        throw error;
      }
    },

    async getOrder(id: number): Promise<OrderJson> {
      const json = await findOrderJson(db, id);
      if (!json) throw orderNotFound(id);
      return json;
    },

    async listOrders(query: ListOrdersQuery): Promise<{ items: OrderJson[]; nextCursor: string | null }> {
      const items = await listOrderJson(db, {
        status: query.status,
        clientEmail: query.client_email,
        productId: query.product_id,
        beforeId: query.cursor === undefined ? undefined : decodeCursor(query.cursor),
        limit: query.limit + 1,
      });
      const more = items.length > query.limit;
      const page = more ? items.slice(0, query.limit) : items;
      const last = page.at(-1);
      return { items: page, nextCursor: more && last ? encodeCursor((JSON.parse(last) as { id: number }).id) : null };
    },

    async changeOrderStatus(id: number, to: OrderStatus): Promise<OrderJson> {
      for (let attempt = 0; attempt < MAX_STATUS_ATTEMPTS; attempt++) {
        const current = await findOrderState(db, id);
        if (!current) throw orderNotFound(id);
        const change = changeStatus(current, to);
        const json = await updateOrderStatus(db, {
          id,
          expectedVersion: current.version,
          from: change.from,
          to: change.to,
          restock: change.restock,
          now: deps.now(),
          eventId: deps.newId(),
        });
        if (json) {
          deps.eventsWritten();
          return json;
        }
      }
      throw new ApiError('concurrent_update', `Order ${id} kept changing while this request ran; retry it.`);
    },

    async orderHistory(id: number): Promise<OrderEvent[]> {
      if (!(await orderExists(db, id))) throw orderNotFound(id);
      return deps.history(id);
    },
  };
}

export type OrderService = ReturnType<typeof createOrderService>;

function replay(status: number, body: string): CreateOutcome {
  const orderId = status === 201 ? (JSON.parse(body) as { id: number }).id : undefined;
  return { status, body, replayed: true, ...(orderId ? { orderId } : {}) };
}

function orderNotFound(id: number): ApiError {
  return new ApiError('order_not_found', `There is no order ${id}.`);
}

function encodeCursor(id: number): string {
  return Buffer.from(`o:${id}`).toString('base64url');
}

function decodeCursor(cursor: string): number {
  const match = /^o:([1-9]\d{0,15})$/.exec(Buffer.from(cursor, 'base64url').toString());
  const id = match ? Number(match[1]) : NaN;
  if (!Number.isSafeInteger(id)) {
    throw new ApiError('validation_failed', 'The cursor is not one this API issued.', [{ field: 'cursor', message: 'invalid cursor' }]);
  }
  return id;
}

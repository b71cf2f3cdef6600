import type { Database, Queryable } from '../db/client.js';
import { ApiError, toProblem } from '../errors.js';
import type { OrderStatus } from '../events/envelope.js';
import { claimKey, fingerprint, holdsLease, rememberResponse, releaseKey } from './idempotency.js';
import {
  findOrderJson,
  findOrderState,
  insertOrder,
  listOrderJson,
  orderCreatedAt,
  updateOrderStatus,
  type OrderJson,
  type VersionedOrder,
} from './repository.js';
import type { CreateOrderBody, ListOrdersQuery } from './schemas.js';
import { changeStatus } from './status.js';

export interface OrderServiceDeps {
  db: Database;
  now: () => Date;
  newId: () => string;
  /** Called after a commit that wrote an event, so the relay ships it without waiting for its sweep (and metrics count it). */
  eventsWritten: (change: OrderChange) => void;
  /** One order's events, oldest first, from the change log: a JSON array, money with two decimals. */
  /** The order's events; `createdAt` names which order, should a failover have handed its id out twice. */
  history: (orderId: number, createdAt: string) => Promise<string>;
}

/** What a committed event reported. */
export type OrderChange = { type: 'order.created' } | { type: 'order.status_changed'; from: OrderStatus; to: OrderStatus };

export interface CreateOutcome {
  status: number;
  body: string;
  replayed: boolean;
  orderId?: number;
  /** For a 409 while the key's first request runs: seconds until its lease ends. */
  retryAfterSeconds?: number;
}

/** A version conflict means someone else changed the order between read and write: decide again. */
const MAX_STATUS_ATTEMPTS = 5;
const MAX_LEASE_ATTEMPTS = 3;

export function createOrderService(deps: OrderServiceDeps) {
  const { db } = deps;

  async function placeOrder(
    q: Queryable,
    input: CreateOrderBody,
    idempotencyKey: string | null,
    requestId: string | null,
  ): Promise<CreateOutcome> {
    const result = await insertOrder(q, {
      productId: input.product_id,
      quantity: input.quantity,
      clientName: input.client_name,
      clientEmail: input.client_email,
      now: deps.now(),
      eventId: deps.newId(),
      idempotencyKey,
      requestId,
    });
    if (result.kind === 'created') return { status: 201, body: result.json, replayed: false, orderId: result.id };
    const error =
      result.kind === 'unknown_product'
        ? new ApiError('unknown_product', `There is no product ${input.product_id}.`, [{ field: 'product_id', message: 'no such product' }])
        : new ApiError('insufficient_stock', `Product ${input.product_id} has fewer than ${input.quantity} in stock.`);
    return { status: error.status, body: JSON.stringify(toProblem(error)), replayed: false };
  }

  async function createWithKey(input: CreateOrderBody, key: string, requestId: string | null): Promise<CreateOutcome> {
    const print = fingerprint(input);
    // A request that loses its lease to a retry answers what the key says after that.
    for (let attempt = 0; attempt < MAX_LEASE_ATTEMPTS; attempt++) {
      const claim = await claimKey(db, key, print);
      if (claim.kind === 'replay') return replay(claim.status, claim.body);
      if (claim.kind === 'in_progress') return inProgress(claim.retryAfterSeconds);
      const outcome = await createHoldingLease(input, key, claim.lease, requestId);
      if (outcome) return outcome;
    }
    return inProgress(1);
  }

  async function createHoldingLease(
    input: CreateOrderBody,
    key: string,
    lease: string,
    requestId: string | null,
  ): Promise<CreateOutcome | undefined> {
    try {
      return await db.transaction(async (tx) => {
        if (!(await holdsLease(tx, key, lease))) return undefined;
        const placed = await placeOrder(tx, input, key, requestId);
        // Stryker disable next-line ConditionalExpression: the order's statement already stored its 201 there
        if (placed.status !== 201) await rememberResponse(tx, key, placed.status, placed.body);
        return placed;
      });
    } catch (error) {
      // Not awaited: when the database is cut off, the answer must not wait out a second timeout.
      void releaseKey(db, key, lease).catch(() => undefined);
      throw error;
    }
  }

  return {
    /** `requestId` is written beside the event, so the request's logs can be followed to its consumers. */
    async createOrder(input: CreateOrderBody, idempotencyKey: string | undefined, requestId: string | null = null): Promise<CreateOutcome> {
      const outcome = idempotencyKey ? await createWithKey(input, idempotencyKey, requestId) : await placeOrder(db, input, null, requestId);
      if (outcome.status === 201 && !outcome.replayed) deps.eventsWritten({ type: 'order.created' });
      return outcome;
    },

    async getOrder(id: number): Promise<VersionedOrder> {
      const order = await findOrderJson(db, id);
      if (!order) throw orderNotFound(id);
      return order;
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

    /** `expected`, from If-Match, says which versions the client means to change; anything else is 412. */
    async changeOrderStatus(
      id: number,
      to: OrderStatus,
      expected?: (version: number) => boolean,
      requestId: string | null = null,
    ): Promise<VersionedOrder> {
      for (let attempt = 0; attempt < MAX_STATUS_ATTEMPTS; attempt++) {
        const current = await findOrderState(db, id);
        if (!current) throw orderNotFound(id);
        if (expected && !expected(current.version)) {
          throw new ApiError(
            'precondition_failed',
            `Order ${id} is at version ${current.version}, not the one in If-Match; read it again before changing it.`,
          );
        }
        const change = changeStatus(current, to);
        const changed = await updateOrderStatus(db, {
          id,
          expectedVersion: current.version,
          from: change.from,
          to: change.to,
          restock: change.restock,
          now: deps.now(),
          eventId: deps.newId(),
          requestId,
        });
        if (changed) {
          deps.eventsWritten({ type: 'order.status_changed', from: change.from, to: change.to });
          return changed;
        }
      }
      throw new ApiError('concurrent_update', `Order ${id} kept changing while this request ran; retry it.`);
    },

    async orderHistory(id: number): Promise<string> {
      const createdAt = await orderCreatedAt(db, id);
      if (createdAt === undefined) throw orderNotFound(id);
      return deps.history(id, createdAt);
    },
  };
}

export type OrderService = ReturnType<typeof createOrderService>;

function replay(status: number, body: string): CreateOutcome {
  // A stored refusal is a problem document, which has no id.
  const orderId = (JSON.parse(body) as { id?: number }).id;
  return { status, body, replayed: true, ...(orderId ? { orderId } : {}) };
}

function inProgress(retryAfterSeconds: number): CreateOutcome {
  const error = new ApiError(
    'idempotency_request_in_progress',
    'A request with this Idempotency-Key is still running; retry after it finishes.',
  );
  return { status: error.status, body: JSON.stringify(toProblem(error)), replayed: false, retryAfterSeconds };
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

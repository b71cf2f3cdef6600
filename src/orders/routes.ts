import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { Problem } from '../errors.js';
import { Order } from '../events/envelope.js';
import { etagOf, namesVersion } from '../http/etag.js';
import { sendEmpty, sendRawJson } from '../http/raw-json.js';
import { trimFields } from '../http/validation.js';
import type { OrderService } from './service.js';
import {
  ChangeStatusBody,
  ConditionalChangeHeaders,
  ConditionalReadHeaders,
  CreateOrderBody,
  IdempotencyKeyHeader,
  ListOrdersQuery,
  OrderHistory,
  OrderPage,
  OrderParams,
} from './schemas.js';

const problem = Type.Ref(Problem);

export const orderRoutes: FastifyPluginAsyncTypebox<{ orders: OrderService }> = async (app, { orders }) => {
  app.post(
    '/orders',
    {
      preValidation: trimFields('client_name'),
      schema: {
        tags: ['orders'],
        summary: 'Create an order',
        description: 'Prices the order from the catalog and reserves stock atomically. Send an Idempotency-Key to retry safely.',
        headers: IdempotencyKeyHeader,
        body: CreateOrderBody,
        response: { 201: Type.Ref(Order), 409: problem, 422: problem },
      },
    },
    async (request, reply) => {
      const key = request.headers['idempotency-key'];
      const outcome = await orders.createOrder(request.body, key === undefined ? undefined : `${request.principal}:${key}`, request.id);
      if (outcome.orderId) reply.header('location', `/orders/${outcome.orderId}`);
      if (outcome.replayed) reply.header('idempotent-replayed', 'true');
      if (outcome.retryAfterSeconds) reply.header('retry-after', String(outcome.retryAfterSeconds));
      return outcome.status === 201
        ? sendRawJson(reply, outcome.status, outcome.body)
        : sendRawJson(reply, outcome.status, outcome.body, 'application/problem+json');
    },
  );

  app.get(
    '/orders',
    {
      schema: {
        tags: ['orders'],
        summary: 'Find orders, newest first',
        querystring: ListOrdersQuery,
        response: { 200: OrderPage, 422: problem },
      },
    },
    async (request, reply) => {
      const page = await orders.listOrders(request.query);
      return sendRawJson(reply, 200, `{"items":[${page.items.join(',')}],"next_cursor":${JSON.stringify(page.nextCursor)}}`);
    },
  );

  app.get(
    '/orders/:id',
    {
      schema: {
        tags: ['orders'],
        summary: 'Read an order',
        description: "Sends an ETag made from the order's version; with If-None-Match naming it, 304 and no body.",
        params: OrderParams,
        headers: ConditionalReadHeaders,
        response: {
          200: Type.Ref(Order),
          304: Type.Null({ description: 'The order is still at the version named in If-None-Match; no body' }),
          404: problem,
        },
      },
    },
    async (request, reply) => {
      const order = await orders.getOrder(request.params.id);
      reply.header('etag', etagOf(order.version));
      const ifNoneMatch = request.headers['if-none-match'];
      if (ifNoneMatch !== undefined && namesVersion(ifNoneMatch, order.version, 'weak')) return sendEmpty(reply, 304);
      return sendRawJson(reply, 200, order.json);
    },
  );

  app.patch(
    '/orders/:id',
    {
      schema: {
        tags: ['orders'],
        summary: 'Change an order status',
        description:
          'Pending → Confirmed → Shipped → Delivered; Pending or Confirmed → Cancelled (returns the stock). Anything else is 409. ' +
          'With If-Match, only the version it names is changed: a stale one is 412.',
        params: OrderParams,
        headers: ConditionalChangeHeaders,
        body: ChangeStatusBody,
        response: { 200: Type.Ref(Order), 404: problem, 409: problem, 412: problem, 422: problem },
      },
    },
    async (request, reply) => {
      const ifMatch = request.headers['if-match'];
      const expected = ifMatch === undefined ? undefined : (version: number) => namesVersion(ifMatch, version, 'strong');
      const order = await orders.changeOrderStatus(request.params.id, request.body.status, expected, request.id);
      return sendRawJson(reply.header('etag', etagOf(order.version)), 200, order.json);
    },
  );

  app.get(
    '/orders/:id/history',
    {
      schema: {
        tags: ['orders'],
        summary: "An order's events, oldest first",
        description: 'From the change log; 503 while the change log (MongoDB) does not answer.',
        params: OrderParams,
        response: { 200: OrderHistory, 404: problem, 503: problem },
      },
    },
    async (request, reply) => sendRawJson(reply, 200, await orders.orderHistory(request.params.id)),
  );
};

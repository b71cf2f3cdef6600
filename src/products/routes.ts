import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Drizzle } from '../db/client.js';
import { ApiError, Problem } from '../errors.js';
import { sendRawJson } from '../http/raw-json.js';
import { trimFields } from '../http/validation.js';
import { findProduct, insertProduct, listProducts, updateProduct } from './repository.js';
import { CreateProductBody, ListProductsQuery, Product, ProductPage, ProductParams, UpdateProductBody } from './schemas.js';

const problem = Type.Ref(Problem);
const notFound = (id: number) => new ApiError('product_not_found', `There is no product ${id}.`);

export const productRoutes: FastifyPluginAsyncTypebox<{ db: Drizzle }> = async (app, { db }) => {
  app.get(
    '/products',
    {
      schema: {
        tags: ['products'],
        summary: 'List the catalog',
        querystring: ListProductsQuery,
        response: { 200: ProductPage, 422: problem },
      },
    },
    async (request, reply) => {
      const after = request.query.cursor === undefined ? 0 : decodeCursor(request.query.cursor);
      const items = await listProducts(db, after, request.query.limit + 1);
      const more = items.length > request.query.limit;
      const page = items.slice(0, request.query.limit);
      const cursor = more ? JSON.stringify(Buffer.from(`p:${page.at(-1)!.id}`).toString('base64url')) : 'null';
      return sendRawJson(reply, 200, `{"items":[${page.map((p) => p.json).join(',')}],"next_cursor":${cursor}}`);
    },
  );

  app.get(
    '/products/:id',
    {
      schema: { tags: ['products'], summary: 'Read a product', params: ProductParams, response: { 200: Type.Ref(Product), 404: problem } },
    },
    async (request, reply) => {
      const product = await findProduct(db, request.params.id);
      if (!product) throw notFound(request.params.id);
      return sendRawJson(reply, 200, product);
    },
  );

  app.post(
    '/products',
    {
      preValidation: trimFields('name'),
      schema: { tags: ['products'], summary: 'Add a product', body: CreateProductBody, response: { 201: Type.Ref(Product), 422: problem } },
    },
    async (request, reply) => {
      const product = await insertProduct(db, request.body);
      return sendRawJson(reply.header('location', `/products/${product.id}`), 201, product.json);
    },
  );

  app.patch(
    '/products/:id',
    {
      preValidation: trimFields('name'),
      schema: {
        tags: ['products'],
        summary: 'Change a product',
        description: 'Any of name, price and stock (null = unlimited). Orders already placed keep their price.',
        params: ProductParams,
        body: UpdateProductBody,
        response: { 200: Type.Ref(Product), 404: problem, 422: problem },
      },
    },
    async (request, reply) => {
      const product = await updateProduct(db, request.params.id, request.body);
      if (!product) throw notFound(request.params.id);
      return sendRawJson(reply, 200, product);
    },
  );
};

function decodeCursor(cursor: string): number {
  const match = /^p:([1-9]\d{0,9})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!match)
    throw new ApiError('validation_failed', 'The cursor is not one this API issued.', [{ field: 'cursor', message: 'invalid cursor' }]);
  return Number(match[1]);
}

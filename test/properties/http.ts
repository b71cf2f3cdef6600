import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import { cents, money, rawNumbers, type ModelOrder, type ModelProduct } from '../helpers/order-model.js';

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
  json: <T = Record<string, unknown>>() => T;
}

export async function send(app: FastifyInstance, method: 'GET' | 'POST' | 'PATCH', url: string, payload?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const response = await app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload: payload as object }) });
  return { status: response.statusCode, headers: response.headers, body: response.body, json: <T>() => JSON.parse(response.body) as T };
}

/** A problem+json answer with this status and code. */
export function expectProblem(answer: Answer, status: number, code: string, context: string): void {
  expect(answer.status, `${context}: ${answer.body}`).toBe(status);
  expect(answer.headers['content-type'], context).toMatch(/^application\/problem\+json/);
  expect(answer.json(), context).toMatchObject({ status, code });
}

type OrderBody = Record<string, unknown>;

/** One order as the API wrote it, field by field against the model; money compared as written, to the cent. */
export function expectOrder(actual: OrderBody, raw: { total: string | undefined; unit: string | undefined }, expected: ModelOrder, context: string): void {
  expect(
    {
      id: actual.id,
      product_id: actual.product_id,
      quantity: actual.quantity,
      client_name: actual.client_name,
      client_email: actual.client_email,
      status: actual.status,
      version: actual.version,
      created_at: actual.created_at,
    },
    context,
  ).toEqual({
    id: expected.id,
    product_id: expected.product_id,
    quantity: expected.quantity,
    client_name: expected.client_name,
    client_email: expected.client_email,
    status: expected.status,
    version: expected.version,
    created_at: expected.created_at,
  });
  expect(raw.total, `${context}: total_price`).toBe(money(expected.totalCents));
  expect(raw.unit, `${context}: unit_price`).toBe(money(expected.unitCents));
  expect(Date.parse(actual.updated_at as string), `${context}: updated_at`).toBeGreaterThanOrEqual(Date.parse(expected.created_at));
}

/** The single order in a body. */
export function expectOrderBody(answer: Answer, expected: ModelOrder, context: string): void {
  expectOrder(answer.json(), { total: rawNumbers(answer.body, 'total_price')[0], unit: rawNumbers(answer.body, 'unit_price')[0] }, expected, context);
}

/** Every order of a list body, in order. */
export function expectOrderItems(answer: Answer, expected: readonly ModelOrder[], context: string): void {
  const items = answer.json<{ items: OrderBody[] }>().items;
  expect(items.map((o) => o.id), `${context}: ids`).toEqual(expected.map((o) => o.id));
  const totals = rawNumbers(answer.body, 'total_price');
  const units = rawNumbers(answer.body, 'unit_price');
  items.forEach((item, i) => expectOrder(item, { total: totals[i], unit: units[i] }, expected[i]!, `${context}: item ${i}`));
}

/** A product's price by value (exact cents of the number as written) and its stock. */
export function expectProduct(answer: Answer, expected: ModelProduct, context: string): void {
  expect(answer.status, `${context}: ${answer.body}`).toBe(200);
  const body = answer.json<{ id: number; stock: number | null }>();
  expect({ id: body.id, stock: body.stock }, context).toEqual({ id: expected.id, stock: expected.stock });
  expect(cents(rawNumbers(answer.body, 'price')[0] ?? ''), `${context}: price`).toBe(expected.priceCents);
}

import type { FastifyInstance } from 'fastify';

let counter = 0;

export function orderInput(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  counter++;
  return { product_id: 1, quantity: 2, client_name: `Client ${counter}`, client_email: `client${counter}@example.com`, ...overrides };
}

export async function createProduct(app: FastifyInstance, product: { price: number; stock?: number | null; name?: string }): Promise<{ id: number }> {
  const response = await app.inject({ method: 'POST', url: '/products', payload: { name: `Product ${++counter}`, ...product } });
  if (response.statusCode !== 201) throw new Error(`could not create product: ${response.statusCode} ${response.body}`);
  return response.json<{ id: number }>();
}

export async function createOrder(app: FastifyInstance, overrides: Record<string, unknown> = {}): Promise<Record<string, unknown> & { id: number }> {
  const response = await app.inject({ method: 'POST', url: '/orders/', payload: orderInput(overrides) });
  if (response.statusCode !== 201) throw new Error(`could not create order: ${response.statusCode} ${response.body}`);
  return response.json();
}

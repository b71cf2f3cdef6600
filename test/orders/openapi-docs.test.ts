import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';

interface Operation {
  summary?: string;
  description?: string;
  tags?: string[];
  responses: Record<string, { description?: string }>;
}

// What a client reads in /openapi.json (and Swagger UI) about each order route.
const OPERATIONS: [path: string, method: string, summary: string, description: string | undefined][] = [
  ['/orders', 'post', 'Create an order', 'Prices the order from the catalog and reserves stock atomically. Send an Idempotency-Key to retry safely.'],
  ['/orders', 'get', 'Find orders, newest first', undefined],
  ['/orders/{id}', 'get', 'Read an order', "Sends an ETag made from the order's version; with If-None-Match naming it, 304 and no body."],
  [
    '/orders/{id}',
    'patch',
    'Change an order status',
    'Pending → Confirmed → Shipped → Delivered; Pending or Confirmed → Cancelled (returns the stock). Anything else is 409. ' +
      'With If-Match, only the version it names is changed: a stale one is 412.',
  ],
  ['/orders/{id}/history', 'get', "An order's events, oldest first", 'From the change log; 503 while the change log (MongoDB) does not answer.'],
];

describe('the order routes in /openapi.json', () => {
  let service: TestService;
  let paths: Record<string, Record<string, Operation>>;
  beforeAll(async () => {
    service = await startTestService({ database: 'pglite' });
    paths = (await service.app.inject({ method: 'GET', url: '/openapi.json' })).json().paths;
  });
  afterAll(() => service?.close());

  for (const [path, method, summary, description] of OPERATIONS) {
    it(`when a client reads ${method.toUpperCase()} ${path}, then it is tagged orders, with its summary and description`, () => {
      const operation = paths[path]![method]!;
      expect(operation.tags).toEqual(['orders']);
      expect(operation.summary).toBe(summary);
      expect(operation.description).toBe(description);
    });
  }

  it('when a client reads GET /orders/{id}, then its 304 says why there is no body', () => {
    expect(paths['/orders/{id}']!.get!.responses['304']!.description).toBe('The order is still at the version named in If-None-Match; no body');
  });
});

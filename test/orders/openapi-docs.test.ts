import { afterEach, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';

interface Operation {
  summary?: string;
  description?: string;
  tags?: string[];
  responses: Record<string, { description?: string }>;
}

// What a client reads in /openapi.json (and Swagger UI) about each order route.
const OPERATIONS: [path: string, method: string, summary: string, description: string | undefined, statuses: string[]][] = [
  ['/orders', 'post', 'Create an order', 'Prices the order from the catalog and reserves stock atomically. Send an Idempotency-Key to retry safely.', ['201', '409', '422']],
  ['/orders', 'get', 'Find orders, newest first', undefined, ['200', '422']],
  ['/orders/{id}', 'get', 'Read an order', "Sends an ETag made from the order's version; with If-None-Match naming it, 304 and no body.", ['200', '304', '404']],
  [
    '/orders/{id}',
    'patch',
    'Change an order status',
    'Pending → Confirmed → Shipped → Delivered; Pending or Confirmed → Cancelled (returns the stock). Anything else is 409. ' +
      'With If-Match, only the version it names is changed: a stale one is 412.',
    ['200', '404', '409', '412', '422'],
  ],
  ['/orders/{id}/history', 'get', "An order's events, oldest first", 'From the change log; 503 while the change log (MongoDB) does not answer.', ['200', '404', '503']],
];

describe('the order routes in /openapi.json', () => {
  let service: TestService | undefined;
  afterEach(() => service?.close());

  // The service starts inside the test, not in a beforeAll: the routes' options are read when they are registered,
  // and mutation testing (Stryker) credits a test only with the code that runs inside it.
  it('when a client reads each order route, then it is tagged orders, with its summary, description and the answers it may give', async () => {
    service = await startTestService({ database: 'pglite' });
    const paths = (await service.app.inject({ method: 'GET', url: '/openapi.json' })).json<{ paths: Record<string, Record<string, Operation>> }>().paths;

    for (const [path, method, summary, description, statuses] of OPERATIONS) {
      const operation = paths[path]![method]!;
      expect.soft(operation.tags, `${method} ${path}`).toEqual(['orders']);
      expect.soft(operation.summary, `${method} ${path}`).toBe(summary);
      expect.soft(operation.description, `${method} ${path}`).toBe(description);
      expect.soft(Object.keys(operation.responses), `${method} ${path}`).toEqual(expect.arrayContaining(statuses));
    }
    expect(paths['/orders/{id}']!.get!.responses['304']!.description).toBe('The order is still at the version named in If-None-Match; no body');
  });
});

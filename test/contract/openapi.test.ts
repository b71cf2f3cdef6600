import { afterEach, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';

interface Operation {
  parameters?: { name: string; in: string; required?: boolean }[];
  responses: Record<string, { content?: Record<string, unknown> }>;
  security?: unknown[];
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
  components: { securitySchemes?: Record<string, unknown> };
  security?: unknown[];
}

let service: TestService | undefined;
afterEach(async () => {
  await service?.close();
  service = undefined;
});

const documentOf = async (env: Record<string, string> = {}) => {
  service = await startTestService({ database: 'pglite', env });
  return (await service.app.inject({ method: 'GET', url: '/openapi.json' })).json<Document>();
};
const statuses = (operation: Operation | undefined) => Object.keys(operation?.responses ?? {});

describe('the OpenAPI document agrees with the service', () => {
  it('when a list has a default limit, then the document does not make clients send it', async () => {
    const doc = await documentOf();
    for (const path of ['/orders', '/products']) {
      const limit = doc.paths[path]!.get!.parameters!.find((p) => p.name === 'limit');
      expect(limit, path).toMatchObject({ in: 'query', required: false, schema: { default: expect.any(Number) } });
    }
  });

  it('when clients call /orders/ and /products/ (the original API\'s paths), then the document lists them', async () => {
    const doc = await documentOf();
    for (const path of ['/orders/', '/products/']) expect(Object.keys(doc.paths[path] ?? {}).sort(), path).toEqual(['get', 'post']);
    expect(statuses(doc.paths['/orders/']!.post)).toEqual(expect.arrayContaining(['201', '409', '422']));
  });

  it('when a route can answer a status, then it is declared: 422 for bad input, 413/415 on bodies, 503 wherever the database is asked, 409, 412 and 304', async () => {
    const doc = await documentOf();
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        expect(statuses(operation), `${method} ${path}`).toEqual(expect.arrayContaining(['422', '503']));
        if (method === 'post' || method === 'patch') expect(statuses(operation), `${method} ${path}`).toEqual(expect.arrayContaining(['400', '413', '415']));
      }
    }
    expect(statuses(doc.paths['/orders/{id}']!.patch)).toEqual(expect.arrayContaining(['404', '409', '412']));
    expect(statuses(doc.paths['/orders/{id}']!.get)).toEqual(expect.arrayContaining(['304', '404']));
    expect(statuses(doc.paths['/orders/{id}/history']!.get)).toEqual(expect.arrayContaining(['404']));
  });

  it('when keys are on, then every error is declared as application/problem+json (what the service sends) and a bearer scheme gives Swagger UI its Authorize button', async () => {
    const doc = await documentOf({ API_KEYS: 'k1' });
    expect(doc.components.securitySchemes).toEqual({ bearer: expect.objectContaining({ type: 'http', scheme: 'bearer' }) });
    expect(doc.security).toEqual([{ bearer: [] }]);
    expect(doc.paths['/healthz']!.get!.security).toEqual([]);
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        for (const [status, response] of Object.entries(operation.responses)) {
          if (Number(status) < 400) continue;
          expect(Object.keys(response.content ?? {}), `${method} ${path} ${status}`).toContain('application/problem+json');
        }
      }
    }
  });
});

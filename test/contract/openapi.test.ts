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

describe('what the document says about problems and keys', () => {
  it('when a status is a problem, then its description says what it means on any route; answers that are not problems keep theirs', async () => {
    const doc = (await documentOf({ API_KEYS: 'k1', API_READ_KEYS: 'reader' })) as Document & {
      paths: Record<string, Record<string, { responses: Record<string, { description?: string; content?: Record<string, unknown> }> }>>;
    };
    const create = doc.paths['/orders']!.post!.responses;
    expect(create['401']!.description).toBe('No valid bearer key (unauthorized)');
    expect(create['403']!.description).toBe('This key may only read (forbidden)');
    expect(create['413']!.description).toBe('The body is over 64 KiB (payload_too_large)');
    expect(create['415']!.description).toBe('The body is not application/json (unsupported_media_type)');
    expect(create['429']!.description).toBe('Over the rate limit (rate_limited); Retry-After says when to retry');
    expect(create['503']!.description).toBe('A dependency does not answer, or the instance is shutting down (service_unavailable); retry');
    expect(doc.paths['/orders/{id}']!.patch!.responses['412']!.description).toBe('If-Match names a version the order has moved past (precondition_failed)');
    expect(Object.keys(create['201']!.content ?? {})).toEqual(['application/json']);
    expect(Object.keys(create['401']!.content ?? {})).toEqual(['application/problem+json']);
    const id = doc.paths['/orders/{id}']!.get!.parameters!.find((p) => p.name === 'id');
    expect(id).toMatchObject({ in: 'path', required: true });
  });

  it('when the service runs open, then the document names no security scheme and asks for none', async () => {
    const doc = await documentOf();
    expect(doc.components.securitySchemes).toBeUndefined();
    expect(doc.security ?? []).toEqual([]);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';

let service: TestService | undefined;
afterEach(async () => {
  await service?.close();
  service = undefined;
});

const openapi = async (env: Record<string, string>) => {
  service = await startTestService({ database: 'pglite', env });
  return (await service.app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
    paths: Record<string, Record<string, { responses: Record<string, unknown>; security?: unknown[] }>>;
  };
};

describe('the OpenAPI document', () => {
  it('when keys and limits are on, then every route declares the refusals it can answer and health none; open and unlimited, none', async () => {
    const doc = await openapi({ API_KEYS: 'k1', API_READ_KEYS: 'reader' });

    expect(Object.keys(doc.paths['/orders']!.post!.responses)).toEqual(expect.arrayContaining(['401', '403', '429']));
    expect(Object.keys(doc.paths['/products/{id}']!.patch!.responses)).toEqual(expect.arrayContaining(['401', '403', '429']));
    const read = Object.keys(doc.paths['/orders/{id}']!.get!.responses);
    expect(read).toEqual(expect.arrayContaining(['401', '429']));
    expect(read).not.toContain('403');
    for (const path of ['/healthz', '/readyz']) {
      expect(Object.keys(doc.paths[path]!.get!.responses)).not.toEqual(expect.arrayContaining(['401']));
      expect(doc.paths[path]!.get!.security).toEqual([]);
    }
    await service!.close();

    const open = await openapi({ RATE_LIMIT_MAX: '0' });
    expect(Object.keys(open.paths['/orders']!.post!.responses)).not.toEqual(expect.arrayContaining(['401']));
    expect(Object.keys(open.paths['/orders']!.post!.responses)).not.toEqual(expect.arrayContaining(['429']));
  });
});

import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { securityOptions } from '../../src/http/security.js';

/**
 * What the document tells a reader (or a client generator) beyond the shapes: its title and version, the
 * bearer scheme's description, and the health routes' tags, summaries and answers. The app is built inside
 * each test, so that what its routes register is credited to the test that reads it (mutation testing).
 */
let app: Awaited<ReturnType<typeof buildApp>> | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

interface Operation {
  tags?: string[];
  summary?: string;
  description?: string;
  responses: Record<string, { description?: string; content?: Record<string, { schema?: { $ref?: string } }> }>;
}
interface Document {
  info: { title: string; version: string; description: string };
  components: { securitySchemes?: Record<string, { description?: string }>; schemas?: Record<string, unknown> };
  paths: Record<string, Record<string, Operation>>;
}

async function documentOf(env: Record<string, string> = {}): Promise<Document> {
  app = await buildApp({ logger: pino({ level: 'silent' }), security: securityOptions(loadConfig(env)), readiness: {} });
  return (await app.inject('/openapi.json')).json();
}

describe('the OpenAPI document\'s texts', () => {
  it('when it is read, then it names the service and its version, and the bearer scheme says which keys it takes', async () => {
    const doc = await documentOf({ API_KEYS: 'k1' });

    expect(doc.info).toMatchObject({ title: 'Order Processing Service', version: '1.0.0' });
    expect(doc.info.description).toContain('application/problem+json');
    expect(doc.components.securitySchemes?.bearer?.description).toBe('A key from API_KEYS, or from API_READ_KEYS to read only');
  });

  it('when the health routes are read, then they are tagged "health", each with its summary, and /readyz says its states and both forms of its 503', async () => {
    const doc = await documentOf();
    const healthz = doc.paths['/healthz']!.get!;
    const readyz = doc.paths['/readyz']!.get!;

    expect(healthz.tags).toEqual(['health']);
    expect(healthz.summary).toBe('The process is alive');
    expect(readyz.tags).toEqual(['health']);
    expect(readyz.summary).toBe('The process can serve: its database answers');
    for (const state of ['"read_only"', '"disk_full"', '"blocked"', '"connecting"', '"rewound"', '"not subscribed"', '"down: <why>"']) {
      expect(readyz.description).toContain(state);
    }
    expect(readyz.responses['503']!.description).toBe('Not ready');
    expect(Object.keys(readyz.responses['503']!.content ?? {}).sort()).toEqual(['application/json', 'application/problem+json']);
    expect(readyz.responses['503']!.content!['application/problem+json']!.schema).toEqual({ $ref: '#/components/schemas/Problem' });
  });

  it('when a schema has an $id, then the document names it by that id, so a client generator gets its name', async () => {
    const doc = await documentOf();

    expect(Object.keys(doc.components.schemas ?? {})).toEqual(expect.arrayContaining(['Problem', 'Order', 'OrderEvent', 'Product']));
  });
});

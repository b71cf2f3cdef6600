import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import { PROBLEM_JSON } from './problems.js';

/** Paths clients call with a trailing slash too (`POST /orders/` is the original API's); the router takes both. */
const SLASH_ALIASES = ['/orders', '/products'];

// What each problem status means on any route; the code names the exact case.
const PROBLEM_STATUSES: Record<string, string> = {
  400: 'Not valid HTTP, or a Content-Length that does not match the body (bad_request)',
  401: 'No valid bearer key (unauthorized)',
  403: 'This key may only read (forbidden)',
  404: 'Not found',
  409: 'Conflicts with the current state',
  412: 'If-Match names a version the order has moved past (precondition_failed)',
  413: 'The body is over 64 KiB (payload_too_large)',
  415: 'The body is not application/json (unsupported_media_type)',
  422: 'Invalid input, unknown fields and query parameters included; each bad field is in errors',
  429: 'Over the rate limit (rate_limited); Retry-After says when to retry',
  503: 'A dependency does not answer, or the instance is shutting down (service_unavailable); retry',
};

const DESCRIPTION = [
  'Orders in PostgreSQL; every change published to RabbitMQ, logged in MongoDB and pushed over WebSocket (GET /ws/notifications).',
  '',
  '- Every error is application/problem+json (RFC 9457) with a stable `code`.',
  '- Unknown body fields and unknown query parameters are refused with 422.',
  '- Money is a JSON number written with exactly two decimals (`200.00`); `x-decimal-places` on a schema is the most',
  '  decimal digits a value may have, counted on the number as written. More, or a number a double cannot hold as',
  '  written (`1e-400`), is 422.',
  '- Every path also answers with a trailing slash; `/orders/` and `/products/` are listed since clients use them.',
].join('\n');

/** @fastify/swagger's options: the document is made from the routes' own schemas, then finished here. */
export function openApiOptions(keysOn: boolean): FastifyDynamicSwaggerOptions {
  return {
    openapi: {
      info: { title: 'Order Processing Service', version: '1.0.0', description: DESCRIPTION },
      components: keysOn
        ? {
            securitySchemes: {
              bearer: { type: 'http', scheme: 'bearer', description: 'A key from API_KEYS, or from API_READ_KEYS to read only' },
            },
          }
        : {},
      security: keysOn ? [{ bearer: [] }] : [],
    },
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    transformObject: (document) => finishDocument(('openapiObject' in document ? document.openapiObject : {}) as Document),
  };
}

interface Operation {
  parameters?: { required?: boolean; schema?: { default?: unknown } }[];
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: { $ref?: string } }> }>;
}
type Document = { paths?: Record<string, Record<string, Operation>> } & Record<string, unknown>;

/** What the route schemas cannot say by themselves. */
export function finishDocument(doc: Document): Document {
  const paths = doc.paths ?? {};
  for (const operation of Object.values(paths).flatMap((path) => Object.values(path))) {
    // The validator fills in a default, so a client need not send it (limit).
    for (const parameter of operation.parameters ?? []) if (parameter.schema?.default !== undefined) parameter.required = false;
    for (const [status, response] of Object.entries(operation.responses ?? {})) {
      const schema = response.content?.['application/json']?.schema;
      if (schema?.$ref !== '#/components/schemas/Problem') continue;
      response.content = { [PROBLEM_JSON]: { schema } };
      response.description = PROBLEM_STATUSES[status] ?? response.description;
    }
  }
  for (const path of SLASH_ALIASES) if (paths[path]) paths[`${path}/`] = paths[path];
  return doc;
}

import { Writable } from 'node:stream';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ApiError, DependencyUnavailableError } from '../../src/errors.js';
import { installJsonBody } from '../../src/http/json-body.js';
import { installErrorHandling } from '../../src/http/problems.js';
import { installValidators } from '../../src/http/validation.js';

/** An error as pg reports it from the server: a SQLSTATE code and a severity. */
function databaseError(code: string, message = 'server says no'): Error {
  const error = new pg.DatabaseError(message, message.length, 'error');
  error.code = code;
  error.severity = 'ERROR';
  return error;
}

/** An error of Node's sockets: a code, no severity. */
const socketError = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code });

const SERVICE_UNAVAILABLE = 'The database is not reachable; retry shortly.';
const INTERNAL = 'Something went wrong on our side; it has been logged.';

const THROWN: Record<string, { error: () => Error; status: number; code: string; detail: string }> = {
  'an ApiError': { error: () => new ApiError('insufficient_stock', 'Only 2 left.'), status: 409, code: 'insufficient_stock', detail: 'Only 2 left.' },
  'a dependency away': { error: () => new DependencyUnavailableError('change log'), status: 503, code: 'service_unavailable', detail: 'The change log is not reachable; retry shortly.' },
  'a PostgreSQL data exception (22003)': { error: () => databaseError('22003'), status: 422, code: 'validation_failed', detail: 'A value is outside what this API can store.' },
  'a name too long (42622, 22 not as its class)': { error: () => databaseError('42622'), status: 500, code: 'internal_error', detail: INTERNAL },
  'a 22 code without a severity': { error: () => socketError('22003'), status: 500, code: 'internal_error', detail: INTERNAL },
  'a 302 from a plugin (not an error status)': { error: () => Object.assign(new Error('moved: secret'), { statusCode: 302 }), status: 500, code: 'internal_error', detail: INTERNAL },
  'a 400 from a plugin': { error: () => Object.assign(new Error('the plugin says no'), { statusCode: 400 }), status: 400, code: 'bad_request', detail: 'the plugin says no' },
  'a 404 from a plugin': { error: () => Object.assign(new Error('no such file'), { statusCode: 404 }), status: 422, code: 'validation_failed', detail: 'no such file' },
  'a 499 from a plugin': { error: () => Object.assign(new Error('odd'), { statusCode: 499 }), status: 422, code: 'validation_failed', detail: 'odd' },
  'a 500 from a plugin': { error: () => Object.assign(new Error('plugin broke: secret'), { statusCode: 500 }), status: 500, code: 'internal_error', detail: INTERNAL },
  'a refused connection': { error: () => socketError('ECONNREFUSED'), status: 503, code: 'service_unavailable', detail: SERVICE_UNAVAILABLE },
  'an unknown host': { error: () => socketError('ENOTFOUND'), status: 503, code: 'service_unavailable', detail: SERVICE_UNAVAILABLE },
  'too many connections (53300)': { error: () => databaseError('53300'), status: 503, code: 'service_unavailable', detail: SERVICE_UNAVAILABLE },
  'an admin shutdown (57P01)': { error: () => databaseError('57P01'), status: 503, code: 'service_unavailable', detail: SERVICE_UNAVAILABLE },
  'a statement timeout (57014)': { error: () => databaseError('57014'), status: 503, code: 'service_unavailable', detail: SERVICE_UNAVAILABLE },
  'a connection exception (08006)': { error: () => databaseError('08006'), status: 503, code: 'service_unavailable', detail: SERVICE_UNAVAILABLE },
  'an ambiguous parameter (42P08, 08 not as its class)': { error: () => databaseError('42P08'), status: 500, code: 'internal_error', detail: INTERNAL },
  'an 08 code without a severity': { error: () => socketError('08006'), status: 500, code: 'internal_error', detail: INTERNAL },
  'a pool timeout': { error: () => new Error('timeout exceeded when trying to connect'), status: 503, code: 'service_unavailable', detail: SERVICE_UNAVAILABLE },
  'a lost connection': { error: () => new Error('Connection terminated unexpectedly'), status: 503, code: 'service_unavailable', detail: SERVICE_UNAVAILABLE },
  'a read timeout': { error: () => new Error('Query read timeout'), status: 503, code: 'service_unavailable', detail: SERVICE_UNAVAILABLE },
  'a closed client': { error: () => new Error('Client has encountered a connection error and is not queryable'), status: 503, code: 'service_unavailable', detail: SERVICE_UNAVAILABLE },
  'a unique violation (23505)': { error: () => databaseError('23505', 'duplicate key value violates unique constraint "orders_pkey"'), status: 500, code: 'internal_error', detail: INTERNAL },
  'a bug': { error: () => new TypeError("Cannot read properties of undefined (reading 'id')"), status: 500, code: 'internal_error', detail: INTERNAL },
};

describe('what a thrown error becomes', () => {
  let app: FastifyInstance;
  let logged = '';
  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logged += chunk.toString();
        done();
      },
    });
    app = Fastify({ loggerInstance: pino({ level: 'info' }, sink) as FastifyBaseLogger, bodyLimit: 64 });
    installJsonBody(app);
    installValidators(app);
    installErrorHandling(app);
    app.get<{ Params: { case: string } }>('/throw/:case', async (request) => {
      throw THROWN[request.params.case]!.error();
    });
    app.post(
      '/things/:id',
      {
        schema: {
          params: { type: 'object', properties: { id: { type: 'integer' } } },
          querystring: { type: 'object', properties: { limit: { type: 'integer' } }, additionalProperties: false },
          headers: { type: 'object', properties: { 'x-count': { type: 'integer' } } },
          body: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'], additionalProperties: false },
        },
      },
      async () => ({ ok: true }),
    );
    await app.ready();
  });
  afterAll(() => app?.close());
  beforeEach(() => {
    logged = '';
  });

  const lines = () => logged.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as { level: number; msg: string; err?: { message: string } });

  it.each(Object.keys(THROWN))('when a route throws %s, then it is answered as problem+json with its status and code, and nothing internal', async (name) => {
    const { status, code, detail } = THROWN[name]!;
    const answer = await app.inject({ method: 'GET', url: `/throw/${encodeURIComponent(name)}?x=1` });

    expect(answer.statusCode).toBe(status);
    expect(answer.headers['content-type']).toContain('application/problem+json');
    expect(answer.json()).toMatchObject({ status, code, detail, type: `urn:order-service:problem:${code}`, instance: `/throw/${encodeURIComponent(name)}` });
    const failures = lines().filter((line) => line.msg === 'request failed');
    if (status >= 500) {
      expect(failures).toHaveLength(1);
      expect(failures[0]!.level).toBe(50);
      expect(failures[0]!.err?.message).toBe(THROWN[name]!.error().message);
    } else {
      expect(failures).toEqual([]);
    }
  });

  it.each([
    ['the body', '/things/1', {}, { m: 1 }, 'Invalid body: n is required; m is not a known field.', [{ field: 'n', message: 'is required' }, { field: 'm', message: 'is not a known field' }]],
    ['the query', '/things/1?limit=x', {}, { n: 1 }, 'Invalid query: limit must be integer.', [{ field: 'limit', message: 'must be integer' }]],
    ['the path', '/things/x', {}, { n: 1 }, 'Invalid params: id must be integer.', [{ field: 'id', message: 'must be integer' }]],
    ['a header', '/things/1', { 'x-count': 'many' }, { n: 1 }, 'Invalid headers: x-count must be integer.', [{ field: 'x-count', message: 'must be integer' }]],
  ])('when %s is not valid, then it is 422 naming each field and where it is', async (_part, url, headers, payload, detail, errors) => {
    const answer = await app.inject({ method: 'POST', url, headers, payload });

    expect(answer.statusCode).toBe(422);
    expect(answer.json()).toMatchObject({ code: 'validation_failed', detail, errors });
    expect(lines().filter((line) => line.msg === 'request failed')).toEqual([]);
  });

  it('when a body is larger than the limit, then it is 413 payload_too_large', async () => {
    const answer = await app.inject({ method: 'POST', url: '/things/1', payload: { n: 1, pad: 'x'.repeat(100) } });
    expect(answer.statusCode).toBe(413);
    expect(answer.json()).toMatchObject({ code: 'payload_too_large', detail: 'The body is larger than this API accepts.' });
  });

  it('when a body is not JSON, then it is 415 asking for JSON', async () => {
    const answer = await app.inject({ method: 'POST', url: '/things/1', payload: 'n=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(answer.statusCode).toBe(415);
    expect(answer.json()).toMatchObject({ code: 'unsupported_media_type', detail: 'Send the body as application/json.' });
  });

  it('when no route matches, then it is 404 naming the method and the path without its query', async () => {
    const answer = await app.inject({ method: 'DELETE', url: '/nowhere/1?token=abc' });
    expect(answer.statusCode).toBe(404);
    expect(answer.json()).toMatchObject({ code: 'route_not_found', detail: 'No route DELETE /nowhere/1.', instance: '/nowhere/1' });
  });
});

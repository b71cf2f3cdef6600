import { Writable } from 'node:stream';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { DrizzleQueryError } from 'drizzle-orm/errors';
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
const READ_ONLY = 'The database takes no writes right now (as during a failover); retry shortly.';
const STORAGE_FULL = "The database's storage is full; retry once space is freed.";
const OVERLOADED = 'The database is out of connections or memory; retry shortly.';
const CONFLICT = 'The transaction conflicted with a concurrent one; retry it.';

/** Drizzle's wrapper, as its sessions throw it: the statement and its parameters in the message, pg's error in `cause`. */
const drizzleWrapped = (cause: Error) =>
  new DrizzleQueryError('insert into "orders" ("client_name", "client_email") values ($1, $2)', ['Jane Secret', 'jane@secret.example'], cause);

/** Node's connect to a host with several addresses: an AggregateError whose own code is the first one's. */
const aggregate = (errors: Error[], code?: string) => Object.assign(new AggregateError(errors, 'connect failed'), code ? { code } : {});
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
  'too many connections (53300)': { error: () => databaseError('53300'), status: 503, code: 'database_overloaded', detail: OVERLOADED },
  'out of memory (53200)': { error: () => databaseError('53200'), status: 503, code: 'database_overloaded', detail: OVERLOADED },
  'a configuration limit exceeded (53400)': { error: () => databaseError('53400'), status: 503, code: 'database_overloaded', detail: OVERLOADED },
  'a full disk (53100)': { error: () => databaseError('53100', 'could not extend file "base/16384/16400": No space left on device'), status: 503, code: 'storage_full', detail: STORAGE_FULL },
  'a read-only database (25006)': { error: () => databaseError('25006', 'cannot execute INSERT in a read-only transaction'), status: 503, code: 'database_read_only', detail: READ_ONLY },
  'a serialization failure (40001)': { error: () => databaseError('40001'), status: 503, code: 'transaction_conflict', detail: CONFLICT },
  'a deadlock (40P01)': { error: () => databaseError('40P01'), status: 503, code: 'transaction_conflict', detail: CONFLICT },
  'a crash shutdown (57P02)': { error: () => databaseError('57P02'), status: 503, code: 'service_unavailable', detail: SERVICE_UNAVAILABLE },
  'a database starting up (57P03)': { error: () => databaseError('57P03'), status: 503, code: 'service_unavailable', detail: SERVICE_UNAVAILABLE },
  'a read-only database inside Drizzle\'s error': { error: () => drizzleWrapped(databaseError('25006')), status: 503, code: 'database_read_only', detail: READ_ONLY },
  'a refused connection inside Drizzle\'s error': { error: () => drizzleWrapped(socketError('ECONNREFUSED')), status: 503, code: 'service_unavailable', detail: SERVICE_UNAVAILABLE },
  'a lost connection inside Drizzle\'s error': { error: () => drizzleWrapped(new Error('Connection terminated unexpectedly')), status: 503, code: 'service_unavailable', detail: SERVICE_UNAVAILABLE },
  'a unique violation inside Drizzle\'s error': { error: () => drizzleWrapped(databaseError('23505')), status: 500, code: 'internal_error', detail: INTERNAL },
  'refused connections to every address (AggregateError)': {
    error: () => aggregate([socketError('ECONNREFUSED'), socketError('ECONNREFUSED')], 'ECONNREFUSED'),
    status: 503,
    code: 'service_unavailable',
    detail: SERVICE_UNAVAILABLE,
  },
  'an AggregateError with an empty list and no code': { error: () => aggregate([]), status: 500, code: 'internal_error', detail: INTERNAL },
  'a full disk two causes deep': { error: () => new Error('outer', { cause: new Error('middle', { cause: databaseError('53100') }) }), status: 503, code: 'storage_full', detail: STORAGE_FULL },
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

function sinkInto(write: (line: string) => void): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      write(chunk.toString());
      done();
    },
  });
}

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

  const lines = () => logged.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as { level: number; msg: string; error?: { message: string } });

  it.each(Object.keys(THROWN))('when a route throws %s, then it is answered as problem+json with its status and code, and nothing internal', async (name) => {
    const { status, code, detail } = THROWN[name]!;
    const answer = await app.inject({ method: 'GET', url: `/throw/${encodeURIComponent(name)}?x=1` });

    expect(answer.statusCode).toBe(status);
    expect(answer.headers['content-type']).toContain('application/problem+json');
    expect(answer.json()).toMatchObject({ status, code, detail, type: `urn:order-service:problem:${code}`, instance: `/throw/${encodeURIComponent(name)}` });
    const failures = lines().filter((line) => line.msg === 'request failed');
    if (status === 503) {
      // Said once per episode (its own test below), never once per request.
      expect(failures).toEqual([]);
      expect(answer.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    } else if (status >= 500) {
      expect(failures).toHaveLength(1);
      expect(failures[0]!.level).toBe(50);
      const thrown = THROWN[name]!.error();
      if (!(thrown instanceof DrizzleQueryError)) expect(failures[0]!.error?.message).toBe(thrown.message);
      expect(answer.headers['retry-after']).toBeUndefined();
    } else {
      expect(failures).toEqual([]);
      expect(answer.headers['retry-after']).toBeUndefined();
    }
    // The statement's parameters (a client's name and address) never reach the log.
    expect(logged).not.toContain('Jane Secret');
    expect(logged).not.toContain('jane@secret.example');
  });

  it('when the same database fault fails many requests, then it is logged once at error, with its code and without parameters', async () => {
    const faultApp = Fastify({ loggerInstance: pino({ level: 'info' }, sinkInto((line) => (faultLog += line))) as FastifyBaseLogger });
    let faultLog = '';
    installErrorHandling(faultApp);
    faultApp.get('/write', async () => {
      throw drizzleWrapped(databaseError('53100', 'could not extend file "base/1/2": No space left on device'));
    });
    faultApp.get('/read', async () => {
      throw databaseError('25006');
    });
    for (let i = 0; i < 20; i++) expect((await faultApp.inject({ method: 'GET', url: '/write' })).statusCode).toBe(503);
    for (let i = 0; i < 5; i++) expect((await faultApp.inject({ method: 'GET', url: '/read' })).statusCode).toBe(503);
    await faultApp.close();

    const entries = faultLog.trim().split('\n').map((line) => JSON.parse(line) as { level: number; msg: string; episode?: string; error?: { cause?: { code?: string } } });
    const opened = entries.filter((e) => e.episode !== undefined);
    expect(opened.map((e) => [e.episode, e.level])).toEqual([
      ['database disk_full', 50],
      ['database read_only', 50],
    ]);
    expect(opened[0]!.error?.cause?.code).toBe('53100');
    expect(faultLog).not.toContain('Jane Secret');
    expect(faultLog).not.toContain('values ($1');
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

import fastifySwagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { Problem } from '../../src/errors.js';
import { openApiOptions } from '../../src/http/openapi.js';
import { answerFrameworkError, declareProblems, installErrorHandling } from '../../src/http/problems.js';
import { installValidators, refuseUnknownQuery } from '../../src/http/validation.js';

// Each test builds its app: what registration does is only seen by a test that registers.
const built: FastifyInstance[] = [];
afterEach(async () => {
  for (const app of built.splice(0)) await app.close();
});

function build(options: FastifyServerOptions = {}): FastifyInstance {
  const app = Fastify(options);
  built.push(app);
  return app;
}

describe('the answers the error handler gives, on an app of its own', () => {
  it('when no route matches, then it is 404 route_not_found naming the method and the path', async () => {
    const app = build();
    installErrorHandling(app);

    const answer = await app.inject({ method: 'PUT', url: '/nowhere?x=1' });

    expect(answer.statusCode).toBe(404);
    expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(answer.json()).toMatchObject({ code: 'route_not_found', detail: 'No route PUT /nowhere.', instance: '/nowhere' });
  });

  // Fastify's own JSON parser (the service replaces it; a plugin scope may not) and its body reader.
  it.each([
    ['an empty JSON body', 422, 'malformed_json', 'The body is empty.', '', {}],
    ['a JSON body that does not parse', 422, 'malformed_json', "The body is not valid JSON: Body is not valid JSON but content-type is set to 'application/json'", '{"n":', {}],
    ['a Content-Length longer than the body', 400, 'bad_request', 'Content-Length does not match the body.', '{}', { 'content-length': '10' }],
  ])('when Fastify refuses %s, then it is %i %s', async (_case, status, code, detail, payload, headers) => {
    const app = build();
    installErrorHandling(app);
    app.post('/things', async (request) => request.body);

    const answer = await app.inject({ method: 'POST', url: '/things', payload, headers: { 'content-type': 'application/json', ...headers } });

    expect(answer.statusCode).toBe(status);
    expect(answer.json()).toMatchObject({ status, code, detail });
  });

  it('when a plugin throws ajv errors without saying which part of the request they are about, then they are the body’s', async () => {
    const app = build();
    installErrorHandling(app);
    app.post('/things', async () => {
      throw Object.assign(new Error('body/n must be integer'), { statusCode: 400, validation: [{ instancePath: '/n', keyword: 'type', params: { type: 'integer' }, message: 'must be integer' }] });
    });

    const answer = await app.inject({ method: 'POST', url: '/things', payload: {} });

    expect(answer.statusCode).toBe(422);
    expect(answer.json()).toMatchObject({ code: 'validation_failed', detail: 'Invalid body: n must be integer.', errors: [{ field: 'n', message: 'must be integer' }] });
  });
});

describe('what the router refuses before any route runs (frameworkErrors)', () => {
  it('when a %-escape is not UTF-8, then it is 400 bad_url naming the path without its query', async () => {
    const app = build({ frameworkErrors: answerFrameworkError });
    app.get('/orders/:id', async () => 'found');

    const answer = await app.inject({ method: 'GET', url: '/orders/%FF?token=abc' });

    expect(answer.statusCode).toBe(400);
    expect(answer.json()).toMatchObject({ code: 'bad_url', detail: 'The path /orders/%FF has a %-escape that is not UTF-8.', instance: '/orders/%FF' });
  });

  it('when a path segment is over the router’s limit, then it is 414 uri_too_long', async () => {
    const app = build({ frameworkErrors: answerFrameworkError });
    app.get('/orders/:id', async () => 'found');

    const answer = await app.inject({ method: 'GET', url: `/orders/${'1'.repeat(101)}` });

    expect(answer.statusCode).toBe(414);
    expect(answer.json()).toMatchObject({ code: 'uri_too_long', detail: 'A path segment is longer than 100 characters.' });
  });

  it('when a route constraint cannot be worked out, then it is 500 internal_error with nothing of the cause', async () => {
    const tenant = {
      name: 'tenant',
      storage: () => {
        const handlers = new Map<string, unknown>();
        return { get: (key: string) => handlers.get(key) ?? null, set: (key: string, value: unknown) => void handlers.set(key, value) };
      },
      deriveConstraint: (_request: unknown, _context: unknown, done: (error: Error | null, value?: string) => void) => done(new Error('tenant directory down')),
    };
    // find-my-way's types know only synchronous strategies; one that takes a callback is derived asynchronously.
    const app = build({ frameworkErrors: answerFrameworkError, routerOptions: { constraints: { tenant } } as unknown as FastifyServerOptions['routerOptions'] });
    app.get('/orders', { constraints: { tenant: 'a' } }, async () => 'found');

    const answer = await app.inject({ method: 'GET', url: '/orders' });

    expect(answer.statusCode).toBe(500);
    expect(answer.json()).toMatchObject({ code: 'internal_error', detail: 'Something went wrong on our side; it has been logged.' });
    expect(answer.body).not.toContain('tenant');
  });
});

describe('the problems each documented route declares (declareProblems)', () => {
  type Responses = Record<string, { content?: Record<string, unknown> }>;

  async function documented(withQueryRule: boolean): Promise<(path: string, method?: string) => Responses | undefined> {
    const app = build();
    installValidators(app);
    if (withQueryRule) refuseUnknownQuery(app);
    installErrorHandling(app);
    declareProblems(app);
    app.addSchema(Problem);
    await app.register(fastifySwagger, openApiOptions(false));
    const object = { type: 'object', properties: { n: { type: 'integer' } } };
    app.post('/body', { schema: { body: object } }, async () => 'ok');
    app.get('/params/:n', { schema: { params: object } }, async () => 'ok');
    app.get('/query', { schema: { querystring: object } }, async () => 'ok');
    app.get('/headers', { schema: { headers: object } }, async () => 'ok');
    app.get('/bare', { schema: {} }, async () => 'ok');
    app.get('/own', { schema: { response: { 200: { type: 'string' }, 503: { type: 'string', description: 'its own' } } } }, async () => 'ok');
    app.post('/hidden', { schema: { hide: true, body: object } }, async () => 'ok');
    app.get('/undocumented', async () => 'ok');
    await app.ready();
    const paths = (app.swagger() as unknown as { paths: Record<string, Record<string, { responses: Responses }>> }).paths;
    return (path, method = 'get') => paths[path]?.[method]?.responses;
  }
  const statuses = (responses: Responses | undefined) => Object.keys(responses ?? {}).sort();

  it('when a route reads a body, then it declares 400, 413, 415 and 422 besides 503, each as problem+json', async () => {
    const responses = await documented(false);

    expect(statuses(responses('/body', 'post'))).toEqual(['400', '413', '415', '422', '503']);
    for (const response of Object.values(responses('/body', 'post')!)) expect(Object.keys(response.content ?? {})).toEqual(['application/problem+json']);
  });

  it('when a route reads only its path, query or headers, then it declares 422 and 503, no body problems', async () => {
    const responses = await documented(false);

    for (const path of ['/params/{n}', '/query', '/headers']) expect(statuses(responses(path)), path).toEqual(['422', '503']);
  });

  it('when a route reads no input, then it declares 503 only, and 422 once unknown query parameters are refused', async () => {
    expect(statuses((await documented(false))('/bare'))).toEqual(['503']);
    expect(statuses((await documented(true))('/bare'))).toEqual(['422', '503']);
  });

  it('when a route declares an answer itself, then its own wins; hidden and undocumented routes get nothing', async () => {
    const responses = await documented(false);

    expect(statuses(responses('/own'))).toEqual(['200', '503']);
    expect(responses('/own')!['503']!.content).toEqual({ 'application/json': { schema: { type: 'string', description: 'its own' } } });
    expect(responses('/hidden', 'post')).toBeUndefined();
    expect(responses('/undocumented')).toEqual({ '200': { description: 'Default Response' } });
  });
});

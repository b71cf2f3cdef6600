import fastifySwagger from '@fastify/swagger';
import Ajv from 'ajv';
import Fastify, { type FastifyInstance, type FastifySchema } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { installJsonBody } from '../../src/http/json-body.js';
import { DECIMAL_PLACES } from '../../src/http/money.js';
import { openApiOptions } from '../../src/http/openapi.js';
import { installErrorHandling } from '../../src/http/problems.js';
import { fieldErrors, installValidators, refuseUnknownQuery, trimFields } from '../../src/http/validation.js';

// Each test builds its app: the validators and the query rule act when routes are registered, and only a
// test that registers them sees what they do.
const built: FastifyInstance[] = [];
afterEach(async () => {
  for (const app of built.splice(0)) await app.close();
});

const echo = async (request: { body?: unknown; query?: unknown }) => ({ body: request.body ?? null, query: request.query });

async function appWith(routes: Record<string, FastifySchema | undefined>): Promise<FastifyInstance> {
  const app = Fastify();
  built.push(app);
  installJsonBody(app);
  installValidators(app);
  refuseUnknownQuery(app);
  installErrorHandling(app);
  await app.register(fastifySwagger, openApiOptions(false));
  for (const [route, schema] of Object.entries(routes)) {
    const [method, url] = route.split(' ') as ['GET' | 'POST', string];
    app.route({ method, url, ...(schema && { schema }), preValidation: trimFields('name'), handler: echo });
  }
  await app.ready();
  return app;
}

const THING = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', example: 'Ada' },
    count: { type: 'integer' },
    note: { type: 'string', default: 'none' },
    price: { type: 'number', [DECIMAL_PLACES]: 2 },
    items: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' } } } },
  },
};
const QUERY = { type: 'object', properties: { limit: { type: 'integer', default: 20 }, min: { type: 'number', [DECIMAL_PLACES]: 2 } } };

describe('the validators, as installed on an app', () => {
  const things = () => appWith({ 'POST /things': { body: THING, querystring: QUERY } });

  it('when a body breaks several rules, then each is named: strings are not coerced to numbers, unknown fields are refused, nested paths are dotted', async () => {
    const app = await things();

    const answer = await app.inject({ method: 'POST', url: '/things', payload: { count: '2', colour: 'red', items: [{ name: 'a' }, { name: 1 }] } });

    expect(answer.statusCode).toBe(422);
    expect(answer.json().errors).toEqual([
      { field: 'name', message: 'is required' },
      { field: 'colour', message: 'is not a known field' },
      { field: 'count', message: 'must be integer' },
      { field: 'items.1.name', message: 'must be string' },
    ]);
  });

  it('when a body leaves out a field with a default, then the route gets the default', async () => {
    const app = await things();

    const answer = await app.inject({ method: 'POST', url: '/things', payload: { name: 'Ada', count: 2 } });

    expect(answer.statusCode).toBe(200);
    expect(answer.json()).toEqual({ body: { name: 'Ada', count: 2, note: 'none' }, query: { limit: 20 } });
  });

  it('when the query has numbers, then they are read as numbers, and one that is not a number is refused', async () => {
    const app = await things();
    const post = (url: string) => app.inject({ method: 'POST', url, payload: { name: 'Ada' } });

    expect((await post('/things?limit=5&min=1.5')).json().query).toEqual({ limit: 5, min: 1.5 });
    const refused = await post('/things?limit=five');
    expect(refused.statusCode).toBe(422);
    expect(refused.json().detail).toBe('Invalid query: limit must be integer.');
  });

  it.each([
    ['in the body', (app: FastifyInstance, price: number) => app.inject({ method: 'POST', url: '/things', payload: { name: 'Ada', price } }), 'Invalid body: price must have at most 2 decimals.'],
    ['in the query', (app: FastifyInstance, min: number) => app.inject({ method: 'POST', url: `/things?min=${min}`, payload: { name: 'Ada' } }), 'Invalid query: min must have at most 2 decimals.'],
  ])('when a number %s has more decimals than its schema allows, then it is refused; as many or fewer pass', async (_where, send, detail) => {
    const app = await things();

    for (const accepted of [12, 1.5, 1.25]) expect((await send(app, accepted)).statusCode, String(accepted)).toBe(200);
    const refused = await send(app, 1.255);
    expect(refused.statusCode).toBe(422);
    expect(refused.json().detail).toBe(detail);
  });

  it.each([
    ['null', 'null'],
    ['a string', '"Ada"'],
    ['an array', '["Ada"]'],
  ])('when a route trims fields and the body is %s, then it is 422 "body must be object", not a failure', async (_case, payload) => {
    const app = await things();

    const answer = await app.inject({ method: 'POST', url: '/things', payload, headers: { 'content-type': 'application/json' } });

    expect(answer.statusCode).toBe(422);
    expect(answer.json().errors).toEqual([{ field: 'body', message: 'must be object' }]);
  });
});

describe('which routes refuse unknown query parameters (refuseUnknownQuery)', () => {
  const LIMIT = { type: 'object', properties: { limit: { type: 'integer' } } };
  const routes = {
    'GET /typed': { querystring: LIMIT },
    'GET /plain': {},
    'GET /hidden': { hide: true },
    'GET /hidden-typed': { hide: true, querystring: LIMIT },
    'GET /open': { querystring: { ...LIMIT, additionalProperties: true } },
    'GET /closed': { querystring: { ...LIMIT, additionalProperties: { type: 'string', maxLength: 1 } } },
    'GET /either': { querystring: { anyOf: [{ type: 'object', required: ['a'], properties: { a: { type: 'string' } } }, { type: 'object', required: ['b'], properties: { b: { type: 'string' } } }] } },
    'GET /none': undefined,
  };

  it('when a documented route has a query schema or none, then a parameter it does not name is 422, and those it names pass', async () => {
    const app = await appWith(routes);

    for (const url of ['/typed?limit=1&x=1', '/plain?x=1', '/hidden-typed?limit=1&x=1']) {
      const answer = await app.inject({ method: 'GET', url });
      expect(answer.statusCode, url).toBe(422);
      expect(answer.json().errors, url).toEqual([{ field: 'x', message: 'is not a known field' }]);
    }
    expect((await app.inject({ method: 'GET', url: '/typed?limit=1' })).json().query).toEqual({ limit: 1 });
    expect((await app.inject({ method: 'GET', url: '/plain' })).statusCode).toBe(200);
  });

  it('when a route is hidden without a query schema, has no schema, opens its query, rules on extra parameters itself or is not a plain object schema, then it is left as written', async () => {
    const app = await appWith(routes);

    for (const url of ['/hidden?x=1', '/none?x=1', '/open?limit=1&x=1', '/closed?limit=1&x=1', '/either?a=1&x=1']) {
      const answer = await app.inject({ method: 'GET', url });
      expect(answer.statusCode, url).toBe(200);
      expect(answer.json().query.x, url).toBe('1');
    }
    const tooLong = await app.inject({ method: 'GET', url: '/closed?x=12' });
    expect(tooLong.statusCode).toBe(422);
    expect(tooLong.json().errors).toEqual([{ field: 'x', message: 'must NOT have more than 1 characters' }]);
  });
  it('when a route has no query schema, then the document still lists no query parameters for it, and those a schema names for the others', async () => {
    const app = await appWith(routes);
    const parameters = (path: string) =>
      ((app.swagger() as { paths: Record<string, { get: { parameters?: { in: string; name: string }[] } }> }).paths[path]!.get.parameters ?? []).map((p) => `${p.in} ${p.name}`);

    expect(parameters('/plain')).toEqual([]);
    expect(parameters('/typed')).toEqual(['query limit']);
  });
});

describe('fieldErrors, for errors ajv reports', () => {
  it('when ajv is set to leave out its messages, then each field is said to be invalid', () => {
    const validate = new Ajv.default({ allErrors: true, messages: false }).compile({ type: 'object', properties: { items: { type: 'array', items: { type: 'integer' } } } });

    expect(validate({ items: [1, 'two'] })).toBe(false);

    expect(fieldErrors(validate.errors!, 'body')).toEqual([{ field: 'items.1', message: 'is invalid' }]);
  });
});

import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installJsonBody } from '../../src/http/json-body.js';
import { DECIMAL_PLACES } from '../../src/http/money.js';
import { installErrorHandling } from '../../src/http/problems.js';
import { installValidators, PRINTABLE, refuseUnknownQuery, trimFields, VISIBLE } from '../../src/http/validation.js';

const echo = async (request: { body?: unknown; query?: unknown }) => ({ body: request.body ?? null, query: request.query });

describe('what the validators refuse, and how they say it', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = Fastify();
    installJsonBody(app);
    installValidators(app);
    refuseUnknownQuery(app);
    installErrorHandling(app);
    app.post(
      '/things',
      {
        preValidation: trimFields('name', 'tags'),
        schema: {
          body: {
            type: 'object',
            additionalProperties: false,
            required: ['name'],
            properties: {
              name: { type: 'string', minLength: 1, maxLength: 5, allOf: [{ pattern: PRINTABLE }, { pattern: VISIBLE }] },
              code: { type: 'string', pattern: '^[a-z]+$' },
              status: { type: 'string', enum: ['Pending', 'Shipped'] },
              price: { type: 'number', [DECIMAL_PLACES]: 2 },
              email: { type: 'string', format: 'email' },
              count: { type: 'integer', minimum: 1 },
              note: { type: 'string' },
              tags: { type: 'array', items: { type: 'string' } },
              address: { type: 'object', additionalProperties: false, required: ['city'], properties: { city: { type: 'string' } } },
            },
          },
          querystring: { type: 'object', properties: { limit: { type: 'integer', default: 20 } } },
        },
      },
      echo,
    );
    app.get('/plain', { schema: {} }, echo);
    app.get('/hidden', { schema: { hide: true } }, echo);
    app.get('/open-query', { schema: { querystring: { type: 'object', additionalProperties: true, properties: {} } } }, echo);
    app.get('/no-schema', echo);
    await app.ready();
  });
  afterAll(() => app?.close());

  const post = (payload: unknown, url = '/things') => app.inject({ method: 'POST', url, payload: payload as object });
  const refusal = async (payload: unknown) => {
    const answer = await post(payload);
    expect(answer.statusCode, answer.body).toBe(422);
    return answer.json() as { detail: string; errors: { field: string; message: string }[] };
  };

  it.each([
    ['a missing field', {}, 'name', 'is required'],
    ['a missing nested field', { name: 'Ada', address: {} }, 'address.city', 'is required'],
    ['an unknown field', { name: 'Ada', colour: 'red' }, 'colour', 'is not a known field'],
    ['an unknown nested field', { name: 'Ada', address: { city: 'X', zip: '1' } }, 'address.zip', 'is not a known field'],
    ['a value not in the list', { name: 'Ada', status: 'Lost' }, 'status', 'must be one of Pending, Shipped'],
    ['a control character', { name: 'A\u0007' }, 'name', 'contains control characters or unpaired surrogates'],
    ['only invisible characters', { name: '\u200b' }, 'name', 'must contain a visible character, not only spaces or invisible ones'],
    ['characters another pattern refuses', { name: 'Ada', code: 'ABC' }, 'code', 'contains characters that are not allowed'],
    ['three decimals', { name: 'Ada', price: 1.005 }, 'price', 'must have at most 2 decimals'],
    ['an email that is not one', { name: 'Ada', email: 'not-an-email' }, 'email', 'must be a valid email'],
    ['a number below the minimum', { name: 'Ada', count: 0 }, 'count', 'must be >= 1'],
    ['a string where an integer goes (no coercion in bodies)', { name: 'Ada', count: '2' }, 'count', 'must be integer'],
    ['a bad array item', { name: 'Ada', tags: ['a', 2] }, 'tags.1', 'must be string'],
    ['a body that is not an object', [1], 'body', 'must be object'],
  ])('when the body has %s, then it is 422 naming the field with a message for people', async (_case, payload, field, message) => {
    const problem = await refusal(payload);
    expect(problem.errors).toEqual([{ field, message }]);
    expect(problem.detail).toBe(`Invalid body: ${field} ${message}.`);
  });

  it('when a field breaks several rules, then it is named once, with the first', async () => {
    const problem = await refusal({ name: '\u0007\u0007\u0007\u0007\u0007\u0007', price: 1.001, count: 0.5 });
    expect(problem.errors).toEqual([
      { field: 'name', message: 'contains control characters or unpaired surrogates' },
      { field: 'price', message: 'must have at most 2 decimals' },
      { field: 'count', message: 'must be integer' },
    ]);
  });

  it('when named fields have spaces around them, then they are trimmed before the length is checked; other fields are kept as sent', async () => {
    const answer = await post({ name: '  Ada  ', note: '  kept  ', tags: ['  x  '] });
    expect(answer.statusCode).toBe(200);
    expect(answer.json().body).toEqual({ name: 'Ada', note: '  kept  ', tags: ['  x  '] });
  });

  it('when the query has a number, then it is read as one, and a missing one gets its default', async () => {
    expect((await app.inject({ method: 'POST', url: '/things?limit=5', payload: { name: 'Ada' } })).json().query).toEqual({ limit: 5 });
    expect((await post({ name: 'Ada' })).json().query).toEqual({ limit: 20 });
  });

  it('when a query parameter is unknown, then it is 422 naming it, on routes with a query schema and on documented ones without', async () => {
    for (const url of ['/things?limt=5', '/plain?x=1']) {
      const answer = await app.inject({ method: url.startsWith('/things') ? 'POST' : 'GET', url, payload: { name: 'Ada' } });
      expect(answer.statusCode, url).toBe(422);
      expect(answer.json().detail).toBe(`Invalid query: ${url.startsWith('/things') ? 'limt' : 'x'} is not a known field.`);
    }
  });

  it('when a route is hidden without a query schema, has none at all, or opens its query, then unknown parameters pass', async () => {
    for (const url of ['/hidden?x=1', '/no-schema?x=1', '/open-query?x=1']) {
      const answer = await app.inject({ method: 'GET', url });
      expect(answer.statusCode, url).toBe(200);
      expect(answer.json().query).toEqual({ x: '1' });
    }
  });
});

describe('when the validators are compiled', () => {
  const started: FastifyInstance[] = [];
  afterAll(async () => {
    for (const app of started) await app.close();
  });

  async function listening(schemaPattern: string) {
    const lines: { level: number; msg: string; err?: { message: string } }[] = [];
    const app = Fastify({
      logger: { level: 'error', stream: { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) } },
    });
    started.push(app);
    installValidators(app);
    installErrorHandling(app);
    app.post('/good', { schema: { body: { type: 'object', properties: { code: { type: 'string', pattern: '^[a-z]+$' } } } } }, echo);
    app.post('/bad', { schema: { body: { type: 'object', properties: { code: { type: 'string', pattern: schemaPattern } } } } }, echo);
    await app.listen({ host: '127.0.0.1', port: 0 });
    return { app, lines };
  }

  it('when a route schema does not compile, then the server still starts, says so in its log moments after, and the other routes validate as before', async () => {
    const { app, lines } = await listening('[');

    await expect.poll(() => lines.map((l) => l.msg), { timeout: 5_000 }).toContain('a route schema does not compile: its requests will fail');
    expect(lines.find((l) => l.msg.startsWith('a route schema'))?.err?.message).toMatch(/^Invalid regular expression: \/\[\//);
    const refused = await app.inject({ method: 'POST', url: '/good', payload: { code: 'ABC' } });
    expect(refused.statusCode).toBe(422);
    const accepted = await app.inject({ method: 'POST', url: '/good', payload: { code: 'abc' } });
    expect(accepted.statusCode).toBe(200);
  });

  it('when every schema compiles, then nothing is logged once they all are', async () => {
    const { app, lines } = await listening('^[0-9]+$');

    expect((await app.inject({ method: 'POST', url: '/bad', payload: { code: 'x' } })).statusCode).toBe(422);
    expect((await app.inject({ method: 'POST', url: '/bad', payload: { code: '12' } })).statusCode).toBe(200);
    expect(lines).toEqual([]);
  });
});

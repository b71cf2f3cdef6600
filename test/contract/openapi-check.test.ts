import fastifySwagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { checkAnswersAgainstOpenApi, takeResults } from '../helpers/openapi-validation.js';

/** A service whose answers break its own document in the ways the check must catch. */
async function misbehaving(): Promise<FastifyInstance> {
  const app = Fastify();
  app.setValidatorCompiler(() => () => true);
  await app.register(fastifySwagger, { openapi: { info: { title: 't', version: '1' } } });
  const money = { type: 'object', required: ['price'], properties: { price: { type: 'number', 'x-decimal-places': 2 } } };
  const problem = { description: 'problem', content: { 'application/problem+json': { schema: { type: 'object', required: ['code'], properties: { code: { type: 'string' } } } } } };
  app.get('/price/:written', { schema: { response: { 200: money, 404: problem } } }, async (request, reply) =>
    reply.type('application/json').send(`{"price":${(request.params as { written: string }).written}}`),
  );
  app.get('/teapot', { schema: { response: { 200: money } } }, async (_request, reply) => (reply as FastifyReply).code(418).type('application/json').send('{}'));
  app.get('/problem', { schema: { response: { 200: money, 404: problem } } }, async (_request, reply) => reply.code(404).type('application/json').send('{"code":"x"}'));
  app.get('/hidden', { schema: { hide: true } }, async () => 'anything');
  checkAnswersAgainstOpenApi(app);
  return app;
}

afterEach(() => void takeResults());

describe('the OpenAPI check every test service runs', () => {
  it('when answers break the document, then each break is reported: an undeclared status, a wrong media type, money without two decimals', async () => {
    const app = await misbehaving();
    for (const url of ['/price/200.00', '/price/19.99', '/price/200', '/price/19.9', '/price/2e2', '/teapot', '/problem', '/hidden', '/nowhere']) {
      await app.inject({ method: 'GET', url });
    }
    const { violations, checked } = takeResults();
    expect(violations).toEqual([
      expect.stringMatching(/^GET \/price\/200 → 200: the body does not match its schema: \/price .*\(written 200\)/),
      expect.stringMatching(/^GET \/price\/19\.9 → 200: .*\(written 19\.9\)/),
      expect.stringMatching(/^GET \/price\/2e2 → 200: .*\(written 2e2\)/),
      expect.stringMatching(/^GET \/teapot → 418: status 418 is not declared for GET \/teapot/),
      expect.stringMatching(/^GET \/problem → 404: sent application\/json, declared application\/problem\+json/),
      expect.stringMatching(/^GET \/nowhere → 404: sent application\/json, declared application\/problem\+json/),
    ]);
    expect(Object.fromEntries(checked)).toEqual({
      'GET /price/{written} 200': 5,
      'GET /teapot 418': 1,
      'GET /problem 404': 1,
      'GET /hidden (not documented)': 1,
      'GET (no route) 404': 1,
    });
    await app.close();
  });
});

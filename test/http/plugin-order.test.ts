import Fastify, { type FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { afterEach, describe, expect, it } from 'vitest';
import { ROUTE_PREREQUISITES, routes } from '../../src/app.js';
import { Problem } from '../../src/errors.js';
import { auth, routeAccess } from '../../src/http/auth.js';
import { jsonBody } from '../../src/http/json-body.js';
import { declaredProblems, errorHandling } from '../../src/http/problems.js';
import { requestIds } from '../../src/http/request-id.js';
import { closingRefusal, rateLimit, security, type SecurityOptions } from '../../src/http/security.js';
import { unknownQueryRefusal, validators } from '../../src/http/validation.js';
import { httpMetrics } from '../../src/metrics/http.js';
import { ServiceMetrics } from '../../src/metrics/registry.js';
import { refusedUpgrades } from '../../src/notifications/routes.js';

interface Part {
  name: string;
  /** Registers it, with its options. */
  register: (app: FastifyInstance) => void;
  /** What must be registered before it. */
  needs: string[];
}

const keys = { full: ['k1'], read: ['r1'] };
const securityOptions: SecurityOptions = {
  keys,
  rateLimit: { max: 10, windowMs: 1000 },
  corsOrigins: ['https://dashboard.example'],
  websocket: { total: 0, perCaller: 0 },
};
const metrics = new ServiceMetrics({ role: 'all', database: 'pglite', broker: 'in-process', changelog: 'postgres' });

/** The parts buildApp registers, in its order (auth and the rate limit inside security), and what each needs first. */
const PARTS: Part[] = [
  { name: 'request-ids', register: (app) => app.register(requestIds), needs: [] },
  { name: 'route-access', register: (app) => app.register(routeAccess), needs: [] },
  { name: 'refused-upgrades', register: (app) => app.register(refusedUpgrades), needs: [] },
  { name: 'closing-refusal', register: (app) => app.register(closingRefusal), needs: ['request-ids', 'refused-upgrades'] },
  { name: 'json-body', register: (app) => app.register(jsonBody), needs: [] },
  { name: 'validators', register: (app) => app.register(validators), needs: [] },
  { name: 'unknown-query-refusal', register: (app) => app.register(unknownQueryRefusal), needs: ['validators'] },
  { name: 'error-handling', register: (app) => app.register(errorHandling, {}), needs: [] },
  { name: 'declared-problems', register: (app) => app.register(declaredProblems), needs: ['unknown-query-refusal'] },
  {
    name: 'security',
    register: (app) => app.register(security, securityOptions),
    needs: ['request-ids', 'closing-refusal', 'route-access', 'error-handling'],
  },
  { name: 'auth', register: (app) => app.register(auth, keys), needs: [] },
  { name: 'rate-limit', register: (app) => app.register(rateLimit, { max: 10, timeWindow: 1000 }), needs: ['auth'] },
  {
    name: 'http-metrics',
    register: (app) => app.register(httpMetrics, { metrics }),
    needs: ['route-access', 'unknown-query-refusal', 'declared-problems', 'security', 'error-handling'],
  },
];

/** A plugin that is only a name, which is all Fastify checks of a dependency. */
const standIn = (name: string) => fp(async () => {}, { name });

const ORDERINGS = PARTS.flatMap((part) => part.needs.map((need) => ({ part, need })));

describe('the order the framework parts are registered in, checked by Fastify at boot', () => {
  let app = Fastify();
  afterEach(async () => {
    await app.close().catch(() => undefined);
  });

  it('when the table is read, then every part it needs is one of the parts', () => {
    const names = PARTS.map((part) => part.name);

    expect(ORDERINGS.filter(({ need }) => !names.includes(need))).toEqual([]);
    expect(ORDERINGS.length).toBeGreaterThan(0);
  });

  it('when every part is registered in buildApp\'s order, then it boots', async () => {
    app = Fastify();
    app.addSchema(Problem);
    for (const { name, register } of PARTS) if (name !== 'auth' && name !== 'rate-limit') register(app);

    await app.ready();

    expect(PARTS.filter(({ name }) => !app.hasPlugin(name))).toEqual([]);
  });

  it.each(PARTS)('when what $name needs is registered first, then it boots under that name', async ({ name, register, needs }) => {
    app = Fastify();
    for (const need of needs) app.register(standIn(need));
    register(app);

    await app.ready();

    expect(app.hasPlugin(name)).toBe(true);
  });

  it.each(ORDERINGS)('when $part.name is registered before $need, then boot fails with Fastify\'s error', async ({ part, need }) => {
    app = Fastify();
    for (const other of part.needs.filter((n) => n !== need)) app.register(standIn(other));
    part.register(app);
    app.register(standIn(need));

    await expect(app.ready()).rejects.toMatchObject({
      code: 'FST_ERR_PLUGIN_DEPENDENCY_NOT_REGISTERED',
      message: `The dependency '${need}' of plugin '${part.name}' is not registered`,
    });
  });
});

describe('route plugins, which buildApp registers after every part their routes pass through', () => {
  let app = Fastify();
  afterEach(async () => {
    await app.close().catch(() => undefined);
  });
  const orderRoutes = () => routes('order-routes', async (instance) => {
    instance.addHook('onRequest', async (request) => {
      request.headers['x-seen-by'] = 'order-routes';
    });
    instance.get('/orders', async (request) => ({ seen: request.headers['x-seen-by'] ?? null }));
  });

  it('when the prerequisites are read, then each is one of the framework parts', () => {
    expect(ROUTE_PREREQUISITES.filter((name) => !PARTS.some((part) => part.name === name))).toEqual([]);
  });

  it.each(ROUTE_PREREQUISITES)('when a route plugin is registered before %s, then boot fails with Fastify\'s error', async (missing) => {
    app = Fastify();
    for (const other of ROUTE_PREREQUISITES.filter((n) => n !== missing)) app.register(standIn(other));
    app.register(orderRoutes());
    app.register(standIn(missing));

    await expect(app.ready()).rejects.toMatchObject({
      code: 'FST_ERR_PLUGIN_DEPENDENCY_NOT_REGISTERED',
      message: `The dependency '${missing}' of plugin 'order-routes' is not registered`,
    });
  });

  it('when it comes after them, then it boots, and its hooks stay inside it (encapsulated)', async () => {
    app = Fastify();
    for (const name of ROUTE_PREREQUISITES) app.register(standIn(name));
    app.register(orderRoutes());
    app.get('/outside', async (request) => ({ seen: request.headers['x-seen-by'] ?? null }));

    await app.ready();

    expect((await app.inject('/orders')).json()).toEqual({ seen: 'order-routes' });
    expect((await app.inject('/outside')).json()).toEqual({ seen: null });
  });
});

import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import fastifyWebsocket from '@fastify/websocket';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import type { Drizzle } from './db/client.js';
import { Problem } from './errors.js';
import { Order, OrderEvent } from './events/envelope.js';
import { routeAccess } from './http/auth.js';
import { consoleRoutes, DEFAULT_CONSOLE_ROOT } from './http/console.js';
import { healthRoutes, type ReadinessCheck } from './http/health.js';
import { requestIdOf, requestIds } from './http/request-id.js';
import { jsonBody } from './http/json-body.js';
import { openApiOptions } from './http/openapi.js';
import { answerClientError, answerFrameworkError, declaredProblems, errorHandling, type DatabaseFaultReporter } from './http/problems.js';
import { closingRefusal, DOCS_CSP, security, type SecurityOptions } from './http/security.js';
import { unknownQueryRefusal, validators } from './http/validation.js';
import { httpMetrics } from './metrics/http.js';
import type { ServiceMetrics } from './metrics/registry.js';
import type { ReplayAfter } from './notifications/catch-up.js';
import type { NotificationHub } from './notifications/hub.js';
import { notificationRoutes, notificationWebsocketOptions, refusedUpgrades } from './notifications/routes.js';
import { orderRoutes } from './orders/routes.js';
import type { OrderService } from './orders/service.js';
import { Product } from './products/schemas.js';
import { productRoutes } from './products/routes.js';

export interface AppDeps {
  logger: FastifyBaseLogger;
  security: SecurityOptions;
  /** The order and catalog API, in processes that serve it. */
  api?: { orders: OrderService; catalog: Drizzle };
  /** The WebSocket side, in processes that notify; `whenReady` says whether clients may connect yet. */
  notifications?: { hub: NotificationHub; replayAfter: ReplayAfter; whenReady?: (ms: number) => Promise<boolean> };
  /** Hears database failures requests ran into (classified, logged once per episode); the default only logs them. */
  reportFault?: DatabaseFaultReporter;
  readiness: Record<string, ReadinessCheck>;
  /** Served at /metrics (no such route without it). */
  metrics?: ServiceMetrics;
  /** The built console (default: dist/console). */
  consoleRoot?: string;
}

/** The parts every route passes through: a route plugin boots only after all of them, or they would miss its routes. */
export const ROUTE_PREREQUISITES = [
  'request-ids',
  'route-access',
  'refused-upgrades',
  'closing-refusal',
  'json-body',
  'validators',
  'unknown-query-refusal',
  'error-handling',
  'declared-problems',
  'security',
];

/** A route plugin as `buildApp` registers it: still encapsulated, named, and after ROUTE_PREREQUISITES. */
export function routes<Options extends object>(name: string, plugin: FastifyPluginAsync<Options>): FastifyPluginAsync<Options> {
  return fp((instance: FastifyInstance, options: Options) => plugin(instance, options), {
    name,
    dependencies: ROUTE_PREREQUISITES,
    encapsulate: true,
  });
}

/** Wires the HTTP parts; it opens nothing itself, so tests build it around whatever they need. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger,
    routerOptions: { ignoreTrailingSlash: true },
    bodyLimit: 64 * 1024,
    // refuseWhileClosing answers instead, as problem+json, closing upgrade sockets too.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    requestTimeout: 30_000,
    // The caller's X-Request-Id when it is safe to log, else a new one; on every line the request logs.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    genReqId: requestIdOf,
    requestIdHeader: false,
    // What the router and Node's HTTP parser refuse is problem+json too.
    frameworkErrors: answerFrameworkError,
    clientErrorHandler: answerClientError,
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Each part names the parts it needs before it; Fastify refuses to boot when one is missing or comes later.
  await app.register(requestIds);
  await app.register(routeAccess);
  await app.register(refusedUpgrades);
  await app.register(closingRefusal);
  await app.register(jsonBody);
  await app.register(validators);
  await app.register(unknownQueryRefusal);
  await app.register(errorHandling, { reportFault: deps.reportFault });
  await app.register(declaredProblems);
  await app.register(security, deps.security);
  for (const schema of [Problem, Order, OrderEvent, Product]) app.addSchema(schema);
  const keysOn = deps.security.keys.full.length + deps.security.keys.read.length > 0;

  await app.register(fastifySwagger, openApiOptions(keysOn));
  await app.register(
    routes('docs', async (docs) => {
      // Everything registered here is public: the interactive docs, their files and the OpenAPI document.
      docs.addHook('onRoute', (route) => {
        route.config = { ...route.config, access: 'public' };
      });
      await docs.register(fastifySwaggerUi, { routePrefix: '/docs', staticCSP: DOCS_CSP });
      docs.get('/openapi.json', { schema: { hide: true } }, () => app.swagger());
    }),
  );

  await app.register(routes('health-routes', healthRoutes), { checks: deps.readiness });
  if (deps.metrics) await app.register(httpMetrics, { metrics: deps.metrics });
  await app.register(routes('console-routes', consoleRoutes), { root: deps.consoleRoot ?? DEFAULT_CONSOLE_ROOT });
  if (deps.api) {
    await app.register(routes('order-routes', orderRoutes), { orders: deps.api.orders });
    await app.register(routes('product-routes', productRoutes), { db: deps.api.catalog });
  }
  if (deps.notifications) {
    await app.register(fastifyWebsocket, notificationWebsocketOptions(deps.notifications.hub));
    await app.register(routes('notification-routes', notificationRoutes), { ...deps.notifications, limits: deps.security.websocket });
  }
  return app;
}

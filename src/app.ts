import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import fastifyWebsocket from '@fastify/websocket';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Drizzle } from './db/client.js';
import { Problem } from './errors.js';
import { Order, OrderEvent } from './events/envelope.js';
import { recordRouteAccess } from './http/auth.js';
import { consoleRoutes, DEFAULT_CONSOLE_ROOT } from './http/console.js';
import { healthRoutes, type ReadinessCheck } from './http/health.js';
import { installRequestIds, requestIdOf } from './http/request-id.js';
import { installJsonBody } from './http/json-body.js';
import { openApiOptions } from './http/openapi.js';
import { answerClientError, answerFrameworkError, declareProblems, installErrorHandling, type DatabaseFaultReporter } from './http/problems.js';
import { DOCS_CSP, installSecurity, refuseWhileClosing, type SecurityOptions } from './http/security.js';
import { installValidators, refuseUnknownQuery } from './http/validation.js';
import { installHttpMetrics } from './metrics/http.js';
import type { ServiceMetrics } from './metrics/registry.js';
import type { ReplayAfter } from './notifications/catch-up.js';
import type { NotificationHub } from './notifications/hub.js';
import { closeRefusedUpgrades, notificationRoutes, notificationWebsocketOptions } from './notifications/routes.js';
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

  installRequestIds(app);
  recordRouteAccess(app);
  closeRefusedUpgrades(app);
  refuseWhileClosing(app);
  installJsonBody(app);
  installValidators(app);
  refuseUnknownQuery(app);
  installErrorHandling(app, deps.reportFault);
  declareProblems(app);
  await installSecurity(app, deps.security);
  for (const schema of [Problem, Order, OrderEvent, Product]) app.addSchema(schema);
  const keysOn = deps.security.keys.full.length + deps.security.keys.read.length > 0;

  await app.register(fastifySwagger, openApiOptions(keysOn));
  await app.register(async (docs) => {
    // Everything registered here is public: the interactive docs, their files and the OpenAPI document.
    docs.addHook('onRoute', (route) => {
      route.config = { ...route.config, access: 'public' };
    });
    await docs.register(fastifySwaggerUi, { routePrefix: '/docs', staticCSP: DOCS_CSP });
    docs.get('/openapi.json', { schema: { hide: true } }, () => app.swagger());
  });

  await app.register(healthRoutes, { checks: deps.readiness });
  if (deps.metrics) installHttpMetrics(app, deps.metrics);
  await app.register(consoleRoutes, { root: deps.consoleRoot ?? DEFAULT_CONSOLE_ROOT });
  if (deps.api) {
    await app.register(orderRoutes, { orders: deps.api.orders });
    await app.register(productRoutes, { db: deps.api.catalog });
  }
  if (deps.notifications) {
    await app.register(fastifyWebsocket, notificationWebsocketOptions(deps.notifications.hub));
    await app.register(notificationRoutes, { ...deps.notifications, limits: deps.security.websocket });
  }
  return app;
}

import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { ServiceMetrics } from './registry.js';

/**
 * Counts and times every answer by its route pattern (unmatched URLs share one label, so a scan cannot
 * grow the series), and serves `GET /metrics`, which needs a key like the API it describes.
 */
export function installHttpMetrics(app: FastifyInstance, metrics: ServiceMetrics): void {
  app.addHook('onResponse', (request, reply, done) => {
    const labels = {
      method: request.method,
      route: request.is404 ? 'unmatched' : (request.routeOptions.url ?? 'unmatched'),
      status: String(reply.statusCode),
    };
    metrics.httpRequests.inc(labels);
    metrics.httpDuration.observe(labels, reply.elapsedTime / 1000);
    done();
  });

  app.get(
    '/metrics',
    {
      config: { access: 'read' },
      schema: {
        tags: ['operators'],
        summary: 'Prometheus metrics of this process',
        description:
          'Text exposition format: what this role runs (HTTP, orders, outbox, broker, change log, WebSocket, pool) and the process itself.',
        response: { 200: { description: 'Prometheus text exposition format 0.0.4', content: { 'text/plain': { schema: Type.String() } } } },
      },
    },
    async (_request, reply) => reply.type(metrics.contentType).send(await metrics.render()),
  );
}

// GET /metrics is recorded, refused and documented like every route, and answers problem+json.
export const httpMetrics = fp<{ metrics: ServiceMetrics }>((app, { metrics }) => installHttpMetrics(app, metrics), {
  name: 'http-metrics',
  dependencies: ['route-access', 'unknown-query-refusal', 'declared-problems', 'security', 'error-handling'],
});

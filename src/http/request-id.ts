import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { levels } from 'pino';

export const REQUEST_ID_HEADER = 'x-request-id';

/** A caller's id is kept when it is short and made of characters safe in a log line and a message header. */
const ACCEPTED = /^[A-Za-z0-9._:/+=-]{1,128}$/;

/** Fastify's genReqId: the caller's X-Request-Id when acceptable, otherwise a new UUID. */
export function requestIdOf(raw: IncomingMessage): string {
  const given = raw.headers[REQUEST_ID_HEADER];
  return typeof given === 'string' && ACCEPTED.test(given) ? given : randomUUID();
}

const logsInfo = (log: FastifyBaseLogger) => (levels.values[log.level] ?? Number.POSITIVE_INFINITY) <= levels.values.info!;

/**
 * Echoes the id on every answer, refusals included (the hook runs before the key check), and logs one
 * line per request when it is answered; request.log puts the id on every line a request writes.
 */
export function installRequestIds(app: FastifyInstance): void {
  // Callback-style hooks: they do no I/O, and an async hook costs each request a promise and a turn of the microtask queue.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header(REQUEST_ID_HEADER, request.id);
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    // The line's fields are only worked out when the line is written (the bench runs at warn).
    if (logsInfo(request.log)) {
      request.log.info(
        {
          method: request.method,
          path: request.url.split('?')[0],
          route: request.routeOptions.url,
          status: reply.statusCode,
          ms: Math.round(reply.elapsedTime * 10) / 10,
        },
        'request answered',
      );
    }
    done();
  });
}

export const requestIds = fp(installRequestIds, { name: 'request-ids' });

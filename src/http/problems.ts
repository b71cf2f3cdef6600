import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { databaseFaultOf, loggableError, type DatabaseFault } from '../db/faults.js';
import { createEpisodes } from '../episodes.js';
import { ApiError, DependencyUnavailableError, RETRY_AFTER_SECONDS, toProblem, type ErrorCode } from '../errors.js';
import { fieldErrors } from './validation.js';

export const PROBLEM_JSON = 'application/problem+json';

export function sendProblem(reply: FastifyReply, error: ApiError): FastifyReply {
  const retryAfter = RETRY_AFTER_SECONDS[error.code];
  if (retryAfter !== undefined && !reply.hasHeader('retry-after')) reply.header('retry-after', String(retryAfter));
  return reply
    .code(error.status)
    .type(PROBLEM_JSON)
    .send(JSON.stringify(toProblem(error, reply.request.url.split('?')[0])));
}

/** Hears every database failure a request ran into, classified; it logs them once per episode. */
export type DatabaseFaultReporter = (error: unknown) => DatabaseFault | undefined;

/**
 * The one place where anything thrown becomes an HTTP answer; nothing internal leaks from a 5xx. A database
 * fault is reported (and logged once per episode), not logged per request: a full disk would flood the log.
 */
export function installErrorHandling(app: FastifyInstance, reportFault?: DatabaseFaultReporter): void {
  const episodes = createEpisodes(app.log);
  app.addHook('onClose', async () => episodes.close());
  const report: DatabaseFaultReporter =
    reportFault ??
    ((error) => {
      const fault = databaseFaultOf(error);
      if (fault) episodes.failed(`database ${fault}`, { error: loggableError(error) }, 'requests fail: the database is unavailable');
      return fault;
    });
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const apiError = toApiError(error, report);
    if (error instanceof DependencyUnavailableError) {
      episodes.failed(
        `${error.dependency} unavailable`,
        { error: loggableError(error) },
        `requests fail: the ${error.dependency} is unavailable`,
        'warn',
      );
    } else if (apiError.code === 'internal_error') {
      request.log.error({ error: loggableError(error) }, 'request failed');
    }
    return sendProblem(reply, apiError);
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, new ApiError('route_not_found', `No route ${request.method} ${request.url.split('?')[0]}.`)),
  );
}

export const errorHandling = fp<{ reportFault?: DatabaseFaultReporter }>((app, { reportFault }) => installErrorHandling(app, reportFault), {
  name: 'error-handling',
});

/**
 * Declares on every documented route the problems the HTTP layer answers whatever the route does: 422 for input
 * its schemas refuse, 400/413/415 for bodies, 503 for a dependency away or an instance shutting down. Routes come
 * after it.
 */
export function declareProblems(app: FastifyInstance): void {
  const problem = { $ref: 'Problem' };
  app.addHook('onRoute', (route) => {
    if (!route.schema || route.schema.hide) return;
    const { body, params, querystring, headers } = route.schema;
    const problems = {
      ...(body ? { 400: problem, 413: problem, 415: problem } : {}),
      ...(body || params || querystring || headers ? { 422: problem } : {}),
      503: problem,
    };
    route.schema = { ...route.schema, response: { ...problems, ...(route.schema.response as object | undefined) } };
  });
}

// Every route then has a query schema, so every route declares the 422 that unknown parameters get.
export const declaredProblems = fp(declareProblems, { name: 'declared-problems', dependencies: ['unknown-query-refusal'] });

const FAULT_ERRORS: Record<DatabaseFault, [ErrorCode, string]> = {
  unreachable: ['service_unavailable', 'The database is not reachable; retry shortly.'],
  read_only: ['database_read_only', 'The database takes no writes right now (as during a failover); retry shortly.'],
  disk_full: ['storage_full', "The database's storage is full; retry once space is freed."],
  overloaded: ['database_overloaded', 'The database is out of connections or memory; retry shortly.'],
  conflict: ['transaction_conflict', 'The transaction conflicted with a concurrent one; retry it.'],
};

function toApiError(error: FastifyError, report: DatabaseFaultReporter): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof DependencyUnavailableError)
    return new ApiError('service_unavailable', `The ${error.dependency} is not reachable; retry shortly.`);
  if (error.validation) {
    const context = error.validationContext ?? 'body';
    const errors = fieldErrors(error.validation as never, context);
    return new ApiError(
      'validation_failed',
      `Invalid ${context === 'querystring' ? 'query' : context}: ${errors.map((e) => `${e.field} ${e.message}`).join('; ')}.`,
      errors,
    );
  }
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError(
        'malformed_json',
        error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ? 'The body is empty.' : `The body is not valid JSON: ${error.message}`,
      );
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('payload_too_large', 'The body is larger than this API accepts.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError('unsupported_media_type', 'Send the body as application/json.');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError('bad_request', 'Content-Length does not match the body.');
  }
  const fault = report(error);
  if (fault) return new ApiError(...FAULT_ERRORS[fault]);
  // PostgreSQL's data exceptions (class 22) mean a value the schemas should have refused.
  if (typeof (error as { code?: unknown }).code === 'string' && /^22/.test(error.code) && 'severity' in error) {
    return new ApiError('validation_failed', 'A value is outside what this API can store.');
  }
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) return new ApiError(status === 400 ? 'bad_request' : 'validation_failed', error.message);
  return new ApiError('internal_error', 'Something went wrong on our side; it has been logged.');
}

/**
 * For Fastify's `frameworkErrors`: what the router refuses before any route runs (a URL whose
 * %-escapes do not decode, a path segment over maxParamLength) is answered like everything else.
 */
export function answerFrameworkError(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const path = reply.request.url.split('?')[0];
  if (error.code === 'FST_ERR_BAD_URL')
    void sendProblem(reply, new ApiError('bad_url', `The path ${path} has a %-escape that is not UTF-8.`));
  else if (error.code === 'FST_ERR_MAX_PARAM_LENGTH')
    void sendProblem(reply, new ApiError('uri_too_long', 'A path segment is longer than 100 characters.'));
  else void sendProblem(reply, new ApiError('internal_error', 'Something went wrong on our side; it has been logged.'));
}

// What Node's HTTP parser refuses, by its error code; everything else it refuses is 400 bad_request.
const CLIENT_ERRORS: Record<string, [ErrorCode, string]> = {
  HPE_HEADER_OVERFLOW: ['headers_too_large', 'The request line and headers together are larger than 16 KiB.'],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: ['payload_too_large', 'The chunk extensions are too large.'],
  ERR_HTTP_REQUEST_TIMEOUT: ['request_timeout', 'The request did not arrive in full in time.'],
};

/**
 * For Fastify's `clientErrorHandler` (the server's 'clientError' event): a request Node's HTTP parser
 * refuses has no request object, so the problem answer is written to the socket, which is then closed.
 */
export function answerClientError(this: FastifyInstance, error: Error & { code?: string }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const known = CLIENT_ERRORS[String(error.code)];
  const [code, detail] = known ?? ['bad_request', 'The request is not valid HTTP/1.1.'];
  this.log.debug({ err: error }, 'refused a malformed request');
  // A response already under way on this connection (pipelining) must not be cut into.
  const busy = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage?.headersSent === true;
  if (socket.writable && !busy) {
    const problem = new ApiError(code, detail);
    const body = JSON.stringify(toProblem(problem));
    socket.write(
      `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status]}\r\nContent-Type: ${PROBLEM_JSON}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

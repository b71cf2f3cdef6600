import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { ApiError, DependencyUnavailableError, toProblem } from '../errors.js';
import { fieldErrors } from './validation.js';

export const PROBLEM_JSON = 'application/problem+json';

export function sendProblem(reply: FastifyReply, error: ApiError): FastifyReply {
  return reply.code(error.status).type(PROBLEM_JSON).send(JSON.stringify(toProblem(error, reply.request.url.split('?')[0])));
}

/** The one place where anything thrown becomes an HTTP answer; nothing internal leaks from a 5xx. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const apiError = toApiError(error);
    if (apiError.status >= 500) request.log.error({ err: error }, 'request failed');
    return sendProblem(reply, apiError);
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, new ApiError('route_not_found', `No route ${request.method} ${request.url.split('?')[0]}.`)),
  );
}

function toApiError(error: FastifyError): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof DependencyUnavailableError) return new ApiError('service_unavailable', `The ${error.dependency} is not reachable; retry shortly.`);
  if (error.validation) {
    const context = error.validationContext ?? 'body';
    const errors = fieldErrors(error.validation as never, context);
    return new ApiError('validation_failed', `Invalid ${context === 'querystring' ? 'query' : context}: ${errors.map((e) => `${e.field} ${e.message}`).join('; ')}.`, errors);
  }
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError('malformed_json', error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ? 'The body is empty.' : `The body is not valid JSON: ${error.message}`);
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('payload_too_large', 'The body is larger than this API accepts.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError('unsupported_media_type', 'Send the body as application/json.');
  }
  // PostgreSQL's data exceptions (class 22) mean a value the schemas should have refused.
  if (typeof (error as { code?: unknown }).code === 'string' && /^22/.test(error.code) && 'severity' in error) {
    return new ApiError('validation_failed', 'A value is outside what this API can store.');
  }
  if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
    return new ApiError('validation_failed', error.message);
  }
  if (isConnectionError(error)) return new ApiError('service_unavailable', 'The database is not reachable; retry shortly.');
  return new ApiError('internal_error', 'Something went wrong on our side; it has been logged.');
}

// The socket's errors, and PostgreSQL's: shutting down, too many connections, statement or lock timeout, idle-in-transaction timeout.
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', '57P01', '57P02', '57P03', '53300', '57014', '55P03', '25P03']);
// pg's own words for a connection it could not open or get from the pool, lost, or a statement it gave up waiting for.
const UNAVAILABLE_MESSAGES = /timeout exceeded when trying to connect|Connection terminated|Query read timeout|not queryable/i;

/** The database is away, refusing or too slow for its timeouts: worth a retry, so 503. */
function isConnectionError(error: Error & { code?: string }): boolean {
  const code = error.code ?? '';
  // Class 08 is PostgreSQL's connection exceptions.
  return UNAVAILABLE_CODES.has(code) || (/^08/.test(code) && 'severity' in error) || UNAVAILABLE_MESSAGES.test(error.message);
}

import { Type, type Static } from '@sinclair/typebox';

/** Every error the API can answer with: a stable code, its HTTP status and a title. */
export const ERRORS = {
  validation_failed: { status: 422, title: 'The request is not valid' },
  malformed_json: { status: 422, title: 'The body is not valid JSON' },
  unknown_product: { status: 422, title: 'The product does not exist' },
  idempotency_key_reused: { status: 422, title: 'The Idempotency-Key was used with a different request' },
  bad_request: { status: 400, title: 'The request is not valid HTTP' },
  bad_url: { status: 400, title: 'The URL is not valid' },
  bad_upgrade_request: { status: 400, title: 'The WebSocket handshake is not valid' },
  unauthorized: { status: 401, title: 'A valid bearer key is required' },
  forbidden: { status: 403, title: 'This key may not do that' },
  order_not_found: { status: 404, title: 'The order does not exist' },
  product_not_found: { status: 404, title: 'The product does not exist' },
  route_not_found: { status: 404, title: 'No such route' },
  insufficient_stock: { status: 409, title: 'Not enough stock' },
  invalid_transition: { status: 409, title: 'The order cannot move to that status' },
  concurrent_update: { status: 409, title: 'The order changed while this request ran; retry it' },
  idempotency_request_in_progress: { status: 409, title: 'A request with this Idempotency-Key is still running' },
  request_timeout: { status: 408, title: 'The request did not arrive in time' },
  precondition_failed: { status: 412, title: 'The order changed since the version named in If-Match' },
  payload_too_large: { status: 413, title: 'The body is too large' },
  uri_too_long: { status: 414, title: 'A part of the URL is too long' },
  unsupported_media_type: { status: 415, title: 'The body must be application/json' },
  upgrade_required: { status: 426, title: 'This route speaks WebSocket' },
  rate_limited: { status: 429, title: 'Too many requests' },
  too_many_connections: { status: 429, title: 'Too many WebSocket connections for this key' },
  headers_too_large: { status: 431, title: 'The request head is too large' },
  service_unavailable: { status: 503, title: 'A service this request needs is unavailable' },
  database_read_only: { status: 503, title: 'The database takes no writes right now' },
  storage_full: { status: 503, title: "The database's storage is full" },
  database_overloaded: { status: 503, title: 'The database is out of connections or memory' },
  transaction_conflict: { status: 503, title: 'The transaction conflicted with another' },
  notifier_not_ready: { status: 503, title: 'The notifier is not subscribed to the event stream yet' },
  connection_limit_reached: { status: 503, title: 'This instance takes no more WebSocket connections' },
  internal_error: { status: 500, title: 'Internal error' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** Seconds a client should wait before retrying, sent as `Retry-After` with every 503 (RFC 9110). */
export const RETRY_AFTER_SECONDS: Partial<Record<ErrorCode, number>> = {
  service_unavailable: 2,
  database_read_only: 5,
  storage_full: 30,
  database_overloaded: 2,
  transaction_conflict: 1,
  notifier_not_ready: 1,
  connection_limit_reached: 5,
};

export interface FieldError {
  field: string;
  message: string;
}

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly errors?: FieldError[],
  ) {
    super(detail);
  }

  get status(): number {
    return ERRORS[this.code].status;
  }
}

/** A dependency a request needs did not answer in time; the HTTP layer answers 503 service_unavailable. */
export class DependencyUnavailableError extends Error {
  override name = 'DependencyUnavailableError';
  constructor(
    readonly dependency: string,
    options?: { cause?: unknown },
  ) {
    super(`${dependency} is unavailable`, options);
  }
}

/** Start-up refused by a setting, an argument or the data directory; the process prints its message as one line. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String(),
    instance: Type.Optional(Type.String()),
    errors: Type.Optional(Type.Array(Type.Object({ field: Type.String(), message: Type.String() }))),
  },
  { $id: 'Problem', description: 'RFC 9457 problem details' },
);
export type Problem = Static<typeof Problem>;

export function toProblem(error: ApiError, instance?: string): Problem {
  const { status, title } = ERRORS[error.code];
  return {
    type: `urn:order-service:problem:${error.code}`,
    title,
    status,
    detail: error.detail,
    code: error.code,
    ...(instance ? { instance } : {}),
    ...(error.errors ? { errors: error.errors } : {}),
  };
}

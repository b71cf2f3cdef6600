/**
 * What a database failure means for a caller, read from the innermost code anything wrapped it with:
 * Drizzle puts pg's error in `cause`, Node's connect puts one error per address in `errors[]`.
 *
 * - `unreachable`: the server is away, refusing, shutting down, or too slow for the timeouts;
 * - `read_only`: it takes no writes (a standby, or a primary demoted by a failover): 25006;
 * - `disk_full`: it cannot extend a file (53100);
 * - `overloaded`: out of memory, connections or another configured limit (53200, 53300, 53400);
 * - `conflict`: a serialization failure or deadlock (40001, 40P01), which a retry resolves.
 */
export type DatabaseFault = 'unreachable' | 'read_only' | 'disk_full' | 'overloaded' | 'conflict';

const BY_SQLSTATE: Record<string, DatabaseFault> = {
  '25006': 'read_only',
  '53100': 'disk_full',
  '53200': 'overloaded',
  '53300': 'overloaded',
  '53400': 'overloaded',
  '40001': 'conflict',
  '40P01': 'conflict',
  // Shutting down, cannot connect now; statement, lock and idle-in-transaction timeouts.
  '57P01': 'unreachable',
  '57P02': 'unreachable',
  '57P03': 'unreachable',
  '57014': 'unreachable',
  '55P03': 'unreachable',
  '25P03': 'unreachable',
};

// Node's socket errors: they carry a code but no severity.
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
// pg's own words for a connection it could not open or get from the pool, lost, or a statement it gave up waiting for.
const UNAVAILABLE_MESSAGES = /timeout exceeded when trying to connect|Connection terminated|Query read timeout|not queryable/i;

const MAX_DEPTH = 8;

type Inspectable = { code?: unknown; severity?: unknown; message?: unknown; cause?: unknown; errors?: unknown };

/** The fault behind `error`, or undefined when it is not one of a database that a retry may cure. */
export function databaseFaultOf(error: unknown): DatabaseFault | undefined {
  return innermostFirst(error)
    .map(faultOfOne)
    .find((fault) => fault !== undefined) as DatabaseFault | undefined;
}

/** The SQLSTATE of the innermost server error in `error`'s chain, for logs that must not carry a statement's parameters. */
export function sqlStateOf(error: unknown): string | undefined {
  return innermostFirst(error).find(isServerError)?.code as string | undefined;
}

function faultOfOne(error: Inspectable): DatabaseFault | undefined {
  const code = typeof error.code === 'string' ? error.code : '';
  // A server error has a severity; a code of five characters without one is someone else's.
  if (isServerError(error)) return BY_SQLSTATE[code] ?? (code.startsWith('08') ? 'unreachable' : undefined);
  if (SOCKET_CODES.has(code)) return 'unreachable';
  return typeof error.message === 'string' && UNAVAILABLE_MESSAGES.test(error.message) ? 'unreachable' : undefined;
}

function isServerError(error: Inspectable): error is Inspectable & { code: string } {
  return typeof error.code === 'string' && 'severity' in error;
}

/** The error and everything it wraps, deepest first, each once: the innermost code is the most specific. */
function innermostFirst(error: unknown): Inspectable[] {
  const seen = new Set<unknown>();
  const order: Inspectable[] = [];
  const visit = (e: unknown, depth: number): void => {
    if (typeof e !== 'object' || e === null || seen.has(e) || depth > MAX_DEPTH) return;
    seen.add(e);
    const inspectable = e as Inspectable;
    if (Array.isArray(inspectable.errors)) for (const inner of inspectable.errors) visit(inner, depth + 1);
    visit(inspectable.cause, depth + 1);
    order.push(inspectable);
  };
  visit(error, 0);
  return order;
}

/** What a log line may say of an error: its kind, code and message, never a statement or its parameters. */
export interface LoggedError {
  readonly type: string;
  readonly message: string;
  readonly code?: string;
  readonly stack?: string;
  readonly cause?: LoggedError;
}

/**
 * An error as it may be logged. Drizzle's error repeats the whole statement and its parameters (a client's name
 * and address among them) in its message and stack; pg's carries the row's values in `detail`. Neither is kept.
 */
export function loggableError(error: unknown, depth = 0): LoggedError {
  if (!(error instanceof Error)) return { type: typeof error, message: String(error).slice(0, 200) };
  const wrapsStatement = 'params' in error && 'query' in error;
  const code = typeof (error as Inspectable).code === 'string' ? ((error as Inspectable).code as string) : undefined;
  const fromServer = isServerError(error as Inspectable);
  const cause = error.cause !== undefined && depth < MAX_DEPTH ? loggableError(error.cause, depth + 1) : undefined;
  return {
    type: error.name,
    message: wrapsStatement ? 'a statement failed (its text and parameters are not logged)' : error.message,
    ...(code ? { code } : {}),
    // A server error's stack is pg's parser, which says nothing; a wrapper's repeats its message.
    ...(wrapsStatement || fromServer || !error.stack ? {} : { stack: error.stack }),
    ...(cause ? { cause } : {}),
  };
}

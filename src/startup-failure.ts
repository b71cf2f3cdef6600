import { ConfigError } from './errors.js';

export interface StartupContext {
  host: string;
  port: number;
  /** The PostgreSQL URL in use, or undefined for the embedded database. */
  databaseUrl: string | undefined;
  /** The setting(s) the operator wrote the database in: DATABASE_URL, or its DATABASE_* parts. */
  databaseSetting: string;
}

type Failure = Error & { code?: string; syscall?: string; severity?: string; hostname?: string };

// Socket errors that mean the database server could not be reached at all.
const UNREACHABLE: Record<string, string> = {
  ECONNREFUSED: 'connection refused (is PostgreSQL running on that host and port?)',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'the host name could not be resolved right now',
  EHOSTUNREACH: 'the host is unreachable',
  ENETUNREACH: 'the network is unreachable',
  ETIMEDOUT: 'the connection timed out',
  ECONNRESET: 'the connection was reset',
};

/**
 * One line that says what went wrong at start-up and which setting to change, instead of a stack: the port,
 * the address, the database. Anything not recognised is one line too; LOG_LEVEL=debug adds its stack.
 */
export function describeStartupFailure(error: unknown, context: StartupContext | undefined): string {
  if (error instanceof ConfigError) return `order service: ${error.message}`;
  const failure: Failure = error instanceof Error ? error : new Error(String(error));
  if (context && failure.syscall === 'listen') return `order service: ${listenFailure(failure, context)}`;
  if (context?.databaseUrl && isDatabaseFailure(failure)) return `order service: ${databaseFailure(failure, context)}`;
  return `order service failed to start: ${failure.name}: ${failure.message}`.replace(/\s*\n\s*/g, ' ');
}

function listenFailure(failure: Failure, { host, port }: StartupContext): string {
  const where = `${host}:${port}`;
  switch (failure.code) {
    case 'EADDRINUSE':
      return `cannot listen on ${where}: the port is in use by another process; set PORT to a free port (or HOST to another address)`;
    case 'EACCES':
      return `cannot listen on ${where}: permission denied (ports below 1024 need privileges); set PORT to 1024 or above`;
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
      return (
        `cannot listen on ${where}: ${host} is not an address of this machine; ` +
        'set HOST to one of its addresses (127.0.0.1 for this machine only)'
      );
    default:
      return `cannot listen on ${where} (${failure.code ?? failure.message}); check HOST and PORT`;
  }
}

function isDatabaseFailure(failure: Failure): boolean {
  return (
    (failure.code !== undefined && failure.code in UNREACHABLE) ||
    failure.severity !== undefined ||
    /timeout exceeded when trying to connect|Connection terminated/i.test(failure.message)
  );
}

function databaseFailure(failure: Failure, { databaseUrl, databaseSetting }: StartupContext): string {
  const url = new URL(databaseUrl!);
  const user = url.username ? `${decodeURIComponent(url.username)}${url.password ? ':***' : ''}@` : '';
  const shown = `${url.protocol}//${user}${url.host}${url.pathname}`;
  const name = decodeURIComponent(url.pathname.slice(1));
  switch (failure.code) {
    case '3D000':
      return `database "${name}" does not exist on ${url.host}; create it (createdb ${name}) or set ${databaseSetting} to one that exists`;
    case '28P01':
    case '28000':
      return `PostgreSQL at ${url.host} refused the login: ${failure.message}; check the user and password in ${databaseSetting}`;
  }
  const reason =
    failure.code !== undefined && failure.code in UNREACHABLE
      ? `${UNREACHABLE[failure.code]}`
      : /timeout|terminated/i.test(failure.message)
        ? 'no answer within DATABASE_CONNECT_TIMEOUT_MS'
        : failure.message;
  return `cannot use PostgreSQL at ${shown}: ${reason}; check ${databaseSetting}`;
}

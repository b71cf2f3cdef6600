import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { POSTGRES_TIMEOUTS } from './db/client.js';
import { ConfigError } from './errors.js';

export const ROLES = ['all', 'api', 'notifier', 'changelog'] as const;
export type Role = (typeof ROLES)[number];

const Int = (min: number, max: number, def: number, description: string) =>
  Type.Integer({ minimum: min, maximum: max, default: def, description });

/** What each setting is for, in the schema below; docs/configuration.md says the same at more length. */
// Stryker disable StringLiteral: documentation that no code reads
const ABOUT = {
  ROLE: 'which parts this process runs',
  HOST: 'address to listen on',
  PORT: 'port to listen on',
  API_KEYS: 'comma-separated bearer keys with full access; unset (and no API_READ_KEYS) = open, loopback only',
  API_READ_KEYS: 'comma-separated bearer keys that may only read orders, products, history and notifications',
  RATE_LIMIT_MAX: 'requests per key (or per address when open) per window; 0 = no limit',
  RATE_LIMIT_WINDOW_MS: 'the rate limit window',
  CORS_ORIGINS: 'comma-separated origins allowed to call from a browser; unset = CORS off',
  WS_MAX_CONNECTIONS: 'WebSocket connections per process; 0 = no cap',
  WS_MAX_CONNECTIONS_PER_KEY: 'WebSocket connections per key (or per address when open); 0 = no cap',
  DATABASE_URL: 'PostgreSQL; unset = embedded PGlite in DATA_DIR',
  DATABASE_POOL_SIZE: 'PostgreSQL connections per process',
  DATABASE_CONNECT_TIMEOUT_MS: 'longest wait to open a PostgreSQL connection or get a pooled one',
  DATABASE_QUERY_TIMEOUT_MS: "longest wait for a statement's answer; the connection is then dropped",
  DATABASE_STATEMENT_TIMEOUT_MS: "PostgreSQL statement_timeout; 0 = the server's setting",
  DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS: "PostgreSQL idle_in_transaction_session_timeout; 0 = the server's setting",
  DATA_DIR: 'where the embedded database keeps its files',
  RABBITMQ_URL: 'RabbitMQ; unset = in-process broker',
  RABBITMQ_EXCHANGE: 'topic exchange order events are published to',
  RABBITMQ_CHANGELOG_QUEUE: 'durable queue the change-log writers share',
  RABBITMQ_CHANGELOG_QUEUE_TYPE: "the change-log queue's type: quorum replicates it across a RabbitMQ cluster; fixed once the queue exists",
  MONGODB_URL: 'MongoDB; unset = change log kept in the database',
  OUTBOX_SWEEP_MS: 'how often the relay looks for events it was not woken for',
  OUTBOX_RETENTION_HOURS: 'how long shipped events stay for WebSocket resume',
  IDEMPOTENCY_TTL_HOURS: 'how long an Idempotency-Key is remembered',
  WS_PING_INTERVAL_MS: 'keep-alive ping period',
  WS_MAX_BUFFERED_BYTES: 'send buffer past which a slow client is disconnected',
  SHUTDOWN_TIMEOUT_MS: 'longest wait for in-flight work on SIGTERM',
} as const;
// Stryker restore StringLiteral

/** Every setting the service reads, with its default. docs/configuration.md mirrors this, and a test holds it to it. */
const Env = Type.Object({
  ROLE: Type.Union(
    ROLES.map((r) => Type.Literal(r)),
    { default: 'all', description: ABOUT.ROLE },
  ),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1', description: ABOUT.HOST }),
  PORT: Int(0, 65535, 8001, ABOUT.PORT),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
  API_KEYS: Type.Optional(Type.String({ description: ABOUT.API_KEYS })),
  API_READ_KEYS: Type.Optional(Type.String({ description: ABOUT.API_READ_KEYS })),
  RATE_LIMIT_MAX: Int(0, 1_000_000_000, 60_000, ABOUT.RATE_LIMIT_MAX),
  RATE_LIMIT_WINDOW_MS: Int(100, 86_400_000, 60_000, ABOUT.RATE_LIMIT_WINDOW_MS),
  CORS_ORIGINS: Type.Optional(Type.String({ description: ABOUT.CORS_ORIGINS })),
  WS_MAX_CONNECTIONS: Int(0, 10_000_000, 10_000, ABOUT.WS_MAX_CONNECTIONS),
  WS_MAX_CONNECTIONS_PER_KEY: Int(0, 10_000_000, 1_000, ABOUT.WS_MAX_CONNECTIONS_PER_KEY),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://', description: ABOUT.DATABASE_URL })),
  DATABASE_USER: Type.Optional(Type.String({ minLength: 1 })),
  DATABASE_PASSWORD: Type.Optional(Type.String()),
  DATABASE_HOST: Type.Optional(Type.String({ minLength: 1 })),
  DATABASE_NAME: Type.Optional(Type.String({ minLength: 1 })),
  DATABASE_PORT: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  DATABASE_POOL_SIZE: Int(1, 1000, 20, ABOUT.DATABASE_POOL_SIZE),
  DATABASE_CONNECT_TIMEOUT_MS: Int(100, 600_000, POSTGRES_TIMEOUTS.connectMs, ABOUT.DATABASE_CONNECT_TIMEOUT_MS),
  DATABASE_QUERY_TIMEOUT_MS: Int(100, 86_400_000, POSTGRES_TIMEOUTS.queryMs, ABOUT.DATABASE_QUERY_TIMEOUT_MS),
  DATABASE_STATEMENT_TIMEOUT_MS: Int(0, 86_400_000, POSTGRES_TIMEOUTS.statementMs, ABOUT.DATABASE_STATEMENT_TIMEOUT_MS),
  DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS: Int(
    0,
    86_400_000,
    POSTGRES_TIMEOUTS.idleInTransactionMs,
    ABOUT.DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS,
  ),
  DATA_DIR: Type.String({ minLength: 1, default: './data', description: ABOUT.DATA_DIR }),
  RABBITMQ_URL: Type.Optional(Type.String({ pattern: '^amqps?://', description: ABOUT.RABBITMQ_URL })),
  RABBITMQ_EXCHANGE: Type.String({ minLength: 1, maxLength: 255, default: 'orders', description: ABOUT.RABBITMQ_EXCHANGE }),
  RABBITMQ_CHANGELOG_QUEUE: Type.String({
    minLength: 1,
    maxLength: 255,
    default: 'orders.changelog',
    description: ABOUT.RABBITMQ_CHANGELOG_QUEUE,
  }),
  RABBITMQ_CHANGELOG_QUEUE_TYPE: Type.Union([Type.Literal('classic'), Type.Literal('quorum')], {
    default: 'classic',
    description: ABOUT.RABBITMQ_CHANGELOG_QUEUE_TYPE,
  }),
  MONGODB_URL: Type.Optional(Type.String({ pattern: '^mongodb(\\+srv)?://', description: ABOUT.MONGODB_URL })),
  MONGODB_DB: Type.String({ minLength: 1, default: 'order_service' }),
  OUTBOX_SWEEP_MS: Int(50, 3_600_000, 1000, ABOUT.OUTBOX_SWEEP_MS),
  OUTBOX_RETENTION_HOURS: Int(1, 24 * 365, 72, ABOUT.OUTBOX_RETENTION_HOURS),
  IDEMPOTENCY_TTL_HOURS: Int(1, 24 * 365, 24, ABOUT.IDEMPOTENCY_TTL_HOURS),
  WS_PING_INTERVAL_MS: Int(100, 3_600_000, 30_000, ABOUT.WS_PING_INTERVAL_MS),
  WS_MAX_BUFFERED_BYTES: Int(1024, 1 << 30, 1 << 20, ABOUT.WS_MAX_BUFFERED_BYTES),
  SHUTDOWN_TIMEOUT_MS: Int(100, 600_000, 10_000, ABOUT.SHUTDOWN_TIMEOUT_MS),
});

/** Every setting name the service reads: deployment files are checked against it. */
export const SETTINGS: readonly string[] = Object.keys(Env.properties);

export type Config = Omit<Static<typeof Env>, `DATABASE_${'USER' | 'PASSWORD' | 'HOST' | 'NAME' | 'PORT'}`> & {
  /** Keys with full access. */
  apiKeys: string[];
  /** Keys that may only read. */
  readKeys: string[];
  corsOrigins: string[];
};

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|\[::1\]|localhost)$/;

const HIDDEN = '(hidden)';

/** A URL's password is as secret as DATABASE_PASSWORD: everything from the colon after the user to the last `@` is hidden. */
function withoutPassword(value: unknown): unknown {
  return typeof value === 'string' ? value.replace(/([^:/]+:\/\/[^:/@]*):.*@/, `$1:${HIDDEN}@`) : value;
}

/** Parses settings from an environment (process.env plus .env, loaded by the caller) once, at start-up. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(Env.properties)) {
    const value = env[key];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  const converted = Value.Convert(Env, Value.Default(Env, raw));
  const firstError = Value.Errors(Env, converted).First();
  if (firstError) {
    // The schema is flat: an error's path is a slash and the setting's name.
    const key = firstError.path.slice(1);
    // Stryker disable next-line ConditionalExpression,LogicalOperator: no secret's schema can fail yet; kept for one that will
    const shown = key.includes('PASSWORD') || key.includes('KEYS') ? HIDDEN : JSON.stringify(withoutPassword(raw[key]));
    throw new ConfigError(`invalid setting ${key}=${shown}: ${firstError.message}`);
  }
  const parsed = converted as Static<typeof Env>;
  const { DATABASE_USER: _u, DATABASE_PASSWORD: _p, DATABASE_HOST: _h, DATABASE_NAME: _n, DATABASE_PORT: _o, ...rest } = parsed;
  const config: Config = {
    ...rest,
    DATABASE_URL: rest.DATABASE_URL ?? databaseUrlFromParts(parsed),
    apiKeys: parseKeys('API_KEYS', rest.API_KEYS),
    readKeys: parseKeys('API_READ_KEYS', rest.API_READ_KEYS),
    corsOrigins: parseOrigins(rest.CORS_ORIGINS),
  };
  const both = config.readKeys.findIndex((k) => config.apiKeys.includes(k));
  if (both !== -1) {
    throw new ConfigError(
      `invalid setting API_READ_KEYS: key ${both + 1} is also in API_KEYS; a key has one scope, so list it in only one of both`,
    );
  }
  if (config.apiKeys.length + config.readKeys.length === 0 && !LOOPBACK.test(config.HOST)) {
    throw new ConfigError(
      `refusing to listen on HOST=${config.HOST} without API_KEYS: set API_KEYS to require bearer keys, or listen on 127.0.0.1`,
    );
  }
  if (config.DATABASE_STATEMENT_TIMEOUT_MS >= config.DATABASE_QUERY_TIMEOUT_MS) {
    throw new ConfigError(
      `invalid setting DATABASE_STATEMENT_TIMEOUT_MS=${config.DATABASE_STATEMENT_TIMEOUT_MS}: ` +
        `keep it below DATABASE_QUERY_TIMEOUT_MS=${config.DATABASE_QUERY_TIMEOUT_MS}, ` +
        'so that the server cancels a slow statement before the client drops its connection',
    );
  }
  if (config.ROLE !== 'all' && (!config.DATABASE_URL || !config.RABBITMQ_URL)) {
    throw new ConfigError(
      `ROLE=${config.ROLE} runs beside other processes, so it needs a shared DATABASE_URL and RABBITMQ_URL; ` +
        'the embedded database and broker live inside one process (ROLE=all)',
    );
  }
  return config;
}

/** A bearer key is an RFC 6750 token: anything else could never be sent, so it is a typo. Keys are never echoed. */
function parseKeys(setting: string, value: string | undefined): string[] {
  const keys = (value ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean);
  const bad = keys.findIndex((k) => !/^[A-Za-z0-9._~+/-]+=*$/.test(k));
  if (bad !== -1) {
    throw new ConfigError(
      `invalid setting ${setting}: key ${bad + 1} of ${keys.length} has characters a bearer key cannot carry ` +
        '(use letters, digits and -._~+/)',
    );
  }
  return keys;
}

function parseOrigins(value: string | undefined): string[] {
  const origins = (value ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  for (const origin of origins) {
    const parsed = URL.canParse(origin) ? new URL(origin) : undefined;
    // Stryker disable next-line Regex: a scheme only ending in http(s) has the origin "null", refused beside it
    if (!parsed || !/^https?:$/.test(parsed.protocol) || parsed.origin !== origin) {
      throw new ConfigError(
        `invalid setting CORS_ORIGINS: ${JSON.stringify(origin)} is not an origin ` +
          'such as https://dashboard.example (scheme, host and port only)',
      );
    }
  }
  return origins;
}

/** The original service's DATABASE_USER/PASSWORD/HOST/NAME/PORT, used when DATABASE_URL is unset. */
function databaseUrlFromParts(env: Static<typeof Env>): string | undefined {
  if (!env.DATABASE_HOST && !env.DATABASE_NAME && !env.DATABASE_USER) return undefined;
  const missing = (['DATABASE_HOST', 'DATABASE_NAME', 'DATABASE_USER'] as const).filter((k) => !env[k]);
  if (missing.length > 0) throw new ConfigError(`invalid setting ${missing[0]}: required when any DATABASE_* part is set`);
  const auth = encodeURIComponent(env.DATABASE_USER!) + (env.DATABASE_PASSWORD ? `:${encodeURIComponent(env.DATABASE_PASSWORD)}` : '');
  return `postgres://${auth}@${env.DATABASE_HOST}:${env.DATABASE_PORT ?? 5432}/${encodeURIComponent(env.DATABASE_NAME!)}`;
}

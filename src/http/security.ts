import fastifyCors, { type FastifyCorsOptions } from '@fastify/cors';
import fastifyRateLimit, { type RateLimitPluginOptions } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import helmet, { type HelmetOptions } from 'helmet';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LoggerOptions } from 'pino';
import type { Config } from '../config.js';
import { ApiError } from '../errors.js';
import { auth, callerOf, defaultAccess, type ApiKeys } from './auth.js';

export interface SecurityOptions {
  keys: ApiKeys;
  /** Requests per caller per window; max 0 turns limiting off. */
  rateLimit: { max: number; windowMs: number };
  /** Browser origins allowed to call the API; empty = CORS off. */
  corsOrigins: readonly string[];
  /** WebSocket connections per process and per caller; 0 = no cap. */
  websocket: { total: number; perCaller: number };
}

export function securityOptions(config: Config): SecurityOptions {
  return {
    keys: { full: config.apiKeys, read: config.readKeys },
    rateLimit: { max: config.RATE_LIMIT_MAX, windowMs: config.RATE_LIMIT_WINDOW_MS },
    corsOrigins: config.corsOrigins,
    websocket: { total: config.WS_MAX_CONNECTIONS, perCaller: config.WS_MAX_CONNECTIONS_PER_KEY },
  };
}

/** The policy for everything but /docs, which sets its own: JSON answers need no sources at all. */
const API_CSP = {
  useDefaults: false,
  directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] },
};

/**
 * Swagger UI's files are all served from /docs with no inline script or style. No upgrade-insecure-requests:
 * the service is often reached over plain HTTP on a private address, where that would break the page.
 */
export const DOCS_CSP =
  "default-src 'self'; base-uri 'self'; object-src 'none'; script-src 'self'; script-src-attr 'none'; style-src 'self'; " +
  "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'self'";

/**
 * The headers helmet sets for these options, worked out once. They do not depend on the request, and
 * @fastify/helmet builds helmet's middleware again on every request (its policy parsed each time): that was
 * a tenth of a GET's CPU. Helmet itself still decides every header and value.
 */
export function helmetHeaders(options: Readonly<HelmetOptions>): Record<string, string> {
  const headers: Record<string, string> = {};
  const recorder = {
    setHeader: (name: string, value: unknown) => void (headers[name.toLowerCase()] = String(value)),
    // X-Powered-By: Fastify never sets it.
    removeHeader: () => undefined,
  };
  helmet(options)({} as IncomingMessage, recorder as unknown as ServerResponse, (error?: unknown) => {
    if (error) throw error;
  });
  return headers;
}

/**
 * CORS, headers, keys and rate limits, before any route. CORS is optional, so its place is held here: it answers
 * preflights before a key is asked for. The rate limit counts per key: it depends on auth.
 */
export async function installSecurity(app: FastifyInstance, options: SecurityOptions): Promise<void> {
  if (options.corsOrigins.length > 0) await app.register(fastifyCors, { delegator: corsFor(options.corsOrigins) });
  const headers = helmetHeaders({ contentSecurityPolicy: API_CSP });
  // Callback-style hooks, as they do no I/O: an async hook costs each request a promise and a microtask turn.
  app.addHook('onRequest', (_request, reply, done) => {
    reply.headers(headers);
    done();
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    // Orders carry names and emails: no cache keeps them. Static files set their own policy.
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    done(null, payload);
  });
  declareRefusals(app, options);
  await app.register(auth, options.keys);
  const { max, windowMs } = options.rateLimit;
  if (max > 0) {
    await app.register(rateLimit, {
      global: true,
      max,
      timeWindow: windowMs,
      hook: 'onRequest',
      enableDraftSpec: true,
      keyGenerator: callerOf,
      errorResponseBuilder: (_request, context) =>
        new ApiError('rate_limited', `At most ${max} requests per ${windowMs / 1000} s for each key; retry in ${context.after}.`),
    });
  }
}

// Refusals carry the request id, and 503 while closing comes before 401; CORS's OPTIONS route is recorded and answers problem+json.
export const security = fp(installSecurity, {
  name: 'security',
  dependencies: ['request-ids', 'closing-refusal', 'route-access', 'error-handling'],
});

/** @fastify/rate-limit counts callers by what auth decided (callerOf). */
export const rateLimit = fp<RateLimitPluginOptions>(
  async (app, options) => {
    await app.register(fastifyRateLimit, options);
  },
  { name: 'rate-limit', dependencies: ['auth'] },
);

/** Every status a route can answer is in the OpenAPI document: the refusals of keys and limits too. */
function declareRefusals(app: FastifyInstance, options: SecurityOptions): void {
  const keysOn = options.keys.full.length + options.keys.read.length > 0;
  const problem = { $ref: 'Problem' };
  app.addHook('onRoute', (route) => {
    if (!route.schema || route.schema.hide) return;
    // Stryker disable next-line StringLiteral: access is only compared with 'public' and 'write': any other word is read access
    const access = route.config?.access ?? ([route.method].flat().every((m) => defaultAccess(m) === 'read') ? 'read' : 'write');
    const refusals = {
      ...(keysOn && access !== 'public' ? { 401: problem } : {}),
      ...(keysOn && access === 'write' ? { 403: problem } : {}),
      ...(options.rateLimit.max > 0 && route.config?.rateLimit !== false ? { 429: problem } : {}),
    };
    route.schema = { ...route.schema, response: { ...refusals, ...(route.schema.response as object | undefined) } };
  });
}

/**
 * CORS for the named origins only. A preflight (OPTIONS with an allowed Origin and Access-Control-Request-Method)
 * is answered without a key, as browsers send none; any other OPTIONS is an ordinary request and needs one.
 */
function corsFor(origins: readonly string[]) {
  const allowed: FastifyCorsOptions = {
    origin: [...origins],
    methods: ['GET', 'HEAD', 'POST', 'PATCH'],
    allowedHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key', 'If-Match', 'X-Request-Id'],
    exposedHeaders: [
      'Location',
      'ETag',
      'Retry-After',
      'Idempotent-Replayed',
      'X-Request-Id',
      'RateLimit-Limit',
      'RateLimit-Remaining',
      'RateLimit-Reset',
    ],
    maxAge: 600,
  };
  return (request: FastifyRequest, callback: (error: Error | null, options: FastifyCorsOptions) => void) => {
    const origin = request.headers.origin;
    const preflightOrPlain = request.method !== 'OPTIONS' || request.headers['access-control-request-method'] !== undefined;
    callback(null, origin !== undefined && origins.includes(origin) && preflightOrPlain ? allowed : { origin: false });
  };
}

/** While the app closes, every request, an upgrade included, gets 503 problem+json and its connection closed. */
export function refuseWhileClosing(app: FastifyInstance): void {
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', (_request, reply, done) => {
    if (!closing) return done();
    reply.header('connection', 'close');
    done(new ApiError('service_unavailable', 'This instance is shutting down; retry and another one will answer.'));
  });
}

// The 503 carries the request id; an upgrade refused so is closed by refused-upgrades.
export const closingRefusal = fp(refuseWhileClosing, { name: 'closing-refusal', dependencies: ['request-ids', 'refused-upgrades'] });

const EMAIL = /([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})\b/g;
const MASKED_LEVELS: readonly string[] = ['fatal', 'error', 'warn', 'info'];

/**
 * pino settings for the process: keys never reach a log line, whatever carries them (headers, a query string, an
 * error message); at info level and above, emails are masked wherever they appear.
 */
export function loggerOptions({ level, secrets }: { level: string; secrets: readonly string[] }): LoggerOptions {
  const maskEmails = MASKED_LEVELS.includes(level);
  // A key as short as a word would blank that word in every line; short keys are still caught where they travel.
  const longSecrets = secrets.filter((s) => s.length >= 8);
  const scrub = (line: string): string => {
    let out = line
      .replace(/(access_token=)[^&\s"]+/gi, '$1[redacted]')
      .replace(/\b(bearer|basic)([ \t]+)[A-Za-z0-9._~+/-]+=*/gi, '$1$2[redacted]');
    for (const secret of longSecrets) out = out.split(secret).join('[redacted]');
    return maskEmails ? out.replace(EMAIL, '$1***@$2') : out;
  };
  return {
    level,
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.Authorization'],
      censor: '[redacted]',
    },
    hooks: { streamWrite: scrub },
  };
}

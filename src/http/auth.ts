import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import { ApiError } from '../errors.js';

export type Scope = 'read' | 'write';
/** Who may call a route: anyone, a key that may read, or a key that may write. */
export type Access = 'public' | Scope;

export interface RouteAccess {
  method: string;
  url: string;
  access: Access;
}

export interface ApiKeys {
  /** Keys that may do anything. */
  full: readonly string[];
  /** Keys that may only read: orders, products, history and notifications. */
  read: readonly string[];
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route; unset means 'read' for GET, HEAD and OPTIONS and 'write' for anything else. */
    access?: Access;
    /** The route also takes the key as `?access_token=`, for WebSocket clients that cannot send headers. */
    queryToken?: boolean;
  }
  interface FastifyRequest {
    /** Who is calling: a short digest of the key, 'open' when the service runs without keys, 'anonymous' without one. */
    principal: string;
    /** What the caller may do: 'none' without a valid key, which only public routes accept. */
    scope: Scope | 'none';
  }
  interface FastifyInstance {
    /** Every route and who may call it, as registered. */
    readonly routeAccess: readonly RouteAccess[];
  }
}

const ACCESS: readonly string[] = ['public', 'read', 'write'];
const SAFE_METHODS: readonly string[] = ['GET', 'HEAD', 'OPTIONS'];

export const defaultAccess = (method: string): Access => (SAFE_METHODS.includes(method) ? 'read' : 'write');

/**
 * Keeps every route's access as the route declares it, so that every route, present or future, needs a key unless it
 * says it is public. onRoute sees only later routes: the plugins that add routes depend on this one or come after it.
 */
export function recordRouteAccess(app: FastifyInstance): void {
  const routes: RouteOptions[] = [];
  // Config is read when asked, not when registered: plugins' own onRoute hooks (docs) may set it after this one.
  const table = () =>
    routes.flatMap((route) =>
      [route.method].flat().map((method) => ({ method, url: route.url, access: route.config?.access ?? defaultAccess(method) })),
    );
  app.decorate('routeAccess', { getter: table });
  app.addHook('onRoute', (route) => void routes.push(route));
  app.addHook('onReady', async () => {
    const wrong = table().find((r) => !ACCESS.includes(r.access));
    if (wrong) throw new Error(`route ${wrong.method} ${wrong.url} declares access "${wrong.access}"; use one of ${ACCESS.join(', ')}`);
  });
}

export const routeAccess = fp(recordRouteAccess, { name: 'route-access' });

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * With keys configured, decides each request on the route it matched (never on the URL's text): public routes take
 * anyone, others a key whose scope covers the route. Keys are compared as digests, in constant time.
 */
export function installAuth(app: FastifyInstance, keys: ApiKeys): void {
  const known = [
    ...keys.full.map((k) => ({ digest: digest(k), scope: 'write' as const })),
    ...keys.read.map((k) => ({ digest: digest(k), scope: 'read' as const })),
  ];
  app.decorateRequest('principal', 'open');
  // Stryker disable next-line StringLiteral: with no keys, the scope is only compared with 'none'
  app.decorateRequest('scope', 'write');
  if (known.length === 0) return;

  app.addHook('onRequest', (request, reply, done) => {
    const config = request.routeOptions.config;
    // An unknown route needs a key like any other, so that a 404 tells a caller without one nothing.
    // Stryker disable next-line StringLiteral: access is only compared with 'public' and 'write': any other word is read access
    const access = request.is404 ? 'read' : (config.access ?? defaultAccess(request.method));
    const key = presentedKey(request, config.queryToken === true);
    const presented = key === undefined ? undefined : digest(key);
    let scope: Scope | undefined;
    for (const k of known) if (presented && timingSafeEqual(k.digest, presented)) scope = k.scope;
    // Stryker disable next-line StringLiteral: a caller without a valid key is refused before its principal is read
    request.principal = scope && presented ? presented.subarray(0, 8).toString('hex') : 'anonymous';
    request.scope = scope ?? 'none';
    if (access === 'public') return done();
    if (!scope) {
      reply.header('www-authenticate', 'Bearer');
      return done(new ApiError('unauthorized', 'Send Authorization: Bearer <key> with one of the API keys.'));
    }
    if (access === 'write' && scope !== 'write') {
      return done(new ApiError('forbidden', 'This key may only read; changing orders or the catalog needs a key from API_KEYS.'));
    }
    done();
  });
}

export const auth = fp(installAuth, { name: 'auth' });

/** Who counts against limits: the key, or the address when there is none (open service, public routes). */
export function callerOf(request: FastifyRequest): string {
  return request.scope === 'none' || request.principal === 'open' ? `address:${request.ip}` : `key:${request.principal}`;
}

function presentedKey(request: FastifyRequest, queryToken: boolean): string | undefined {
  const header = request.headers.authorization;
  // RFC 7235: the scheme name is case-insensitive. Any other scheme, or none, presents no key.
  if (header !== undefined) return /^bearer[ \t]+([^ \t]+)[ \t]*$/i.exec(header)?.[1];
  const token = queryToken ? (request.query as Record<string, unknown> | undefined)?.access_token : undefined;
  // An empty token matches no key: keys are never empty (config drops empty entries).
  return typeof token === 'string' ? token : undefined;
}

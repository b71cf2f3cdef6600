import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';

const PROTECTED = /^\/(orders|products|ws)(\/|\?|$)/;

const digest = (value: string) => createHash('sha256').update(value).digest();

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling: a short digest of the bearer key, or 'open' when the service runs without keys. */
    principal: string;
  }
}

/** With API_KEYS set, the API and the socket require one of them; comparison is constant-time. */
export function installAuth(app: FastifyInstance, apiKeys: readonly string[]): void {
  const known = apiKeys.map(digest);
  app.decorateRequest('principal', 'open');
  if (known.length === 0) return;
  app.addHook('onRequest', async (request, reply) => {
    if (!PROTECTED.test(request.url)) return;
    const key = presentedKey(request);
    const presented = key === undefined ? undefined : digest(key);
    if (!presented || !known.some((k) => timingSafeEqual(k, presented))) {
      reply.header('www-authenticate', 'Bearer');
      throw new ApiError('unauthorized', 'Send Authorization: Bearer <key> with one of the API keys.');
    }
    request.principal = presented.subarray(0, 8).toString('hex');
  });
}

function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header?.startsWith('Bearer ')) return header.slice(7).trim();
  if (request.url.startsWith('/ws')) {
    const token = new URL(request.url, 'http://x').searchParams.get('access_token');
    if (token) return token;
  }
  return undefined;
}

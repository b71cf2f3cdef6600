import { existsSync } from 'node:fs';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../errors.js';

export { CONSOLE_ROOT as DEFAULT_CONSOLE_ROOT } from '../paths.js';

/** The page's own scripts, styles and API calls (WebSocket included: 'self' covers ws: on the same host), nothing else. */
export const CONSOLE_CSP =
  "default-src 'self'; base-uri 'none'; object-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "connect-src 'self'; form-action 'none'; frame-ancestors 'none'";

/**
 * Serves the built console at `/`. Its files are public (the page asks for a key and sends it with its
 * API calls); each file is its own route, so URLs that are not files still need a key.
 */
export async function consoleRoutes(app: FastifyInstance, { root }: { root: string }): Promise<void> {
  app.addHook('onRoute', (route) => {
    route.config = { ...route.config, access: 'public' };
  });
  app.addHook('onRequest', async (_request, reply) => {
    reply.header('content-security-policy', CONSOLE_CSP);
  });
  if (!existsSync(path.join(root, 'index.html'))) {
    app.log.warn({ root }, 'the console is not built: GET / answers 503 until `npm run build` has run');
    app.get('/', { schema: { hide: true } }, async () => {
      throw new ApiError('service_unavailable', 'The console is not built: run `npm run build` (npm start does it).');
    });
    return;
  }
  app.addHook('onRequest', async (request, reply) => {
    // Vite names assets by their content: they never change; the page itself is checked each time.
    const immutable = request.url.startsWith('/assets/');
    reply.header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
  });
  await app.register(fastifyStatic, { root, wildcard: false, cacheControl: false, decorateReply: false, serveDotFiles: false });
}

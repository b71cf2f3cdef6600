import type { FastifyPluginAsync } from 'fastify';

/** A dependency's state: 'up', or what is wrong. `critical` ones make the process not ready. */
export interface ReadinessCheck {
  critical: boolean;
  check: () => Promise<string> | string;
}

export const healthRoutes: FastifyPluginAsync<{ checks: Record<string, ReadinessCheck> }> = async (app, { checks }) => {
  app.get('/healthz', { schema: { tags: ['health'], summary: 'The process is alive' } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { tags: ['health'], summary: 'The process can serve: its database answers' } }, async (_request, reply) => {
    const results = await Promise.all(
      Object.entries(checks).map(async ([name, c]) => {
        const state = await Promise.race([
          Promise.resolve().then(c.check).catch((e: unknown) => `down: ${e instanceof Error ? e.message : String(e)}`),
          new Promise<string>((resolve) => setTimeout(resolve, 2000, 'down: no answer within 2 s').unref()),
        ]);
        return [name, state, c.critical] as const;
      }),
    );
    const ready = results.every(([, state, critical]) => !critical || state === 'up');
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks: Object.fromEntries(results.map(([n, s]) => [n, s])) });
  });
};

import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';

/** A dependency's state: 'up', or what is wrong. `critical` ones make the process not ready. */
export interface ReadinessCheck {
  critical: boolean;
  check: () => Promise<string> | string;
  /** States besides 'up' in which the process still serves (a blocked broker still delivers). */
  acceptable?: readonly string[];
}

// Probes come from load balancers and orchestrators: no key, no rate limit.
const probe = { access: 'public', rateLimit: false } as const;

const Readiness = Type.Object({
  // An enum, not a union: the serializer would check a union with a strict Ajv that refuses x- keywords.
  status: Type.Unsafe<'ready' | 'not ready'>({ type: 'string', enum: ['ready', 'not ready'] }),
  checks: Type.Record(Type.String(), Type.String(), { description: '"up", or "down" (with a key: why)' }),
});

/** What an unready answer's Retry-After asks for: readiness is worked out afresh on every request. */
const NOT_READY_RETRY_SECONDS = 5;

export const healthRoutes: FastifyPluginAsync<{ checks: Record<string, ReadinessCheck> }> = async (app, { checks }) => {
  app.get(
    '/healthz',
    {
      config: probe,
      schema: {
        tags: ['health'],
        summary: 'The process is alive',
        security: [],
        response: { 200: Type.Object({ status: Type.Literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      config: probe,
      schema: {
        tags: ['health'],
        summary: 'The process can serve: its database answers',
        description:
          'Each dependency is "up" or "down"; with a valid key (or when the service runs open), what it is instead: the database ' +
          '"read_only" or "disk_full", the broker "blocked" (publishes refused) or "connecting", the event log "rewound", ' +
          'notifications "not subscribed", or "down: <why>".',
        security: [],
        response: {
          200: Readiness,
          // Not ready, or (as problem+json) the instance is shutting down.
          503: {
            description: 'Not ready',
            content: { 'application/json': { schema: Readiness }, 'application/problem+json': { schema: { $ref: 'Problem' } } },
          },
        },
      },
    },
    async (request, reply) => {
      const results = await Promise.all(
        Object.entries(checks).map(async ([name, c]) => {
          const state = await Promise.race([
            Promise.resolve()
              .then(c.check)
              .catch((e: unknown) => `down: ${e instanceof Error ? e.message : String(e)}`),
            new Promise<string>((resolve) => setTimeout(resolve, 2000, 'down: no answer within 2 s').unref()),
          ]);
          return [name, state, !c.critical || state === 'up' || (c.acceptable ?? []).includes(state)] as const;
        }),
      );
      const ready = results.every(([, , serves]) => serves);
      // Error text names hosts and ports: only callers with a key see it.
      const shown = (state: string) => (request.scope !== 'none' ? state : state === 'up' ? 'up' : 'down');
      // Like every 503, it says when to ask again: probes have their own period, other callers need one.
      if (!ready) reply.header('retry-after', String(NOT_READY_RETRY_SECONDS));
      return reply
        .code(ready ? 200 : 503)
        .send({ status: ready ? 'ready' : 'not ready', checks: Object.fromEntries(results.map(([n, s]) => [n, shown(s)])) });
    },
  );
};

import type { FastifyReply } from 'fastify';

/**
 * Sends JSON the database already rendered, skipping a parse and a re-serialization. The route's
 * response schema still documents the shape; tests hold the two together.
 */
export function sendRawJson(
  reply: { code: unknown },
  status: number,
  json: string,
  contentType = 'application/json; charset=utf-8',
): FastifyReply {
  return (reply as FastifyReply).code(status).type(contentType).send(json);
}

/** An answer without a body (304): no payload, so no content type and nothing serialized. */
export function sendEmpty(reply: { code: unknown }, status: number): FastifyReply {
  return (reply as FastifyReply).code(status).send();
}

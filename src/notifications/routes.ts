import type { WebsocketPluginOptions } from '@fastify/websocket';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { IncomingMessage } from 'node:http';
import { WebSocket } from 'ws';
import { ApiError } from '../errors.js';
import { callerOf } from '../http/auth.js';
import { checkHandshake, createAdmission, type ConnectionLimits } from './admission.js';
import type { ReplayAfter } from './catch-up.js';
import type { NotificationHub } from './hub.js';

export const NotificationQuery = Type.Object({
  after: Type.Optional(Type.String({ format: 'uuid', description: 'resume: first replay the events recorded after this event id' })),
  order_id: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'only events of this order' })),
  client_email: Type.Optional(
    Type.String({ format: 'email', maxLength: 254, description: 'only orders of this client (case-insensitive)' }),
  ),
  access_token: Type.Optional(Type.String({ description: 'API key, for clients that cannot send an Authorization header' })),
});
export type NotificationQuery = Static<typeof NotificationQuery>;

export interface NotificationRoutesOptions {
  hub: NotificationHub;
  replayAfter: ReplayAfter;
  /** Resolves false when, within `ms`, the notifier's queue does not exist or its gap is not filled (at start, after a lost connection). */
  whenReady?: (ms: number) => Promise<boolean>;
  /** Caps on open sockets; none when absent. */
  limits?: ConnectionLimits;
}

/** How long an upgrade waits for the notifier's queue before it is refused with 503 notifier_not_ready. */
const READY_WAIT_MS = 2000;

/**
 * `GET /ws/notifications`. Everything is checked before the upgrade (key, rate limit, handshake, query, caps), so a
 * refusal is an HTTP problem answer and no socket is opened; a plain GET is told to upgrade (426).
 */
export async function notificationRoutes(
  app: FastifyInstance,
  { hub, replayAfter, limits, whenReady = async () => true }: NotificationRoutesOptions,
): Promise<void> {
  const admission = createAdmission(limits ?? { total: 0, perCaller: 0 });
  app.route<{ Querystring: NotificationQuery }>({
    method: 'GET',
    url: '/ws/notifications',
    config: { access: 'read', queryToken: true },
    schema: { hide: true, querystring: NotificationQuery },
    preValidation: async (request) => {
      if (request.ws) checkHandshake(request);
    },
    preHandler: async (request) => {
      if (!request.ws) return;
      // A client let in before the queue exists would read its replay, then miss what was shipped until it did.
      if (!(await whenReady(READY_WAIT_MS)))
        throw new ApiError(
          'notifier_not_ready',
          'The notifier is not subscribed to the event stream yet (starting, or its broker connection is back soon); retry shortly.',
        );
      admission.admit(request, callerOf(request));
    },
    handler: async (_request, reply) => {
      reply.header('upgrade', 'websocket').header('connection', 'Upgrade');
      throw new ApiError('upgrade_required', 'This URL is a WebSocket: connect with Connection: Upgrade and Upgrade: websocket.');
    },
    wsHandler: (socket, request) => {
      const { after, order_id: orderId, client_email: clientEmail } = request.query;
      hub.connect(socket, { filter: { orderId, clientEmail }, after, replayAfter });
    },
  });
}

/**
 * An upgrade request answered over HTTP instead (401, 403, 404, 422, 429, 503, ...) holds a socket that the HTTP
 * server no longer manages: whichever hook or handler answered, the connection closes once the answer is sent.
 * onSend runs for every answer Fastify sends, whichever onRequest hook threw first.
 */
export function closeRefusedUpgrades(app: FastifyInstance): void {
  app.addHook('onSend', (request, reply, payload, done) => {
    if (cameThroughUpgrade(request.raw)) {
      reply.header('connection', 'close');
      reply.raw.once('finish', () => request.raw.socket.destroySoon());
    }
    done(null, payload);
  });
}

export const refusedUpgrades = fp(closeRefusedUpgrades, { name: 'refused-upgrades' });

/** Node marks a request it handed to the server's 'upgrade' listeners instead of its own HTTP handling. */
const cameThroughUpgrade = (raw: IncomingMessage) => (raw as IncomingMessage & { upgrade?: boolean }).upgrade === true;

/**
 * Options for registering @fastify/websocket in a process that notifies: small client messages,
 * client errors left to ws, and a shutdown that closes clients through the hub (1001, with a grace period).
 */
export function notificationWebsocketOptions(hub: NotificationHub): WebsocketPluginOptions {
  return {
    options: { maxPayload: 4096 },
    errorHandler: notificationSocketErrorHandler,
    async preClose(this: FastifyInstance) {
      // Late upgrades get 503 from the app before reaching ws; a closed ws server would refuse them too.
      this.websocketServer.close();
      await hub.close();
    },
  };
}

/**
 * For @fastify/websocket's `errorHandler` option. Its default logs every client protocol error at error
 * level and terminates at once, so the client never sees ws's close code (1009, 1002, 1007).
 */
export function notificationSocketErrorHandler(this: FastifyInstance, error: Error, socket: WebSocket, request: FastifyRequest): void {
  request.log.debug({ err: error }, 'websocket client error');
  // Still open means the handler itself threw: nothing else will close the socket.
  // Stryker disable next-line ConditionalExpression: ws is already closing when it reports an error
  if (socket.readyState === WebSocket.OPEN) socket.close(1011, 'internal error');
}

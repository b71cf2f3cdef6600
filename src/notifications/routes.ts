import type { WebsocketPluginOptions } from '@fastify/websocket';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { WebSocket } from 'ws';
import type { ReplayAfter } from './catch-up.js';
import type { NotificationHub } from './hub.js';

export const NotificationQuery = Type.Object({
  after: Type.Optional(Type.String({ format: 'uuid', description: 'resume: first replay the events recorded after this event id' })),
  order_id: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'only events of this order' })),
  client_email: Type.Optional(Type.String({ format: 'email', maxLength: 254, description: 'only orders of this client (case-insensitive)' })),
  access_token: Type.Optional(Type.String({ description: 'API key, for clients that cannot send an Authorization header' })),
});
export type NotificationQuery = Static<typeof NotificationQuery>;

export interface NotificationRoutesOptions {
  hub: NotificationHub;
  replayAfter: ReplayAfter;
}

/**
 * `GET /ws/notifications`. The query is checked before the upgrade, so a bad value is answered by the
 * app's error handler (422 problem+json naming the field) and no socket is opened.
 */
export async function notificationRoutes(app: FastifyInstance, { hub, replayAfter }: NotificationRoutesOptions): Promise<void> {
  app.get<{ Querystring: NotificationQuery }>(
    '/ws/notifications',
    { websocket: true, schema: { querystring: NotificationQuery } },
    (socket, request) => {
      const { after, order_id: orderId, client_email: clientEmail } = request.query;
      hub.connect(socket, { filter: { orderId, clientEmail }, after, replayAfter });
    },
  );
}

/**
 * Options for registering @fastify/websocket in a process that notifies: small client messages,
 * client errors left to ws, and a shutdown that closes clients through the hub (1001, with a grace period).
 */
export function notificationWebsocketOptions(hub: NotificationHub): WebsocketPluginOptions {
  return {
    options: { maxPayload: 4096 },
    errorHandler: notificationSocketErrorHandler,
    async preClose(this: FastifyInstance) {
      // Closing ws's server makes it answer late upgrades with 503; the hub closes new sockets with 1001.
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
  if (socket.readyState === WebSocket.OPEN) socket.close(1011, 'internal error');
}

import fastifyWebsocket from '@fastify/websocket';
import Fastify from 'fastify';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { ReplayAfter } from '../../src/notifications/catch-up.js';
import { createNotificationHub } from '../../src/notifications/hub.js';
import { notificationRoutes, notificationWebsocketOptions } from '../../src/notifications/routes.js';
import { connect, makeEvent } from './harness.js';

let app: { close(): Promise<unknown> } | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

describe('a WebSocket handler that throws', () => {
  it('when taking over the socket fails, then the client is closed with 1011 and the error is logged at debug level', async () => {
    const lines: { level: number; msg: string; err?: { message: string } }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()) as (typeof lines)[number]);
        done();
      },
    });
    const server = Fastify({ loggerInstance: pino({ level: 'debug' }, sink) });
    app = server;
    const hub = createNotificationHub();
    await server.register(fastifyWebsocket, notificationWebsocketOptions(hub));
    // Wired without a replay source: a resume cannot be served, so the hub refuses the socket by throwing.
    await server.register(notificationRoutes, { hub, replayAfter: undefined as unknown as ReplayAfter });
    await server.listen({ host: '127.0.0.1', port: 0 });
    const { port } = server.server.address() as AddressInfo;

    const client = await connect(`ws://127.0.0.1:${port}/ws/notifications?after=${makeEvent().id}`);

    expect(await client.closed).toEqual({ code: 1011, reason: 'internal error' });
    const logged = lines.find((line) => line.msg === 'websocket client error');
    expect(logged?.level).toBe(20);
    expect(logged?.err?.message).toBe('connect: `after` needs `replayAfter`');
  });
});

import fastifyWebsocket from '@fastify/websocket';
import Fastify from 'fastify';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket, { type ClientOptions } from 'ws';
import type { OrderEvent } from '../../src/events/envelope.js';
import { installErrorHandling } from '../../src/http/problems.js';
import { installValidators } from '../../src/http/validation.js';
import type { Replay, ReplayAfter } from '../../src/notifications/catch-up.js';
import { createNotificationHub, type NotificationHub, type NotificationHubOptions } from '../../src/notifications/hub.js';
import { notificationRoutes, notificationWebsocketOptions } from '../../src/notifications/routes.js';

export interface Notifier {
  hub: NotificationHub;
  port: number;
  url(query?: Record<string, string | number>): string;
  /** Closes the app, which closes the hub's clients. */
  close(): Promise<void>;
}

/** The notification side as the app wires it: validators, problem answers, @fastify/websocket, the routes. */
export async function startNotifier(
  options: { hub?: NotificationHubOptions; replayAfter?: ReplayAfter; perMessageDeflate?: boolean; whenReady?: (ms: number) => Promise<boolean> } = {},
): Promise<Notifier> {
  const app = Fastify({ logger: false });
  installValidators(app);
  installErrorHandling(app);
  const hub = createNotificationHub(options.hub);
  const websocketOptions = notificationWebsocketOptions(hub);
  await app.register(fastifyWebsocket, {
    ...websocketOptions,
    options: { ...websocketOptions.options, perMessageDeflate: options.perMessageDeflate ?? false },
  });
  await app.register(notificationRoutes, {
    hub,
    replayAfter: options.replayAfter ?? (async () => ({ events: [] })),
    ...(options.whenReady && { whenReady: options.whenReady }),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return {
    hub,
    port,
    url: (query = {}) => {
      const search = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]));
      return `ws://127.0.0.1:${port}/ws/notifications${search.size ? `?${search}` : ''}`;
    },
    close: () => app.close(),
  };
}

export interface TestClient {
  ws: WebSocket;
  /** Every text frame, parsed, in arrival order. */
  events: OrderEvent[];
  texts: string[];
  binaryFrames: number;
  closed: Promise<{ code: number; reason: string }>;
  waitForEvents(count: number, timeoutMs?: number): Promise<OrderEvent[]>;
}

export async function connect(url: string, options?: ClientOptions): Promise<TestClient> {
  const ws = new WebSocket(url, options);
  const client: TestClient = {
    ws,
    events: [],
    texts: [],
    binaryFrames: 0,
    closed: new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }))),
    waitForEvents: async (count, timeoutMs = 5000) => {
      await waitFor(() => client.events.length >= count, timeoutMs, `${count} events (got ${client.events.length})`);
      return client.events;
    },
  };
  ws.on('message', (data: Buffer, isBinary) => {
    if (isBinary) {
      client.binaryFrames += 1;
      return;
    }
    client.texts.push(data.toString());
    client.events.push(JSON.parse(data.toString()) as OrderEvent);
  });
  ws.on('error', () => {});
  await once(ws, 'open');
  return client;
}

/** What the server answers to an upgrade it refuses. */
export function refusedUpgrade(url: string): Promise<{ status: number; contentType: string; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('open', () => reject(new Error('the upgrade was accepted')));
    ws.on('error', reject);
    ws.on('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, contentType: String(response.headers['content-type']), body }));
    });
  });
}

/** A client that completes the handshake by hand, then never reads again. */
export async function rawClient(port: number, path = '/ws/notifications'): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  const [head] = (await once(socket, 'data')) as [Buffer];
  if (!head.toString().startsWith('HTTP/1.1 101')) throw new Error(`upgrade refused: ${head.toString().split('\r\n')[0]}`);
  socket.pause();
  socket.on('error', () => {});
  return socket;
}

export async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

export { makeEvent, type EventSpec } from '../helpers/events.js';

/** Stands in for the database's event table: events in the order they were recorded. */
export function createEventTable() {
  const events: OrderEvent[] = [];
  return {
    events,
    record(...recorded: OrderEvent[]) {
      events.push(...recorded);
      return recorded;
    },
    after(eventId: string): Replay | undefined {
      const index = events.findIndex((e) => e.id === eventId);
      return index === -1 ? undefined : { events: events.slice(index + 1), from: { xid: '1', position: index + 1 } };
    },
    /** The event's place in this table as the relay would carry it (`xid:position`). */
    positionOf(event: OrderEvent): string {
      return `1:${events.indexOf(event) + 1}`;
    },
  };
}

export function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

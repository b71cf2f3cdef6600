import type { FastifyInstance, FastifyRequest } from 'fastify';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { securityOptions } from '../../src/http/security.js';
import { createAdmission } from '../../src/notifications/admission.js';
import { createNotificationHub } from '../../src/notifications/hub.js';
import { rawRequest, requestText, upgradeHeaders } from '../security/raw-http.js';
import { connect, refusedUpgrade, type TestClient } from './harness.js';

let app: FastifyInstance | undefined;
let port = 0;
const clients: TestClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.ws.terminate();
  await app?.close();
  app = undefined;
});

/** The app as the service builds it, with only its WebSocket side: no database or broker to wait for. */
async function start(env: Record<string, string>): Promise<void> {
  const config = loadConfig({ API_KEYS: 'k1,k2', ...env });
  app = await buildApp({
    logger: pino({ level: 'silent' }),
    security: securityOptions(config),
    readiness: {},
    notifications: { hub: createNotificationHub(), replayAfter: async () => ({ events: [] }) },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as AddressInfo).port;
}

const url = (key: string) => `ws://127.0.0.1:${port}/ws/notifications?access_token=${key}`;
const open = async (key: string) => {
  const client = await connect(url(key));
  clients.push(client);
  return client;
};
/** Opens a socket when the caps let it, keeping it open. */
const opens = async (key: string) => open(key).then(() => true, () => false);
const detailOf = (body: string) => (JSON.parse(body) as { detail: string }).detail;

describe('WebSocket admission', () => {
  it('when a key holds its cap of sockets, then the next is refused with 429 saying how many it holds; closing one frees its slot', async () => {
    await start({ WS_MAX_CONNECTIONS_PER_KEY: '2', WS_MAX_CONNECTIONS: '0' });
    const first = await open('k1');
    await open('k1');

    const refused = await refusedUpgrade(url('k1'));
    expect(refused.status).toBe(429);
    expect(detailOf(refused.body)).toBe('This caller already holds 2 WebSocket connections, the most it may; close one first.');
    await open('k2');
    await open('k2');

    first.ws.close();
    await first.closed;
    await expect.poll(() => opens('k1'), { timeout: 5000 }).toBe(true);
    // Closing one of two frees one slot, not the caller's whole count.
    expect((await refusedUpgrade(url('k1'))).status).toBe(429);
  });

  it('when a plain GET (426) comes on a connection that stays open, then it holds no slot, and the connection serves the next request', async () => {
    await start({ WS_MAX_CONNECTIONS_PER_KEY: '1', WS_MAX_CONNECTIONS: '1' });
    const plain = `GET /ws/notifications?access_token=k1 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: keep-alive\r\n\r\n`;
    const kept = net.connect(port, '127.0.0.1');
    kept.on('error', () => {});
    await once(kept, 'connect');
    let received = '';
    kept.on('data', (chunk: Buffer) => {
      received += chunk.toString();
    });
    const answers = () => received.match(/HTTP\/1\.1 426 /g)?.length ?? 0;
    try {
      kept.write(plain);
      await expect.poll(answers, { timeout: 5000 }).toBe(1);
      expect(received).toMatch(/^upgrade: websocket\r$/im);
      expect(received).toMatch(/^connection: Upgrade\r$/im);

      expect(await opens('k1')).toBe(true);
      kept.write(plain);
      await expect.poll(answers, { timeout: 5000 }).toBe(2);
    } finally {
      kept.destroy();
    }
  });

  it('when the process holds its cap of sockets, then the next is refused with 503 whoever asks; closing one frees its slot', async () => {
    await start({ WS_MAX_CONNECTIONS_PER_KEY: '0', WS_MAX_CONNECTIONS: '2' });
    await open('k1');
    const second = await open('k2');

    for (const key of ['k1', 'k2']) {
      const refused = await refusedUpgrade(url(key));
      expect(refused.status).toBe(503);
      expect(detailOf(refused.body)).toBe('This instance holds all the WebSocket connections it takes; retry later or on another instance.');
    }

    second.ws.close();
    await second.closed;
    await expect.poll(() => opens('k2'), { timeout: 5000 }).toBe(true);
  });

  it('when one key closes its only socket, then it may open its cap again, not one more', async () => {
    await start({ WS_MAX_CONNECTIONS_PER_KEY: '1', WS_MAX_CONNECTIONS: '0' });
    const only = await open('k1');
    only.ws.close();
    await only.closed;
    await expect.poll(() => opens('k1'), { timeout: 5000 }).toBe(true);

    const refused = await refusedUpgrade(url('k1'));

    expect(refused.status).toBe(429);
    expect(detailOf(refused.body)).toBe('This caller already holds 1 WebSocket connections, the most it may; close one first.');
  });
});

describe('WebSocket admission bookkeeping', () => {
  it('when every socket of every caller has closed, then no caller is remembered', async () => {
    const admission = createAdmission({ total: 0, perCaller: 0 });
    const server = net.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const sockets: net.Socket[] = [];
    try {
      for (const caller of ['a', 'a', 'b']) {
        const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
        await once(socket, 'connect');
        sockets.push(socket);
        admission.admit({ raw: { socket } } as unknown as FastifyRequest, caller);
      }
      expect(admission.callers()).toBe(2);

      sockets[0]!.destroy();
      await once(sockets[0]!, 'close');
      expect(admission.callers()).toBe(2);
      for (const socket of sockets.slice(1)) {
        socket.destroy();
        await once(socket, 'close');
      }
      expect(admission.callers()).toBe(0);
    } finally {
      for (const socket of sockets) socket.destroy();
      server.close();
    }
  });
});

describe('WebSocket handshake checks', () => {
  const upgrade = (headers: Record<string, string>, waitForCloseMs = 3000) =>
    rawRequest(port, requestText('GET', '/ws/notifications?access_token=k1', port, upgradeHeaders(headers)), { waitForCloseMs });

  it.each([
    [{ 'sec-websocket-version': '7' }, 'Sec-WebSocket-Version must be 13.'],
    [{ 'sec-websocket-key': 'too-short' }, 'Sec-WebSocket-Key must be 16 bytes in base64.'],
    [{ 'sec-websocket-key': 'AAAAAAAAAAAAAAAAAAAAAA=', 'sec-websocket-version': '12' }, 'Sec-WebSocket-Key must be 16 bytes in base64; Sec-WebSocket-Version must be 13.'],
    [{ upgrade: 'h2c' }, 'Upgrade must be websocket.'],
    [{ 'sec-websocket-key': '!AAAAAAAAAAAAAAAAAAAAAA==' }, 'Sec-WebSocket-Key must be 16 bytes in base64.'],
    [{ 'sec-websocket-key': 'AAAAAAAAAAAAAAAAAAAAAA==A' }, 'Sec-WebSocket-Key must be 16 bytes in base64.'],
  ])('when the handshake has %o, then it is refused with 400 saying "%s"', async (headers, detail) => {
    await start({});

    const answer = await upgrade(headers);

    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'bad_upgrade_request', detail });
    expect(answer.closedByServer).toBe(true);
  });

  it.each([
    [{ 'sec-websocket-version': '8' }],
    [{ upgrade: 'WebSocket' }],
    [{ 'sec-websocket-key': '+/0123456789abcdefABCD==' }],
  ])('when the handshake has %o, then it is accepted', async (headers) => {
    await start({});

    const answer = await upgrade(headers, 0);

    expect(answer.status).toBe(101);
  });

  it('when GET /ws/notifications comes without an upgrade, then it is 426 naming the protocol', async () => {
    await start({});

    const answer = await fetch(`http://127.0.0.1:${port}/ws/notifications?access_token=k1`);

    expect(answer.status).toBe(426);
    expect(answer.headers.get('upgrade')).toBe('websocket');
    expect((await answer.json()) as unknown).toMatchObject({
      code: 'upgrade_required',
      detail: 'This URL is a WebSocket: connect with Connection: Upgrade and Upgrade: websocket.',
    });
  });
});

describe('the OpenAPI document', () => {
  it('does not list /ws/notifications, which OpenAPI cannot describe (the README does)', async () => {
    await start({});

    const doc = (await (await fetch(`http://127.0.0.1:${port}/openapi.json`)).json()) as { paths: Record<string, unknown> };

    expect(Object.keys(doc.paths)).toContain('/healthz');
    expect(Object.keys(doc.paths)).not.toContain('/ws/notifications');
  });
});

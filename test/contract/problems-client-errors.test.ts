import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { PassThrough, Writable } from 'node:stream';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { answerClientError } from '../../src/http/problems.js';

type LogLine = { level: number; msg: string; err?: { code?: string; message?: string } };

const opened: { close(): unknown }[] = [];
afterEach(async () => {
  for (const thing of opened.splice(0).reverse()) await thing.close();
});

/** A Fastify app whose log, at debug level, the test can read; `answerClientError` runs bound to it as Fastify binds it. */
function appWithLog(): { app: FastifyInstance; lines: () => LogLine[] } {
  let logged = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logged += chunk.toString();
      done();
    },
  });
  const app = Fastify({ loggerInstance: pino({ level: 'debug' }, sink) as FastifyBaseLogger, clientErrorHandler: answerClientError });
  opened.push(app);
  const lines = () => logged.split('\n').filter(Boolean).map((line) => JSON.parse(line) as LogLine);
  return { app, lines };
}

/** A client connected to `port` that keeps everything it receives until the server closes. */
async function connect(port: number) {
  const client = net.connect(port, '127.0.0.1');
  client.on('error', () => {});
  await once(client, 'connect');
  let received = '';
  client.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  const closed = once(client, 'close');
  opened.push({ close: () => client.destroy() });
  return { client, received: () => received, closed: async () => (await closed, received) };
}

/**
 * Node's HTTP server refusing `request` as its parser does, with the error and socket it hands to a
 * 'clientError' listener, before anything has been done with them.
 */
async function refusedByNode(request: string) {
  const server = http.createServer();
  const refused = once(server, 'clientError') as Promise<[Error & { code?: string }, net.Socket]>;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  opened.push({ close: () => new Promise((resolve) => server.close(resolve)) });
  const client = await connect((server.address() as AddressInfo).port);
  client.client.write(request);
  const [error, socket] = await refused;
  const socketErrors: Error[] = [];
  socket.on('error', (e) => socketErrors.push(e));
  return { error, socket, client, socketErrors };
}

describe('what answerClientError does with a request Node’s parser refuses', () => {
  it('when the connection can take an answer, then it gets a 400 problem, is closed, and the refusal is logged at debug level', async () => {
    const { app, lines } = appWithLog();
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { client, closed } = await connect((app.server.address() as AddressInfo).port);

    client.write('GET /orders HTTP/9\r\n\r\n');
    const text = await closed();

    const [head, body] = text.split('\r\n\r\n') as [string, string];
    expect(head.split('\r\n')).toEqual([
      'HTTP/1.1 400 Bad Request',
      'Content-Type: application/problem+json',
      `Content-Length: ${Buffer.byteLength(body)}`,
      'Cache-Control: no-store',
      'Connection: close',
    ]);
    expect(JSON.parse(body)).toMatchObject({ status: 400, code: 'bad_request', detail: 'The request is not valid HTTP/1.1.' });
    const refusals = lines().filter((line) => line.msg === 'refused a malformed request');
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({ level: 20, err: { code: 'HPE_INVALID_VERSION' } });
  });

  it('when a response is already being sent on the connection (pipelining), then no answer is cut into it: the connection is only closed', async () => {
    const { app } = appWithLog();
    const stream = new PassThrough();
    app.get('/slow', (_request, reply) => {
      stream.write('first part\n');
      return reply.send(stream);
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { client, received, closed } = await connect((app.server.address() as AddressInfo).port);

    client.write('GET /slow HTTP/1.1\r\nhost: x\r\n\r\n');
    await expect.poll(received).toContain('first part');
    client.write('NOT HTTP AT ALL\r\n\r\n');
    const text = await closed();

    expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(text).not.toContain('400');
    expect(text).not.toContain('problem');
    stream.end();
  });

  it('when the socket is already destroyed, then nothing is written and nothing logged', async () => {
    const { app, lines } = appWithLog();
    const { error, socket, socketErrors } = await refusedByNode('GET / HTTP/9\r\n\r\n');
    socket.destroy();

    answerClientError.call(app, error, socket);

    expect(error.code).toBe('HPE_INVALID_VERSION');
    expect(lines()).toEqual([]);
    expect(socketErrors).toEqual([]);
  });

  it('when the client reset the connection (ECONNRESET), then nothing is written to it, nothing logged, and the socket is left to Node', async () => {
    const { app, lines } = appWithLog();
    const { socket, client } = await refusedByNode('GET / HTTP/9\r\n\r\n');
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', errno: -104, syscall: 'read' });

    answerClientError.call(app, reset, socket);

    expect(socket.destroyed).toBe(false);
    expect(lines()).toEqual([]);
    socket.end();
    expect(await client.closed()).toBe('');
  });

  it('when the socket can no longer be written to, then no answer is attempted and the socket is destroyed', async () => {
    const { app, lines } = appWithLog();
    const { error, socket, client, socketErrors } = await refusedByNode('GET / HTTP/9\r\n\r\n');
    socket.end();

    answerClientError.call(app, error, socket);
    await client.closed();

    expect(socket.destroyed).toBe(true);
    expect(socketErrors).toEqual([]);
    expect(client.received()).toBe('');
    expect(lines().map((line) => line.msg)).toEqual(['refused a malformed request']);
  });
});

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS } from '../../src/errors.js';
import { rawRequest, requestText } from '../security/raw-http.js';
import { startListening, type ListeningService } from '../security/setups.js';

const PROBLEM = /^application\/problem\+json/;

describe('errors from the HTTP layer, before any route runs', () => {
  let listening: ListeningService;
  beforeAll(async () => {
    listening = await startListening({ database: 'pglite', rabbitmq: false }, {});
  });
  afterAll(() => listening?.service.close());

  const send = (text: string) => rawRequest(listening.port, text, { waitForCloseMs: 1000 });

  const keepAlive = { connection: 'keep-alive' };
  // Node's parser refusals have no request to answer through: the answer is written and the socket closed.
  it.each([
    ['a %-escape that is not UTF-8 (/orders/%FF)', () => requestText('GET', '/orders/%FF', listening.port, keepAlive), 400, 'bad_url', false],
    ['a 300-character order id', () => requestText('GET', `/orders/${'1'.repeat(300)}`, listening.port, keepAlive), 414, 'uri_too_long', false],
    [
      '5,000 headers',
      () => requestText('GET', '/orders/1', listening.port, { ...keepAlive, ...Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`x-h${i}`, 'v'])) }),
      431,
      'headers_too_large',
      true,
    ],
    ['a method Node does not know (FOO)', () => requestText('FOO', '/orders/', listening.port, keepAlive), 400, 'bad_request', true],
    ['a request line that is not HTTP', () => 'GET /orders/1 HTTP/9\r\n\r\n', 400, 'bad_request', true],
    ['a Content-Length that is not a number', () => 'POST /orders/ HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: x\r\n\r\n{}', 400, 'bad_request', true],
  ])('when the request has %s, then it is problem+json with a stable code', async (_case, text, status, code, closes) => {
    const response = await send(text());
    expect(response.status).toBe(status);
    expect(response.headers['content-type']).toMatch(PROBLEM);
    expect(JSON.parse(response.body)).toMatchObject({ status, code, type: `urn:order-service:problem:${code}`, title: ERRORS[code as keyof typeof ERRORS].title });
    expect(response.closedByServer, 'connection closed').toBe(closes);
  });

  it('when a body is sent as text/plain, then it is 415 as the README says, not read as a string', async () => {
    const text = 'POST /orders/ HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello';
    const response = await send(text);
    expect(response.status).toBe(415);
    expect(JSON.parse(response.body).code).toBe('unsupported_media_type');
  });
});

describe('the error table of docs/api.md', () => {
  it('when the service can answer a code, then docs/api.md lists it with its status', () => {
    const page = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');
    const table = page.slice(page.indexOf('## Errors'), page.indexOf('## Health'));
    const rows = new Map(
      [...table.matchAll(/^\| (\d{3}) \| (.+) \|$/gm)].flatMap(([, status, codes]) => [...codes!.matchAll(/`(\w+)`/g)].map(([, code]) => [code!, Number(status)])),
    );
    for (const [code, { status }] of Object.entries(ERRORS)) expect(rows.get(code), code).toBe(status);
  });
});

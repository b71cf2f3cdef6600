import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loggerOptions } from '../../src/http/security.js';

const KEY = 'sk-live-4f9a2c7e1b';

/** A logger as the process builds it, writing into a string. */
function capture(level: 'info' | 'debug') {
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return { logger: pino(loggerOptions({ level, secrets: [KEY, 'reader-key'] }), sink), text: () => text };
}

describe('what reaches the logs', () => {
  it('when a line carries a key (header, query, message or error), then the key never appears, at any level', () => {
    for (const level of ['info', 'debug'] as const) {
      const { logger, text } = capture(level);
      const request = { method: 'GET', url: `/ws/notifications?order_id=1&access_token=${KEY}`, headers: { authorization: `Bearer ${KEY}`, host: 'x' } };
      logger.info({ req: request }, 'incoming request');
      logger.warn({ headers: { Authorization: `bearer ${KEY}` } }, 'odd request');
      logger.error({ err: new Error(`refused key ${KEY} from client`) }, 'request failed');
      logger.info(`token reader-key used`);

      expect(text()).not.toContain(KEY);
      expect(text()).not.toContain('reader-key');
      expect(text()).toContain('access_token=[redacted]');
      expect(text()).toContain('order_id=1');
    }
  });

  it('when a line carries an email at info level, then it is masked wherever it is; at debug level it is kept', () => {
    const info = capture('info');
    info.logger.warn({ err: new Error('E11000 duplicate key: { client_email: "john.doe@example.com" }'), order: { client_email: 'ada@lovelace.org' } }, 'write failed for mary@example.co.uk');
    expect(info.text()).not.toMatch(/john\.doe@|ada@lovelace|mary@/);
    expect(info.text()).toContain('j***@example.com');
    expect(info.text()).toContain('m***@example.co.uk');
    info.logger.info({ target: 'amqp://guest@127.0.0.1:5672' }, 'connected');
    expect(info.text()).toContain('guest@127.0.0.1:5672');

    const debug = capture('debug');
    debug.logger.debug({ order: { client_email: 'ada@lovelace.org' } }, 'order');
    expect(debug.text()).toContain('ada@lovelace.org');
  });
});

/** The message of each line the logger wrote. */
const messages = (text: string) => text.trim().split('\n').map((line) => (JSON.parse(line) as { msg: string }).msg);

describe('what is scrubbed from a line, and what is kept', () => {
  it.each([
    ['Bearer abc', 'Bearer [redacted]'],
    ['sent bearer aZ09._~+/-x== to the API', 'sent bearer [redacted] to the API'],
    ['BASIC dXNlcjpwYXNz and Basic Zm9vOmJhcg=', 'BASIC [redacted] and Basic [redacted]'],
    ['Bearer   spaced', 'Bearer   [redacted]'],
    ['a cardbearer abc, a Basically fine line', 'a cardbearer abc, a Basically fine line'],
    ['GET /ws?ACCESS_TOKEN=abc&order_id=1', 'GET /ws?ACCESS_TOKEN=[redacted]&order_id=1'],
    ['access_token=abc def and access_token=xyz', 'access_token=[redacted] def and access_token=[redacted]'],
    ['the word seven77 is too short to be a key; eight888 is not', 'the word seven77 is too short to be a key; [redacted] is not'],
  ])('when a line says %j, then it is written as %j', (line, written) => {
    let text = '';
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        text += chunk.toString();
        done();
      },
    });
    pino(loggerOptions({ level: 'debug', secrets: ['seven77', 'eight888'] }), sink).info(line);
    expect(messages(text)).toEqual([written]);
  });

  it.each([
    ['a@b.io', 'a***@b.io'],
    ['Jo.Hn_9%x+y-z@Mail-1.Example.COM', 'J***@Mail-1.Example.COM'],
    ['.x@y.io', '.***@y.io'],
    ['first.last@sub.domain.example.co.uk.', 'f***@sub.domain.example.co.uk.'],
    ['ada@lovelace.org wrote to bob@babbage.net', 'a***@lovelace.org wrote to b***@babbage.net'],
    ['user@localhost', 'user@localhost'],
    ['user@host.c', 'user@host.c'],
    ['user@example.com1', 'user@example.com1'],
  ])('when a line at info level carries %j, then it is written as %j', (line, written) => {
    const { logger, text } = capture('info');
    logger.info(line);
    expect(messages(text())).toEqual([written]);
  });

  it('when the level is fatal, error, warn or info, then emails are masked; at debug or trace they are kept, and lines below the level are not written', () => {
    for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace']) {
      let text = '';
      const sink = new Writable({
        write(chunk: Buffer, _encoding, done) {
          text += chunk.toString();
          done();
        },
      });
      const logger = pino(loggerOptions({ level, secrets: [] }), sink);
      logger.fatal('from ada@lovelace.org');
      logger.error('below fatal');
      const masked = ['fatal', 'error', 'warn', 'info'].includes(level);
      expect(messages(text)[0], level).toBe(masked ? 'from a***@lovelace.org' : 'from ada@lovelace.org');
      expect(messages(text), level).toHaveLength(level === 'fatal' ? 1 : 2);
    }
  });

  it('when a request or its headers are logged, then the Authorization and Cookie headers read [redacted]', () => {
    const { logger, text } = capture('info');
    logger.info({ req: { headers: { authorization: 'Token a', cookie: 'session=abc' } } }, 'request');
    logger.info({ headers: { authorization: 'Token b', Authorization: 'Token c', accept: 'application/json' } }, 'headers');
    const [request, headers] = text().trim().split('\n').map((line) => JSON.parse(line));
    expect(request.req.headers).toEqual({ authorization: '[redacted]', cookie: '[redacted]' });
    expect(headers.headers).toEqual({ authorization: '[redacted]', Authorization: '[redacted]', accept: 'application/json' });
  });
});

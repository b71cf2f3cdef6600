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

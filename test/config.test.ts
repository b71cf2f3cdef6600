import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

describe('configuration', () => {
  it('when nothing is set, then the embedded defaults apply', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ HOST: '127.0.0.1', PORT: 8001, DATA_DIR: './data', ROLE: 'all', apiKeys: [] });
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.RABBITMQ_URL).toBeUndefined();
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
    [{ RABBITMQ_URL: 'http://x' }, 'RABBITMQ_URL'],
    [{ ROLE: 'worker' }, 'ROLE'],
    [{ OUTBOX_SWEEP_MS: '-1' }, 'OUTBOX_SWEEP_MS'],
    [{ DATABASE_HOST: 'db' }, 'DATABASE_NAME'],
  ])('when %o is set, then start-up stops with a message naming %s', (env, key) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(new RegExp(`\\b${key}\\b`));
  });

  it('when the original DATABASE_* parts are set, then they make the URL', () => {
    const config = loadConfig({ DATABASE_USER: 'app', DATABASE_PASSWORD: 'p@ss', DATABASE_HOST: 'db', DATABASE_NAME: 'orders', DATABASE_PORT: '5433' });
    expect(config.DATABASE_URL).toBe('postgres://app:p%40ss@db:5433/orders');
  });

  it('when a password is invalid, then the message does not show it', () => {
    expect(() => loadConfig({ DATABASE_URL: 'nope://secret' })).toThrow(/DATABASE_URL/);
    expect(() => loadConfig({ API_KEYS: '', HOST: '0.0.0.0' })).toThrow(/API_KEYS/);
  });

  it('when the host is not loopback and no API keys are set, then it refuses to start and says why', () => {
    expect(() => loadConfig({ HOST: '0.0.0.0' })).toThrow(/refusing to listen on HOST=0\.0\.0\.0 without API_KEYS/);
    expect(loadConfig({ HOST: '0.0.0.0', API_KEYS: 'a, b' }).apiKeys).toEqual(['a', 'b']);
    expect(loadConfig({ HOST: '::1' }).HOST).toBe('::1');
  });

  it('when a role other than all is chosen without shared services, then it refuses', () => {
    expect(() => loadConfig({ ROLE: 'api' })).toThrow(/ROLE=api .* DATABASE_URL and RABBITMQ_URL/);
    expect(loadConfig({ ROLE: 'notifier', DATABASE_URL: 'postgres://x/y', RABBITMQ_URL: 'amqp://x' }).ROLE).toBe('notifier');
  });
});

import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';

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

describe('configuration errors', () => {
  const messageOf = (env: Record<string, string>): string => {
    try {
      loadConfig(env);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).name).toBe('ConfigError');
      return (error as Error).message;
    }
    throw new Error(`${JSON.stringify(env)} was accepted`);
  };

  it('when a setting is invalid, then the message names it, shows the value given and says what was expected', () => {
    expect(messageOf({ PORT: 'eighty' })).toBe('invalid setting PORT="eighty": Expected integer');
    expect(messageOf({ DATABASE_PORT: '0' })).toBe('invalid setting DATABASE_PORT=0: Expected integer to be greater or equal to 1');
    expect(messageOf({ ROLE: 'worker' })).toBe('invalid setting ROLE="worker": Expected union value');
  });

  it('when an invalid URL carries a password, then the message hides the password and shows the rest', () => {
    expect(messageOf({ DATABASE_URL: 'mysql://app:s3cret@db:3306/orders' })).toBe(
      `invalid setting DATABASE_URL="mysql://app:(hidden)@db:3306/orders": Expected string to match '^postgres(ql)?://'`,
    );
    // An unencoded @ in the password hides up to the last one; no user still hides the password.
    expect(messageOf({ RABBITMQ_URL: 'http://guest:pa@ss:w0rd@mq/vhost' })).toContain('"http://guest:(hidden)@mq/vhost"');
    expect(messageOf({ MONGODB_URL: 'mongo://:t0ken@host' })).toContain('"mongo://:(hidden)@host"');
    expect(messageOf({ DATABASE_URL: 'a/b mysql://app:s3cret@db' })).toContain('"a/b mysql://app:(hidden)@db"');
    // Without a password there is nothing to hide.
    expect(messageOf({ DATABASE_URL: 'mysql://app@db/orders' })).toContain('"mysql://app@db/orders"');
    expect(messageOf({ DATABASE_URL: 'db:5432/x@y' })).toContain('"db:5432/x@y"');
  });

  it('when a setting is empty, then its default applies', () => {
    expect(loadConfig({ PORT: '', HOST: '' })).toMatchObject({ PORT: 8001, HOST: '127.0.0.1' });
  });

  it('when an API key has characters a bearer key cannot carry, then the message says which one without showing it', () => {
    const message = messageOf({ API_KEYS: 'good-key, bad key!' });
    expect(message).toBe('invalid setting API_KEYS: key 2 of 2 has characters a bearer key cannot carry (use letters, digits and -._~+/)');
    expect(messageOf({ API_READ_KEYS: 'pass word' })).toMatch(/^invalid setting API_READ_KEYS: key 1 of 1 /);
    expect(loadConfig({ API_KEYS: 'A-z0.9_~+/x==, ,' }).apiKeys).toEqual(['A-z0.9_~+/x==']);
    expect(messageOf({ API_KEYS: 'ok', API_READ_KEYS: 'x=y' })).toMatch(/API_READ_KEYS: key 1 of 1/);
  });

  it('when a key is both a full and a read-only key, then start-up stops, naming its place and not the key', () => {
    const message = messageOf({ API_KEYS: 'alpha,beta', API_READ_KEYS: 'gamma,beta' });
    expect(message).toBe('invalid setting API_READ_KEYS: key 2 is also in API_KEYS; a key has one scope, so list it in only one of both');
    expect(loadConfig({ API_KEYS: 'alpha', API_READ_KEYS: 'gamma' })).toMatchObject({ apiKeys: ['alpha'], readKeys: ['gamma'] });
  });

  it('when only read-only keys are set, then any host may be listened on; without keys only loopback names', () => {
    expect(loadConfig({ HOST: '0.0.0.0', API_READ_KEYS: 'reader' }).readKeys).toEqual(['reader']);
    expect(loadConfig({ HOST: '0.0.0.0', API_KEYS: 'writer', API_READ_KEYS: 'reader' }).apiKeys).toEqual(['writer']);
    for (const host of ['127.0.0.1', '127.10.20.30', '::1', '[::1]', 'localhost']) expect(loadConfig({ HOST: host }).HOST).toBe(host);
    for (const host of ['127.0.0.1.example.com', 'my.127.0.0.1', 'localhost.example', 'notlocalhost', '::10', '127.0.0', '127.a.0.1']) {
      expect(messageOf({ HOST: host })).toBe(
        `refusing to listen on HOST=${host} without API_KEYS: set API_KEYS to require bearer keys, or listen on 127.0.0.1`,
      );
    }
  });

  it('when CORS origins are listed, then each must be a bare http(s) origin', () => {
    expect(loadConfig({ CORS_ORIGINS: ' https://a.example , http://b.example:8080,' }).corsOrigins).toEqual(['https://a.example', 'http://b.example:8080']);
    expect(loadConfig({}).corsOrigins).toEqual([]);
    for (const origin of ['ftp://a.example', 'https://a.example/', 'https://a.example/path', 'a.example', 'xhttps://a.example', 'httpsx://a.example']) {
      expect(messageOf({ CORS_ORIGINS: `https://ok.example,${origin}` })).toBe(
        `invalid setting CORS_ORIGINS: ${JSON.stringify(origin)} is not an origin such as https://dashboard.example (scheme, host and port only)`,
      );
    }
  });

  it('when the statement timeout is not below the query timeout, then start-up stops and says why', () => {
    const message = 'invalid setting DATABASE_STATEMENT_TIMEOUT_MS=3000: keep it below DATABASE_QUERY_TIMEOUT_MS=3000, so that the server cancels a slow statement before the client drops its connection';
    expect(messageOf({ DATABASE_STATEMENT_TIMEOUT_MS: '3000', DATABASE_QUERY_TIMEOUT_MS: '3000' })).toBe(message);
    expect(loadConfig({ DATABASE_STATEMENT_TIMEOUT_MS: '2999', DATABASE_QUERY_TIMEOUT_MS: '3000' }).DATABASE_STATEMENT_TIMEOUT_MS).toBe(2999);
  });

  it('when a role other than all has only one of its two shared services, then it refuses and names both', () => {
    const message = 'ROLE=api runs beside other processes, so it needs a shared DATABASE_URL and RABBITMQ_URL; the embedded database and broker live inside one process (ROLE=all)';
    expect(messageOf({ ROLE: 'api', DATABASE_URL: 'postgres://db/orders' })).toBe(message);
    expect(messageOf({ ROLE: 'api', RABBITMQ_URL: 'amqp://mq' })).toBe(message);
    expect(loadConfig({ ROLE: 'all', DATABASE_URL: 'postgres://db/orders' }).ROLE).toBe('all');
    // The original DATABASE_* parts count as a shared database.
    const parts = { DATABASE_USER: 'app', DATABASE_HOST: 'db', DATABASE_NAME: 'orders' };
    expect(loadConfig({ ROLE: 'changelog', RABBITMQ_URL: 'amqp://mq', ...parts }).DATABASE_URL).toBe('postgres://app@db:5432/orders');
  });

  it('when some of the original DATABASE_* parts are set, then the first missing one is named; their characters are encoded', () => {
    expect(messageOf({ DATABASE_USER: 'app' })).toBe('invalid setting DATABASE_HOST: required when any DATABASE_* part is set');
    expect(messageOf({ DATABASE_NAME: 'orders', DATABASE_HOST: 'db' })).toBe('invalid setting DATABASE_USER: required when any DATABASE_* part is set');
    expect(messageOf({ DATABASE_USER: 'app', DATABASE_HOST: 'db' })).toMatch(/^invalid setting DATABASE_NAME: /);
    const config = loadConfig({ DATABASE_USER: 'a/b', DATABASE_PASSWORD: 'p:w', DATABASE_HOST: 'db', DATABASE_NAME: 'x y' });
    expect(config.DATABASE_URL).toBe('postgres://a%2Fb:p%3Aw@db:5432/x%20y');
    expect(config).not.toHaveProperty('DATABASE_PASSWORD');
    expect(loadConfig({ DATABASE_URL: 'postgres://given/db', DATABASE_USER: 'app' }).DATABASE_URL).toBe('postgres://given/db');
  });
});

describe('configuration values', () => {
  it('when nothing is set, then every named default applies', () => {
    expect(loadConfig({})).toMatchObject({
      ROLE: 'all',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      DATA_DIR: './data',
      RABBITMQ_EXCHANGE: 'orders',
      RABBITMQ_CHANGELOG_QUEUE: 'orders.changelog',
      RABBITMQ_CHANGELOG_QUEUE_TYPE: 'classic',
      MONGODB_DB: 'order_service',
      readKeys: [],
      corsOrigins: [],
    });
  });

  it('when each allowed value of a choice is set, then it is taken as given', () => {
    for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) expect(loadConfig({ LOG_LEVEL: level }).LOG_LEVEL).toBe(level);
    for (const type of ['classic', 'quorum']) expect(loadConfig({ RABBITMQ_CHANGELOG_QUEUE_TYPE: type }).RABBITMQ_CHANGELOG_QUEUE_TYPE).toBe(type);
    expect(() => loadConfig({ RABBITMQ_CHANGELOG_QUEUE_TYPE: 'stream' })).toThrow(/^invalid setting RABBITMQ_CHANGELOG_QUEUE_TYPE="stream"/);
    const shared = { DATABASE_URL: 'postgres://db/orders', RABBITMQ_URL: 'amqp://mq' };
    for (const role of ['all', 'api', 'notifier', 'changelog']) expect(loadConfig({ ROLE: role, ...shared }).ROLE).toBe(role);
  });

  it('when service URLs of each accepted scheme are set, then they are taken; other schemes are refused', () => {
    const config = loadConfig({ DATABASE_URL: 'postgresql://db/orders', RABBITMQ_URL: 'amqps://mq', MONGODB_URL: 'mongodb+srv://cluster' });
    expect(config).toMatchObject({ DATABASE_URL: 'postgresql://db/orders', RABBITMQ_URL: 'amqps://mq', MONGODB_URL: 'mongodb+srv://cluster' });
    expect(() => loadConfig({ MONGODB_URL: 'mongo://cluster' })).toThrow(/^invalid setting MONGODB_URL=/);
    expect(() => loadConfig({ RABBITMQ_EXCHANGE: 'x'.repeat(256) })).toThrow(/^invalid setting RABBITMQ_EXCHANGE=/);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { createMongoChangeLog, isUnavailable } from '../../src/changelog/mongodb.js';
import { DependencyUnavailableError } from '../../src/errors.js';
import { logged, makeEvent } from '../helpers/events.js';
import { startFakeMongod } from './fake-mongod.js';

let mongod: Awaited<ReturnType<typeof startFakeMongod>> | undefined;
afterEach(() => mongod?.close());

describe('MongoDB change log: the client against a server that answers', () => {
  it('when MongoDB answers a ping, then the state is up', async () => {
    mongod = await startFakeMongod();
    const log = createMongoChangeLog({ url: mongod.url, database: 'orders_log', timeoutMs: 300 });
    try {
      expect(await log.state()).toBe('up');
      expect(mongod.commands).toContainEqual(expect.objectContaining({ ping: 1, $db: 'orders_log' }));
    } finally {
      await log.close();
    }
  });

  it('when MongoDB takes the connection but never answers a ping, then the state is down within the timeout', async () => {
    mongod = await startFakeMongod();
    mongod.state.answering = false;
    const log = createMongoChangeLog({ url: mongod.url, database: 'orders_log', timeoutMs: 300 });
    try {
      const started = Date.now();
      expect(await log.state()).toMatch(/^down: /);
      expect(Date.now() - started).toBeLessThan(1500);
    } finally {
      await log.close();
    }
  }, 10_000);

  it('when MongoDB takes the connection but never answers a read, then the history read fails as "change log unavailable" within the timeout', async () => {
    mongod = await startFakeMongod();
    mongod.state.answering = false;
    const log = createMongoChangeLog({ url: mongod.url, database: 'orders_log', timeoutMs: 300 });
    try {
      const started = Date.now();
      const error = await log.history(1).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DependencyUnavailableError);
      expect(Date.now() - started).toBeLessThan(1500);
      expect(mongod.commands).toContainEqual(expect.objectContaining({ find: 'order_changes', filter: { order_id: 1 }, sort: { sequence: 1 } }));
    } finally {
      await log.close();
    }
  }, 10_000);

  it('when MongoDB takes the connection but never answers a write, then the append fails as unavailable within the write timeout and the stalled connection is closed', async () => {
    mongod = await startFakeMongod();
    const log = createMongoChangeLog({ url: mongod.url, database: 'orders_log', timeoutMs: 300, writeTimeoutMs: 700 });
    try {
      expect(await log.state()).toBe('up');
      const before = mongod.connections();
      mongod.state.answering = false;
      const started = Date.now();
      const error = await log.append(logged([makeEvent({ orderId: 7 })])).catch((e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(3000);
      expect(isUnavailable(error), String(error)).toBe(true);
      expect(String(error)).toMatch(/MongoDB did not answer within 700 ms|timed out/);
      // The socket timeout ends the connection the write was stuck on, so nothing is held for good.
      await expect.poll(() => mongod!.connections(), { timeout: 5000 }).toBeLessThan(before);
    } finally {
      await log.close();
    }
  }, 15_000);

  it('when the log is closed, then its connections to MongoDB are closed', async () => {
    mongod = await startFakeMongod();
    const log = createMongoChangeLog({ url: mongod.url, database: 'orders_log', timeoutMs: 300 });
    expect(await log.state()).toBe('up');
    expect(mongod.connections()).toBeGreaterThan(0);
    await log.close();
    await expect.poll(() => mongod!.connections(), { timeout: 2000 }).toBe(0);
  });
});

import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { createTestDatabase } from '../../helpers/databases.js';
import { orderInput } from '../../helpers/factories.js';
import { spawnService, type ServiceProcess } from '../../helpers/process.js';
import { adminSession, databaseName, prepareDatabase } from './postgres.js';

/** How a test registers what to undo when it finishes. */
export type Defer = (step: () => Promise<unknown>) => void;

/** The service as its own process, stopped when the test finishes. */
export async function startService(defer: Defer, env: Record<string, string>): Promise<ServiceProcess> {
  const service = await spawnService({ OUTBOX_SWEEP_MS: '200', ...env }, [], { startTimeoutMs: 30_000 });
  defer(() => service.stop());
  return service;
}

/** A fresh PostgreSQL database with the schema and the demo catalog, dropped when the test finishes. */
export async function postgresDatabase(defer: Defer): Promise<{ url: string; name: string }> {
  const database = await createTestDatabase('postgres');
  defer(() => database.drop());
  await prepareDatabase(database.url!);
  return { url: database.url!, name: databaseName(database.url!) };
}

/** A superuser session of the test's own, closed when the test finishes. */
export async function adminFor(defer: Defer, adminUrl: string): Promise<pg.Client> {
  const session = await adminSession(adminUrl);
  defer(() => session.end());
  return session;
}

/** Orders whose client's name and address are unique to this run, so that a log line carrying one is found. */
export function personalData() {
  const tag = randomUUID().slice(0, 8);
  const secrets: string[] = [];
  return {
    next(): Record<string, unknown> {
      const n = secrets.length / 3;
      const name = `Person ${tag}p${n}`;
      const local = `person.${tag}p${n}`;
      secrets.push(name, `${local}@example.com`, local);
      return orderInput({ client_name: name, client_email: `${local}@example.com` });
    },
    /** Every name, address and address's local part sent so far. */
    secrets: () => secrets,
  };
}

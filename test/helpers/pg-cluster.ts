import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

/** Longest wait for any one PostgreSQL command (initdb, start, base backup, stop, promote). */
const COMMAND_TIMEOUT_MS = 30_000;
const BIN_CANDIDATES = ['17', '16', '15', '14'].map((v) => `/usr/lib/postgresql/${v}/bin`);

/** Where initdb, pg_ctl and pg_basebackup are: `PG_BIN_DIR`, else Debian's folders; undefined when absent. */
export function postgresBinDir(): string | undefined {
  const candidates = process.env.PG_BIN_DIR ? [process.env.PG_BIN_DIR] : BIN_CANDIDATES;
  return candidates.find((dir) => ['initdb', 'pg_ctl', 'pg_basebackup'].every((bin) => existsSync(path.join(dir, bin))));
}

export interface PgNode {
  readonly name: 'primary' | 'standby';
  readonly port: number;
  readonly dataDir: string;
  /** A connection URL to `database` on this server, directly (not through any proxy). */
  url(database?: string): string;
}

export interface PgCluster {
  readonly dir: string;
  readonly primary: PgNode;
  readonly standby: PgNode;
  readonly synchronous: boolean;
  /** The standby's replication connection goes through this, so a test can stall the stream (blackhole). */
  readonly replicationProxy: TcpProxy;
  /** Waits (bounded) until the standby has replayed everything the primary has written so far. */
  waitForReplay(timeoutMs?: number): Promise<void>;
  /** `pg_ctl stop -m immediate`: the primary dies without a checkpoint, as on a crash. */
  stopPrimaryImmediately(): Promise<void>;
  /** `pg_ctl promote`, then waits until `pg_is_in_recovery()` is false; resolves with the milliseconds it took. */
  promoteStandby(): Promise<number>;
  /** The last lines of each server's log, for a failure's message. */
  logs(lines?: number): string;
  /** Stops both servers (immediately) and removes the folder; safe to call twice. */
  cleanup(): Promise<void>;
}

export interface PgClusterOptions {
  /** Commits wait for the standby (synchronous_standby_names '*', synchronous_commit on); else asynchronous. */
  synchronous: boolean;
  /** Databases to create on the primary before the standby is built. */
  databases?: string[];
}

/** A primary and a streaming standby built with PostgreSQL's own binaries in a temp folder, on free loopback ports, trust auth. */
export async function startPgCluster(options: PgClusterOptions): Promise<PgCluster> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('PostgreSQL binaries (initdb, pg_ctl, pg_basebackup) not found; set PG_BIN_DIR');
  // Short: the sockets live here, and a Unix socket path is limited to ~107 bytes.
  const dir = mkdtempSync(path.join(tmpdir(), 'pgc-'));
  const owner = serverOwner();
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const run = (command: string, args: string[]) => runAs(owner, path.join(bin, command), args);
  const [primaryPort, standbyPort] = await Promise.all([freePort(), freePort()]);
  const node = (name: PgNode['name'], port: number): PgNode => ({
    name,
    port,
    dataDir: path.join(dir, name),
    url: (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`,
  });
  const primary = node('primary', primaryPort);
  const standby = node('standby', standbyPort);
  const started: PgNode[] = [];
  let replicationProxy: TcpProxy | undefined;
  let cleaned = false;
  const logFile = (n: PgNode) => path.join(dir, `${n.name}.log`);
  const pgCtl = (n: PgNode, ...args: string[]) => run('pg_ctl', ['-D', n.dataDir, '-l', logFile(n), '-w', '-t', String(COMMAND_TIMEOUT_MS / 1000), ...args]);
  const logs = (lines = 20) =>
    [primary, standby].map((n) => `--- ${n.name} log\n${existsSync(logFile(n)) ? readFileSync(logFile(n), 'utf8').split('\n').slice(-lines).join('\n') : '(none)'}`).join('\n');
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    await replicationProxy?.close();
    for (const n of started) await pgCtl(n, 'stop', '-m', 'immediate').catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await run('initdb', ['-D', primary.dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '--no-instructions', '-E', 'UTF8', '--locale=C']);
    await appendFile(
      path.join(primary.dataDir, 'postgresql.conf'),
      settings({
        listen_addresses: '127.0.0.1',
        port: primaryPort,
        unix_socket_directories: dir,
        shared_buffers: '16MB',
        max_connections: 60,
        wal_level: 'replica',
        max_wal_senders: 4,
        wal_keep_size: '128MB',
        synchronous_commit: 'on',
        // A lost stream is noticed by the TCP close the proxy forwards; a blackholed one only by this.
        wal_receiver_timeout: '5s',
        wal_sender_timeout: '5s',
        logging_collector: 'off',
      }),
    );
    await pgCtl(primary, 'start');
    started.push(primary);
    await withClient(primary.url(), async (c) => {
      for (const database of options.databases ?? []) await c.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
    });

    replicationProxy = await startTcpProxy({ host: '127.0.0.1', port: primaryPort });
    // Taken through the proxy, so -R writes the proxy's port into the standby's primary_conninfo.
    await run('pg_basebackup', ['-h', '127.0.0.1', '-p', String(replicationProxy.port), '-U', 'postgres', '-D', standby.dataDir, '-R', '-X', 'stream', '-c', 'fast', '--no-sync']);
    await appendFile(path.join(standby.dataDir, 'postgresql.conf'), settings({ port: standbyPort, hot_standby: 'on' }));
    await pgCtl(standby, 'start');
    started.push(standby);

    if (options.synchronous) {
      // Set only now: with it set before the standby streams, every commit on the primary would wait.
      await withClient(primary.url(), async (c) => {
        await c.query(`ALTER SYSTEM SET synchronous_standby_names = '*'`);
        await c.query('SELECT pg_reload_conf()');
      });
    }
    const wanted = options.synchronous ? 'sync' : 'async';
    await poll(`the standby streaming (${wanted})`, 15_000, () =>
      withClient(primary.url(), async (c) => (await c.query<{ sync_state: string }>(`SELECT sync_state FROM pg_stat_replication WHERE state = 'streaming'`)).rows.some((r) => r.sync_state === wanted)),
    );
  } catch (error) {
    const message = `${error instanceof Error ? error.message : String(error)}\n${logs()}`;
    await cleanup();
    throw new Error(`could not build the PostgreSQL cluster: ${message}`, { cause: error });
  }

  return {
    dir,
    primary,
    standby,
    synchronous: options.synchronous,
    replicationProxy,
    async waitForReplay(timeoutMs = 10_000) {
      const target = await withClient(primary.url(), async (c) => (await c.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn);
      await poll(`the standby replaying up to ${target}`, timeoutMs, () =>
        withClient(standby.url(), async (c) => (await c.query<{ done: boolean }>('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS done', [target])).rows[0]!.done),
      );
    },
    async stopPrimaryImmediately() {
      await pgCtl(primary, 'stop', '-m', 'immediate');
      started.splice(started.indexOf(primary), 1);
    },
    async promoteStandby() {
      const startedAt = performance.now();
      await pgCtl(standby, 'promote');
      await poll('the standby out of recovery', 15_000, () =>
        withClient(standby.url(), async (c) => (await c.query<{ recovery: boolean }>('SELECT pg_is_in_recovery() AS recovery')).rows[0]!.recovery === false),
      );
      return performance.now() - startedAt;
    },
    logs,
    cleanup,
  };
}

/** The `postgres` OS user when running as root (initdb and pg_ctl refuse root); undefined otherwise. */
function serverOwner(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const home = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .map((line) => line.split(':'))
    .find((fields) => fields[0] === 'postgres');
  if (!home) throw new Error('running as root, and there is no postgres user to run PostgreSQL as');
  return { uid: Number(home[2]), gid: Number(home[3]) };
}

function runAs(owner: { uid: number; gid: number } | undefined, command: string, args: string[]): Promise<string> {
  const [file, argv] = owner ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
  return new Promise((resolve, reject) => {
    execFile(file, argv, { timeout: COMMAND_TIMEOUT_MS, killSignal: 'SIGKILL', cwd: tmpdir() }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${path.basename(command)} ${args.join(' ')} failed: ${error.message}\n${stdout}${stderr}`.trim()));
      else resolve(stdout);
    });
  });
}

function settings(values: Record<string, string | number>): string {
  return `\n${Object.entries(values)
    .map(([key, value]) => `${key} = ${typeof value === 'number' ? value : `'${value}'`}`)
    .join('\n')}\n`;
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000, query_timeout: 5_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Polls `check` every 50 ms until it is true, for at most timeoutMs; a check that throws counts as false. */
async function poll(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last = '';
  while (performance.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last})` : ''}`);
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

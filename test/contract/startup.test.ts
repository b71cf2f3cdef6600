import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { loadConfig, SETTINGS } from '../../src/config.js';
import { runServer, serverCommand } from '../helpers/process.js';

const dataDir = () => join(tmpdir(), `order-startup-${process.pid}-${Math.random().toString(36).slice(2)}`);

/** The process failed with one line that names `setting`, and no stack. */
function expectOneLineNaming(result: { code: number | null; output: string }, setting: RegExp) {
  expect(result.code).toBe(1);
  const lines = result.output.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('{'));
  expect(lines, result.output).toHaveLength(1);
  expect(lines[0]).toMatch(/^order service/);
  expect(lines[0]).toMatch(setting);
  expect(result.output).not.toMatch(/^\s+at /m);
}

const closedPort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });

describe('start-up failures name the setting to change, in one line', () => {
  it('when the port is in use, then it says so naming PORT and HOST, and exits 1', async () => {
    const holder = net.createServer().listen(0, '127.0.0.1');
    await new Promise((resolve) => holder.once('listening', resolve));
    try {
      const { port } = holder.address() as net.AddressInfo;
      const result = await runServer({ HOST: '127.0.0.1', PORT: String(port), DATA_DIR: dataDir(), LOG_LEVEL: 'warn' });
      expectOneLineNaming(result, /in use.*PORT.*HOST/);
      expect(result.output).toContain(`127.0.0.1:${port}`);
    } finally {
      holder.close();
    }
  });

  it('when the database refuses connections or its host does not exist, then it names DATABASE_URL and hides the password', async () => {
    const refused = await runServer({ HOST: '127.0.0.1', PORT: '0', DATABASE_URL: `postgres://app:s3cret@127.0.0.1:${await closedPort()}/orders` });
    expectOneLineNaming(refused, /connection refused.*DATABASE_URL/);
    expect(refused.output).toContain('postgres://app:***@127.0.0.1:');
    const unknown = await runServer({ HOST: '127.0.0.1', PORT: '0', DATABASE_URL: 'postgres://app:s3cret@no-such-host.invalid:5432/orders' });
    expectOneLineNaming(unknown, /no such host.*DATABASE_URL/);
    for (const { output } of [refused, unknown]) expect(output).not.toContain('s3cret');
    const parts = await runServer({ HOST: '127.0.0.1', PORT: '0', DATABASE_HOST: '127.0.0.1', DATABASE_PORT: String(await closedPort()), DATABASE_NAME: 'orders', DATABASE_USER: 'app' });
    expectOneLineNaming(parts, /DATABASE_HOST, DATABASE_PORT/);
  });

  it.skipIf(!inject('postgresUrl'))('when the database does not exist, then it says which and how to create it', async () => {
    const url = new URL(inject('postgresUrl'));
    url.pathname = '/no_such_order_db';
    const result = await runServer({ HOST: '127.0.0.1', PORT: '0', DATABASE_URL: url.toString() });
    expectOneLineNaming(result, /database "no_such_order_db" does not exist.*createdb no_such_order_db.*DATABASE_URL/);
  });
});

describe('logs', () => {
  const hasScript = (() => {
    try {
      execFileSync('script', ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  /** Starts the service, waits until it listens, stops it, and returns what it wrote to stdout. */
  const startAndStop = (command: string, args: string[]) =>
    new Promise<string>((resolve) => {
      const env = { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', DATA_DIR: dataDir(), TERM: 'dumb' };
      const child = spawn(command, args, { cwd: new URL('../..', import.meta.url), env, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (/listening on/.test(output)) child.kill('SIGTERM');
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.once('exit', () => (clearTimeout(timer), resolve(output)));
    });

  it('when stdout is a terminal, then lines are pretty (pino-pretty); when it is not, every line is JSON', async () => {
    const [node, args] = serverCommand();
    const piped = await startAndStop(node, args);
    const lines = piped.split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
    // script(1) runs the service on a pseudo-terminal; without it only the JSON half can be checked.
    if (!hasScript) return;
    const terminal = await startAndStop('script', ['-qec', [node, ...args].join(' '), '/dev/null']);
    expect(terminal).toMatch(/INFO.*order service listening on http:\/\/127\.0\.0\.1:\d+/);
    expect(terminal).not.toMatch(/^\{"level"/m);
  });
});

describe('.env.example', () => {
  const example = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
  const entries = [...example.matchAll(/^#? ?([A-Z][A-Z0-9_]*)=(.*)$/gm)].map(([, name, value]) => [name!, value!] as const);

  it('when it is read, then it lists exactly the settings the service knows, each once', () => {
    expect(entries.map(([name]) => name).sort()).toEqual([...SETTINGS].sort());
  });

  it('when a setting has a default, then .env.example shows that default, and uncommented as a whole it is a valid configuration', () => {
    const defaults = loadConfig({}) as unknown as Record<string, unknown>;
    for (const [name, value] of entries) if (defaults[name] !== undefined) expect(value, name).toBe(String(defaults[name]));
    expect(() => loadConfig(Object.fromEntries(entries))).not.toThrow();
  });
});

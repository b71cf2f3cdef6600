import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The command that runs the service as `npm start` does: node on the bundle of src/server.ts made once per
 * run (test/helpers/server-build.ts), with stack traces mapped back to src/.
 */
export function serverCommand(): [string, string[]] {
  return [process.execPath, ['--enable-source-maps', inject('serverBuild')]];
}

export interface ServiceProcess {
  readonly url: string;
  readonly child: ChildProcess;
  readonly output: () => string;
  /** Resolves with the exit code (or signal) once the process has ended. */
  readonly exited: Promise<number | string>;
  kill(signal: NodeJS.Signals): Promise<number | string>;
  /** SIGTERM, then SIGKILL if it has not exited within graceMs; resolves with the exit code (or signal). */
  stop(graceMs?: number): Promise<number | string>;
}

export interface SpawnOptions {
  /** How long to wait for "listening on" before the process is killed and the spawn fails (default 30 s). */
  startTimeoutMs?: number;
}

/** Runs the service as its own process, as `npm start` would, and waits until it listens. */
export async function spawnService(env: Record<string, string>, args: string[] = [], options: SpawnOptions = {}): Promise<ServiceProcess> {
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  const [command, serverArgs] = serverCommand();
  const child = spawn(command, [...serverArgs, ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      // A child that never listened would otherwise outlive the test run.
      child.kill('SIGKILL');
      reject(new Error(`service did not start within ${startTimeoutMs / 1000} s:\n${output}`));
    }, startTimeoutMs);
    const check = () => {
      const match = /listening on (http:\/\/[^"\s]+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`service exited (${code}) before listening:\n${output}`));
    });
  });
  return {
    url,
    child,
    output: () => output,
    exited,
    kill: (signal) => {
      child.kill(signal);
      return exited;
    },
    async stop(graceMs = 15_000) {
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      child.kill('SIGTERM');
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Runs the server entry point to completion, for start-up failures. */
export function runServer(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const [command, args] = serverCommand();
    const child = spawn(command, args, { cwd: root, env: { PATH: process.env.PATH ?? '', ...env } });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.once('exit', (code) => resolve({ code, output }));
  });
}

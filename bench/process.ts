import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';

export interface SpawnOptions {
  readonly args: readonly string[];
  readonly env: Record<string, string>;
  readonly cwd: string;
  /** Raise the soft open-files limit to the hard one (many sockets), through `bash -c 'ulimit …; exec …'`. */
  readonly raiseFdLimit?: boolean;
  /** Open an IPC channel to the child. */
  readonly ipc?: boolean;
}

/** Starts node with the given arguments; through bash only when the fd limit must be raised (exec keeps the pid). */
export function spawnNode({ args, env, cwd, raiseFdLimit = false, ipc = false }: SpawnOptions): ChildProcess {
  const stdio: ('ignore' | 'pipe' | 'ipc')[] = ['ignore', 'pipe', 'pipe', ...(ipc ? (['ipc'] as const) : [])];
  const fullEnv = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env };
  if (!raiseFdLimit) return spawn(process.execPath, args, { cwd, env: fullEnv, stdio });
  return spawn('bash', ['-c', 'ulimit -n hard && exec "$0" "$@"', process.execPath, ...args], { cwd, env: fullEnv, stdio });
}

/** Seconds of CPU (user + system) a process has used so far, from /proc. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the whole line, in clock ticks of 1/100 s.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** Resident set size of a process, in bytes, from /proc. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return match ? Number(match[1]) * 1024 : NaN;
}

export interface HttpAnswer {
  status: number;
  body: string;
}

/** One small HTTP request on a fresh connection, for set-up, checks and polling. */
export function httpRequest(url: string, options: { method?: string; body?: string; timeoutMs?: number } = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: options.method ?? 'GET',
      agent: false,
      headers: options.body === undefined ? {} : { 'content-type': 'application/json' },
      timeout: options.timeoutMs ?? 5000,
    });
    req.once('timeout', () => req.destroy(new Error(`${options.method ?? 'GET'} ${url} timed out`)));
    req.once('error', reject);
    req.once('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.once('error', reject);
    });
    req.end(options.body);
  });
}

/** Resolves with the exit code (or signal name) of a child. */
export function exitOf(child: ChildProcess): Promise<number | string> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  if (child.signalCode !== null) return Promise.resolve(child.signalCode);
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
}

/** Sends SIGTERM, and SIGKILL if the process has not ended within `graceMs`. */
export async function terminate(child: ChildProcess, graceMs = 15_000): Promise<number | string> {
  const exited = exitOf(child);
  if (child.exitCode !== null || child.signalCode !== null) return exited;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

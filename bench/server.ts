import type { ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, onCleanup, tempDir } from './infra.js';
import { cpuSeconds, exitOf, httpRequest, rssBytes, spawnNode, terminate } from './process.js';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SERVER = path.join(ROOT, 'dist', 'server.js');
const PROBE = path.join(ROOT, 'bench', 'probe.mjs');
/** `node bench/floor-server.mjs <fanout|pglite>`: the floors of the notification, memory and start-up rows. */
export const floorCommand = (mode: 'fanout' | 'pglite' | 'pg-get' | 'postgresjs-get') => [
  path.join(ROOT, 'bench', 'floor-server.mjs'),
  mode,
];

export interface ServerOptions {
  /** Names the process in messages and its profile file. */
  readonly label: string;
  /** The script and its arguments; `node dist/server.js` by default. */
  readonly command?: readonly string[];
  readonly env: Record<string, string>;
  /** Writes a CPU profile into this folder when the process exits. */
  readonly profileDir?: string | undefined;
  /** Preloads the memory probe (and --expose-gc) so that memory() can ask for heap figures. */
  readonly probe?: boolean;
  readonly raiseFdLimit?: boolean;
  /** How often /readyz is asked while starting (default 20 ms). */
  readonly pollMs?: number;
}

export interface MemoryUsage {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

export interface ServerProcess {
  readonly label: string;
  readonly url: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** From spawning the process to the first 200 from /readyz. */
  readonly readyMs: number;
  output(): string;
  cpuSeconds(): number;
  rss(): number;
  /** After a full collection (needs `probe`). */
  memory(): Promise<MemoryUsage>;
  /** SIGTERM, then the exit code: 0 when the server shut down cleanly. */
  stop(): Promise<number | string>;
}

export interface ServerRecord {
  label: string;
  exit: number | string | undefined;
  /** Log lines at warn level or above (the bench runs servers with LOG_LEVEL=warn), and the first few of them. */
  warnings: number;
  firstWarnings: string[];
}

/** Every server process of the run, with what it logged: written into latest.json for diagnosis. */
export const serverRecords: ServerRecord[] = [];

function warningsIn(output: string): { warnings: number; firstWarnings: string[] } {
  const lines = output.split('\n').filter((line) => line.trim() !== '');
  return { warnings: lines.length, firstWarnings: lines.slice(0, 5).map((line) => line.slice(0, 500)) };
}

/** `node dist/server.js` as its own process on a free loopback port, waited for until /readyz says 200. */
export async function startServer(options: ServerOptions): Promise<ServerProcess> {
  const port = await freePort();
  const nodeArgs: string[] = [];
  if (options.profileDir) {
    mkdirSync(options.profileDir, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${options.profileDir}`, `--cpu-prof-name=${options.label}.cpuprofile`);
  }
  if (options.probe) nodeArgs.push('--expose-gc', '--import', PROBE);
  const spawnedAt = performance.now();
  const child = spawnNode({
    args: [...nodeArgs, ...(options.command ?? [SERVER])],
    // A folder of its own, so that a developer's .env never changes what is measured.
    cwd: tempDir(`cwd-${options.label}`),
    env: {
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      // The bench drives thousands of requests a second and 10,000 sockets from one address: limits off.
      RATE_LIMIT_MAX: '0',
      WS_MAX_CONNECTIONS: '0',
      WS_MAX_CONNECTIONS_PER_KEY: '0',
      // For what-if experiments (a preload, a V8 flag) without touching the service.
      ...(process.env.BENCH_SERVER_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_SERVER_NODE_OPTIONS } : {}),
      ...options.env,
    },
    raiseFdLimit: options.raiseFdLimit ?? false,
    ipc: options.probe ?? false,
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const kill = onCleanup(`stop ${options.label}`, async () => void (await terminate(child)));
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url, child, () => output, 60_000, options.pollMs);
  const readyMs = performance.now() - spawnedAt;

  let asked = 0;
  return {
    label: options.label,
    url,
    pid: child.pid!,
    child,
    readyMs,
    output: () => output,
    cpuSeconds: () => cpuSeconds(child.pid!),
    rss: () => rssBytes(child.pid!),
    memory() {
      const id = ++asked;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${options.label}: no memory answer`)), 10_000);
        const onMessage = (message: { type?: string; id?: number } & MemoryUsage) => {
          if (message.type !== 'memory' || message.id !== id) return;
          clearTimeout(timer);
          child.off('message', onMessage);
          resolve(message);
        };
        child.on('message', onMessage);
        child.send({ cmd: 'memory', id });
      });
    },
    async stop() {
      const code = await terminate(child);
      await kill();
      serverRecords.push({ label: options.label, exit: code, ...warningsIn(output) });
      if (code !== 0) console.error(`${options.label} exited with ${code}; its log began:\n${warningsIn(output).firstWarnings.join('\n')}`);
      return code;
    },
  };
}

/** Polls /readyz until it answers 200; rejects when the process exits or the deadline passes. */
export async function waitReady(url: string, child: ChildProcess, output: () => string, timeoutMs: number, pollMs = 20): Promise<void> {
  let exited: number | string | undefined;
  void exitOf(child).then((code) => (exited = code));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited !== undefined) throw new Error(`server exited (${exited}) before it was ready:\n${output()}`);
    const answer = await httpRequest(`${url}/readyz`, { timeoutMs: 2000 }).catch(() => undefined);
    if (answer?.status === 200) return;
    await new Promise((r) => setTimeout(r, pollMs));
  }
  throw new Error(`server not ready within ${timeoutMs} ms:\n${output()}`);
}

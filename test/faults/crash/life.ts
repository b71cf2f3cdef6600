import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { serverCommand, spawnService, type ServiceProcess } from '../../helpers/process.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));

/**
 * One service process at a time on the same data, killed and started again. Writers and clients
 * ask `url()` and wait there while the service is down, so nobody talks to a process being killed.
 */
export class ServiceLife {
  kills = 0;
  startupKills = 0;
  starts = 0;
  private current: ServiceProcess | undefined;
  private up!: Promise<string>;
  private markUp!: (url: string) => void;
  /** Output of every process, for a failure's message. */
  private readonly outputs: (() => string)[] = [];

  constructor(
    private readonly env: Record<string, string>,
    private readonly startTimeoutMs = 60_000,
  ) {
    this.markDown();
  }

  /** The running service's base URL; waits while it is down. */
  url(): Promise<string> {
    return this.up;
  }

  isUp(): boolean {
    return this.current !== undefined;
  }

  async start(): Promise<void> {
    this.starts++;
    const service = await spawnService(this.env, [], { startTimeoutMs: this.startTimeoutMs });
    this.current = service;
    this.outputs.push(() => service.output());
    this.markUp(service.url);
  }

  /** SIGKILL: no shutdown, nothing flushed. */
  async kill(): Promise<void> {
    const service = this.current;
    if (!service) throw new Error('kill: the service is not running');
    this.current = undefined;
    this.markDown();
    await service.kill('SIGKILL');
    this.kills++;
  }

  /** Starts a process and SIGKILLs it after `delayMs`, in the middle of its start-up (or just after it). */
  async killDuringStart(delayMs: number): Promise<'before listening' | 'after listening'> {
    const [command, args] = serverCommand();
    const child = spawn(command, args, {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    await Promise.race([new Promise((resolve) => setTimeout(resolve, delayMs)), exited]);
    const listened = /listening on/.test(output);
    child.kill('SIGKILL');
    await exited;
    this.startupKills++;
    this.outputs.push(() => output);
    return listened ? 'after listening' : 'before listening';
  }

  async stop(): Promise<void> {
    const service = this.current;
    this.current = undefined;
    if (service) await service.stop(10_000);
  }

  /** The last lines each process wrote, for a failure's message. */
  tail(lines = 15): string {
    return this.outputs.map((o, i) => `--- process ${i + 1}\n${o().split('\n').slice(-lines).join('\n')}`).join('\n');
  }

  private markDown(): void {
    this.up = new Promise((resolve) => (this.markUp = resolve));
  }
}

import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

/** Who used the CPU during a phase, in cores (1.0 = one core busy the whole time). */
export interface CpuShare {
  seconds: number;
  /** Busy fraction of all cores, from /proc/stat. */
  machineBusy: number;
  cores: Record<string, number>;
}

interface Snapshot {
  at: number;
  busy: number;
  total: number;
  byCategory: Map<string, number>;
}

const TICK = 100;
const roles = new Map<number, string>();

/** Names a process for the CPU accounting (servers, WebSocket client processes). */
export function labelProcess(pid: number, role: string): void {
  roles.set(pid, role);
}

function procTimes(pid: string): { comm: string; own: number; kernel: number; children: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const f = stat.slice(close + 2).split(' ');
    return {
      comm,
      own: (Number(f[11]) + Number(f[12])) / TICK,
      kernel: Number(f[12]) / TICK,
      children: (Number(f[13]) + Number(f[14])) / TICK,
    };
  } catch {
    return undefined;
  }
}

function categoryOf(pid: number, comm: string): string {
  const role = roles.get(pid);
  if (role) return role;
  if (pid === process.pid) return 'bench (load generator, pgbench, bare loop)';
  if (comm === 'postgres') return 'postgres';
  if (comm === 'beam.smp' || comm === 'erl_child_setup' || comm === 'epmd' || comm === 'inet_gethost') return 'rabbitmq';
  return 'other processes';
}

function snapshot(): Snapshot {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0);
  const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
  const byCategory = new Map<string, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const t = procTimes(entry);
    if (!t) continue;
    // Reaped children's time lands in their parent: pgbench in the bench, exited backends in the postmaster.
    const category = categoryOf(Number(entry), t.comm);
    byCategory.set(category, (byCategory.get(category) ?? 0) + t.own + t.children);
    // For the processes the bench started, how much of their time was spent in the kernel (sockets).
    if (roles.has(Number(entry)))
      byCategory.set(`${category} (of which kernel)`, (byCategory.get(`${category} (of which kernel)`) ?? 0) + t.kernel);
  }
  return { at: performance.now(), busy: total - idle, total, byCategory };
}

/** Measures who used the CPU while `fn` ran. */
export async function measureCpu<T>(fn: () => Promise<T>): Promise<{ result: T; cpu: CpuShare }> {
  const before = snapshot();
  const result = await fn();
  const after = snapshot();
  const seconds = (after.at - before.at) / 1000;
  const cores: Record<string, number> = {};
  for (const [category, end] of after.byCategory) {
    const used = (end - (before.byCategory.get(category) ?? 0)) / seconds;
    if (used >= 0.005) cores[category] = round(used);
  }
  const machineBusy = after.total > before.total ? (after.busy - before.busy) / (after.total - before.total) : 0;
  return { result, cpu: { seconds: round(seconds), machineBusy: round(machineBusy), cores } };
}

/** How busy the machine is with nobody's bench running: sampled for a moment before the run. */
export async function backgroundLoad(ms = 2000): Promise<{ loadavg: number[]; cpu: CpuShare }> {
  const { cpu } = await measureCpu(() => new Promise((r) => setTimeout(r, ms)));
  return { loadavg: os.loadavg().map(round), cpu };
}

export function machineInfo(): Record<string, unknown> {
  return {
    cpus: os.cpus().length,
    model: os.cpus()[0]?.model,
    memoryGiB: round(os.totalmem() / 2 ** 30),
    node: process.version,
    kernel: os.release(),
  };
}

const round = (n: number) => Math.round(n * 100) / 100;

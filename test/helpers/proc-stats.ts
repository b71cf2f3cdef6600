import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** CPU time (user + system, all threads) a process has used so far, in ms, from /proc/<pid>/stat (Linux). */
export function cpuTimeMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: count fields from its closing one.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15; fields[0] is field 3.
  const [utime, stime] = [Number(fields[11]), Number(fields[12])];
  return ((utime + stime) * 1000) / TICKS_PER_SECOND;
}

export interface CpuUse {
  /** CPU time used in the window, ms. */
  cpuMs: number;
  wallMs: number;
  /** Fraction of one core: 1 is a core busy all the time. */
  share: number;
}

/** Measures the CPU a process uses while `during` runs (its own work, e.g. probes, counts too). */
export async function measureCpu(pid: number, during: () => Promise<void>): Promise<CpuUse> {
  const cpuBefore = cpuTimeMs(pid);
  const startedAt = performance.now();
  await during();
  const wallMs = performance.now() - startedAt;
  const cpuMs = cpuTimeMs(pid) - cpuBefore;
  return { cpuMs, wallMs, share: cpuMs / wallMs };
}

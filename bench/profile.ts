/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): the functions with the most self time, and self time
 * by package. Run alone: `node --import tsx bench/profile.ts <file.cpuprofile> [top]`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SOCKET_WRITES = new Set(['writev', 'writeBuffer', 'writeUtf8String', 'writeLatin1String']);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber?: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  file: string;
  /** Wall time the profile covers, and the part that was not idle, in ms. */
  totalMs: number;
  busyMs: number;
  /**
   * Busy time found inside socket write calls (writev, writeBuffer). On a loaded two-core machine much of
   * it is the thread waiting to run again after waking its peer, not CPU: compare the process's kernel
   * CPU time. The shares below are of the busy time outside those calls.
   */
  socketWriteMs: number;
  functions: { name: string; where: string; selfMs: number; share: number }[];
  packages: { name: string; selfMs: number; share: number }[];
  /** The service's own functions (src/, or dist/ without a source map) by inclusive time: what each part of the code costs with its callees. */
  service: { name: string; where: string; totalMs: number; share: number }[];
}

/** Where a function lives: a package, node's internals, the service's own code, or V8 itself. */
function packageOf(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)';
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return modules[1]!;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const own = /\/(?:dist|src)\/(.+)$/.exec(url);
  if (own) return `service: ${own[1]!.split('/').slice(0, -1).join('/') || '.'}`;
  return url;
}

/**
 * Reads a profile. The server runs as one bundled file (dist/server.js), so each frame in a file with a
 * source map beside it is put back at its own file and line: a package's code counts as that package's.
 */
function loadProfile(file: string): CpuProfile {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const maps = new Map<string, SourceMap | undefined>();
  for (const { callFrame } of profile.nodes) {
    if (!callFrame.url.startsWith('file:')) continue;
    if (!maps.has(callFrame.url)) {
      const mapFile = `${fileURLToPath(callFrame.url)}.map`;
      maps.set(callFrame.url, existsSync(mapFile) ? new SourceMap(JSON.parse(readFileSync(mapFile, 'utf8')) as never) : undefined);
    }
    const entry = maps.get(callFrame.url)?.findEntry(callFrame.lineNumber, callFrame.columnNumber ?? 0);
    if (!entry || !('originalSource' in entry)) continue;
    callFrame.url = new URL(entry.originalSource, callFrame.url).href;
    callFrame.lineNumber = entry.originalLine;
  }
  return profile;
}

export function summarizeProfile(file: string, top = 25): ProfileSummary {
  const profile = loadProfile(file);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const functions = new Map<string, { name: string; where: string; us: number }>();
  const packages = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  let socketUs = 0;
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    totalUs += us;
    if (functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    if (SOCKET_WRITES.has(functionName) && !url) {
      socketUs += us;
      continue;
    }
    const name = functionName || '(anonymous)';
    const where = url ? `${url.replace(/^file:\/\/.*?\/(node_modules|dist|src)\//, '$1/')}:${lineNumber + 1}` : '';
    const key = `${name}@${where}`;
    const entry = functions.get(key) ?? { name, where, us: 0 };
    entry.us += us;
    functions.set(key, entry);
    const pkg = packageOf(url, name);
    packages.set(pkg, (packages.get(pkg) ?? 0) + us);
  }
  // Inclusive time: each sample counts once for every distinct service function on its stack.
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusive = new Map<string, { name: string; where: string; us: number }>();
  for (const [id, us] of self) {
    const leaf = byId.get(id)!.callFrame;
    if (leaf.functionName === '(idle)' || (SOCKET_WRITES.has(leaf.functionName) && !leaf.url)) continue;
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const { functionName, url, lineNumber } = byId.get(at)!.callFrame;
      if (!/\/(dist|src)\//.test(url) || /node_modules/.test(url)) continue;
      const where = `${url.replace(/^.*\/(dist|src)\//, '$1/')}:${lineNumber + 1}`;
      const key = `${functionName}@${where}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const entry = inclusive.get(key) ?? { name: functionName || '(anonymous)', where, us: 0 };
      entry.us += us;
      inclusive.set(key, entry);
    }
  }
  const busyUs = totalUs - idleUs;
  const share = (us: number) => Math.round((us / (busyUs - socketUs)) * 1000) / 10;
  return {
    file,
    totalMs: Math.round(totalUs / 1000),
    busyMs: Math.round(busyUs / 1000),
    socketWriteMs: Math.round(socketUs / 1000),
    functions: [...functions.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => ({ name: f.name, where: f.where, selfMs: Math.round(f.us / 1000), share: share(f.us) })),
    packages: [...packages.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 15)
      .map(([name, us]) => ({ name, selfMs: Math.round(us / 1000), share: share(us) })),
    service: [...inclusive.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => ({ name: f.name, where: f.where, totalMs: Math.round(f.us / 1000), share: share(f.us) })),
  };
}

/** Where the time went, window by window (for start-up: loading code, opening the database, building the app). */
export function profileTimeline(file: string, windowMs = 100): string[] {
  const profile = loadProfile(file);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const windows: Map<string, number>[] = [];
  let t = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    const { functionName, url } = byId.get(profile.samples[i]!)!.callFrame;
    const w = Math.floor(t / 1000 / windowMs);
    const bucket = (windows[w] ??= new Map());
    const pkg = functionName === '(idle)' ? '(idle)' : packageOf(url, functionName);
    bucket.set(pkg, (bucket.get(pkg) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  return windows.map((bucket, w) => {
    const top = [...(bucket ?? new Map<string, number>()).entries()].sort((a, b) => b[1] - a[1]).slice(0, 3);
    return `    ${String(w * windowMs).padStart(5)} ms  ${top.map(([pkg, us]) => `${pkg} ${Math.round(us / 1000)}`).join(', ')}`;
  });
}

export function renderProfile(s: ProfileSummary): string {
  const lines = [
    `${path.basename(s.file)}: ${s.busyMs} ms busy of ${s.totalMs} ms profiled; ${s.socketWriteMs} ms of it inside socket writes ` +
      `(${Math.round((s.socketWriteMs / Math.max(1, s.busyMs)) * 100)}%: kernel work or waiting to be scheduled again). Shares below are of the other ${s.busyMs - s.socketWriteMs} ms.`,
    '  self time by package:',
  ];
  for (const p of s.packages) lines.push(`    ${p.share.toFixed(1).padStart(5)}%  ${String(p.selfMs).padStart(6)} ms  ${p.name}`);
  lines.push('  top functions by self time:');
  for (const f of s.functions)
    lines.push(`    ${f.share.toFixed(1).padStart(5)}%  ${String(f.selfMs).padStart(6)} ms  ${f.name}  ${f.where}`);
  lines.push('  service functions by inclusive time (with their callees):');
  for (const f of s.service)
    lines.push(`    ${f.share.toFixed(1).padStart(5)}%  ${String(f.totalMs).padStart(6)} ms  ${f.name}  ${f.where}`);
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const [file, top] = args.filter((a) => !a.startsWith('--'));
  if (!file) {
    console.error('usage: node --import tsx bench/profile.ts <file.cpuprofile> [top] [--timeline]');
    process.exit(2);
  }
  console.log(renderProfile(summarizeProfile(file, top ? Number(top) : 25)));
  if (args.includes('--timeline')) console.log(`  timeline (ms of each 100 ms window, top three):\n${profileTimeline(file).join('\n')}`);
}

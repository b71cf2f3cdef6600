/**
 * `npm run bench`: measures the service against this machine's limits in the same run, checks every
 * answer, prints one table and writes bench/results/latest.json. `-- --smoke` runs it all in a tiny form
 * (CI); `-- --profile` writes a CPU profile per server process and summarises it; `-- --only=a,b` runs
 * some sections. Exits 1 when an answer was wrong or the machinery broke, never for a missed target.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { BenchContext, SectionResult } from './context.js';
import { embeddedSection } from './embedded.js';
import { checkServices, redact, ADMIN_DATABASE_URL, RABBITMQ_URL, RUN_ID, runCleanups } from './infra.js';
import { backgroundLoad, machineInfo } from './machine.js';
import { parseOptions, type BenchOptions } from './options.js';
import { postgresSection } from './postgres.js';
import { profileTimeline, renderProfile, summarizeProfile } from './profile.js';
import { errorRow, renderTable, writeResults, type Row } from './report.js';
import { ROOT, serverRecords } from './server.js';
import { startupSection } from './startup.js';
import { sweepSection } from './sweep.js';
import { TARGETS } from './targets.js';
import { memorySection, notifySection } from './websocket.js';

const RESULTS = path.join(ROOT, 'bench', 'results');

interface Section {
  name: string;
  run: (context: BenchContext) => Promise<SectionResult>;
  /** Rows shown when the section breaks before it produced any. */
  figures: { figure: string; target: string }[];
}

const SECTIONS: Section[] = [
  {
    name: 'postgres',
    run: postgresSection,
    figures: [
      { figure: 'POST /orders/ full pipeline', target: `≥ ${TARGETS.postRatio}` },
      { figure: 'GET /orders/{id}', target: `≥ ${TARGETS.getRatio}` },
    ],
  },
  { name: 'embedded', run: embeddedSection, figures: [{ figure: 'embedded POST /orders/', target: `≥ ${TARGETS.embeddedRatio}` }] },
  { name: 'notify', run: notifySection, figures: [{ figure: 'notification latency', target: "p99 ≤ 3×/2× the floor's, none lost" }] },
  { name: 'sweep', run: sweepSection, figures: [{ figure: 'highest order rate within the p99 bound', target: 'reported' }] },
  {
    name: 'memory',
    run: memorySection,
    figures: [{ figure: 'memory per idle WebSocket client', target: `≤ ${TARGETS.idleClientKB} KB each` }],
  },
  {
    name: 'startup',
    run: startupSection,
    figures: [{ figure: 'start to ready, embedded', target: `≤ ${TARGETS.startupRatio}× the floor` }],
  },
];

/** The code measured: the commit, and the files of src/ changed since (the tree may be work in progress). */
function codeVersion(): { commit: string; changed: string[] } {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
  try {
    return { commit: git('rev-parse', '--short', 'HEAD'), changed: git('status', '--porcelain', '--', 'src').split('\n').filter(Boolean) };
  } catch {
    return { commit: 'unknown', changed: [] };
  }
}

async function main(options: BenchOptions): Promise<number> {
  const started = Date.now();
  const code = codeVersion();
  await checkServices();
  const profileDir = options.profile ? path.join(RESULTS, 'profiles', RUN_ID) : undefined;
  const context: BenchContext = { options, profileDir };
  const background = await backgroundLoad();
  console.log(
    `order-service bench ${options.smoke ? '(smoke) ' : ''}run ${RUN_ID}: PostgreSQL ${redact(ADMIN_DATABASE_URL)}, RabbitMQ ${redact(RABBITMQ_URL)}; ` +
      `machine busy ${Math.round(background.cpu.machineBusy * 100)}% before the run (load average ${background.loadavg.join(' ')}); ` +
      `code ${code.commit}${code.changed.length ? ` with ${code.changed.length} changed file(s) in src/` : ''}`,
  );

  const rows: Row[] = [];
  const problems: string[] = [];
  const details: Record<string, unknown> = {};
  for (const section of SECTIONS) {
    if (options.only && !options.only.has(section.name)) continue;
    const t0 = Date.now();
    console.log(`… ${section.name}`);
    try {
      const result = await section.run(context);
      rows.push(...result.rows);
      details[section.name] = result.details;
      problems.push(...result.problems.map((p) => `${section.name}: ${p}`));
    } catch (error) {
      rows.push(...section.figures.map((f) => errorRow(f.figure, f.target, error)));
      problems.push(`${section.name}: the bench broke: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    } finally {
      // Every section leaves nothing behind, even when it broke half-way.
      await runCleanups();
    }
    console.log(`  ${section.name} done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  const after = await backgroundLoad(1000);
  const others = otherLoad(details);

  console.log(`\n${renderTable(rows)}\n`);
  console.log(
    'ratio = measured ÷ limit, the limit being the same job done by a bare floor in the same run (pgbench; a bare PGlite loop;\n' +
      'node + ws fan-out with no database or broker; a bare ws server; node + PGlite). Every target but memory is on that ratio.',
  );
  console.log(
    `${options.smoke ? 'Smoke run: tiny sizes, figures not meaningful. ' : ''}Machine: ${machineInfo().cpus} cores; ` +
      `busy ${Math.round(background.cpu.machineBusy * 100)}% before the run, ${Math.round(after.cpu.machineBusy * 100)}% after; ` +
      `load average ${background.loadavg.join(' ')} → ${after.loadavg.join(' ')}. Took ${Math.round((Date.now() - started) / 1000)} s.`,
  );
  if (others) console.log(`Processes not started by the bench used up to ${others.cores} cores during a measured phase (${others.phase}).`);
  const profiles = profileDir && existsSync(profileDir) ? readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile')) : [];
  const profileSummaries = profiles.map((f) => summarizeProfile(path.join(profileDir!, f)));
  for (const summary of profileSummaries) {
    console.log(`\n${renderProfile({ ...summary, functions: summary.functions.slice(0, 15), service: summary.service.slice(0, 12) })}`);
    if (path.basename(summary.file).startsWith('startup'))
      console.log(`  timeline (ms of each 100 ms window, top three):\n${profileTimeline(summary.file).join('\n')}`);
  }

  const file = writeResults(RESULTS, {
    run: {
      id: RUN_ID,
      code,
      smoke: options.smoke,
      startedAt: new Date(started).toISOString(),
      seconds: options.seconds,
      warmupSeconds: options.warmupSeconds,
      connections: options.connections,
    },
    machine: { ...machineInfo(), before: background, after, othersMax: others },
    rows,
    correct: problems.length === 0,
    problems,
    details,
    profiles: profileSummaries,
    servers: serverRecords,
  });
  const noisy = serverRecords.filter((r) => r.warnings > 0);
  if (noisy.length)
    console.log(
      `\nServers that logged warnings: ${noisy.map((r) => `${r.label} (${r.warnings})`).join(', ')}; see "servers" in the results.`,
    );
  console.log(`\nresults: ${path.relative(process.cwd(), file)}`);
  if (problems.length > 0) {
    console.error(`\n${problems.length} problem(s): answers were wrong or the bench broke:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    return 1;
  }
  console.log('every answer checked was correct');
  return 0;
}

/** The busiest measured phase for processes the bench did not start (someone else's work on the machine). */
function otherLoad(details: unknown, at = ''): { cores: number; phase: string } | undefined {
  if (!details || typeof details !== 'object') return undefined;
  const record = details as Record<string, unknown>;
  if (typeof record.machineBusy === 'number' && record.cores && typeof record.cores === 'object') {
    return { cores: (record.cores as Record<string, number>)['other processes'] ?? 0, phase: at };
  }
  let worst: { cores: number; phase: string } | undefined;
  for (const [key, value] of Object.entries(record)) {
    const found = otherLoad(value, at ? `${at}.${key}` : key);
    if (found && (!worst || found.cores > worst.cores)) worst = found;
  }
  return worst;
}

let interrupted = false;
process.on('SIGINT', () => {
  if (interrupted) process.exit(130);
  interrupted = true;
  console.error('interrupted: cleaning up (Ctrl-C again to leave now)');
  void runCleanups().finally(() => process.exit(130));
});

main(parseOptions(process.argv.slice(2)))
  .then((code) => {
    process.exitCode = code;
  })
  .catch(async (error: unknown) => {
    console.error('bench failed:', error);
    await runCleanups();
    process.exitCode = 1;
  })
  .finally(() => {
    // Sockets of autocannon or ws that linger must not keep the run from ending.
    setTimeout(() => process.exit(), 2000).unref();
  });

/**
 * `npm run test:mutation`: Stryker over the modules that guard money, data and access, one group at a
 * time, each with the tests that exercise it, then a score per file; exits 1 when a file is below the
 * threshold. Incremental: each group starts from its committed result (test/mutation/<group>.json)
 * and tests again only the mutants whose code or covering tests changed since. A group whose files to
 * mutate and test files are all as its committed result recorded them (the same files, the same source)
 * is not run at all: Stryker would reuse every result, after a dry run of the group's tests.
 *
 *   npm run test:mutation                          every group, incrementally
 *   npm run test:mutation -- --group=orders,http   some groups
 *   npm run test:mutation -- --full                every mutant again, ignoring the committed results
 *   npm run test:mutation -- --update-baseline     then commit test/mutation/*.json (a group with a file below
 *                                                  the threshold goes to test/mutation/pending/, which CI does not run)
 *   npm run test:mutation -- --committed           only the groups with a committed result (what CI runs)
 *
 * Reports: reports/mutation/<group>.html and .json (Stryker's own), and the table printed at the end.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, globSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GROUPS, THRESHOLD, type Group } from './mutation/groups.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BASELINES = path.join(ROOT, 'test', 'mutation');
const REPORTS = path.join(ROOT, 'reports', 'mutation');

interface Mutant {
  status: 'Killed' | 'Survived' | 'NoCoverage' | 'Timeout' | 'CompileError' | 'RuntimeError' | 'Ignored' | 'Pending';
}
export interface Report {
  files: Record<string, { mutants: Mutant[]; source?: string }>;
  testFiles?: Record<string, { source?: string }>;
}

export interface FileScore {
  file: string;
  killed: number;
  timeout: number;
  survived: number;
  noCoverage: number;
  /** Mutants that did not compile or were ignored: not counted, as Stryker does not count them. */
  invalid: number;
  /** Detected / valid, in percent; NaN when the file has no valid mutant. */
  score: number;
}

/** Stryker's own mutation score: killed and timed-out mutants over every mutant that compiled and ran. */
export function scoreOf(file: string, mutants: readonly Mutant[]): FileScore {
  const count = (status: Mutant['status']) => mutants.filter((m) => m.status === status).length;
  const killed = count('Killed');
  const timeout = count('Timeout');
  const survived = count('Survived');
  const noCoverage = count('NoCoverage');
  const valid = killed + timeout + survived + noCoverage;
  return {
    file,
    killed,
    timeout,
    survived,
    noCoverage,
    invalid: mutants.length - valid,
    score: valid === 0 ? Number.NaN : ((killed + timeout) / valid) * 100,
  };
}

export interface Plan {
  groups: readonly Group[];
  /** Groups left out by --committed, as they have no committed result to start from. */
  skipped: readonly Group[];
  full: boolean;
  updateBaseline: boolean;
}

/** What a run does, from its arguments; `committed(group)` says whether the group has a committed result. */
export function planRun(argv: readonly string[], committed: (group: Group) => boolean): Plan {
  const groupArg = argv.find((a) => a.startsWith('--group='));
  const known = new Set(['--full', '--update-baseline', '--committed']);
  for (const arg of argv)
    if (!known.has(arg) && arg !== groupArg)
      throw new Error(`unknown argument ${arg}: use --group=a,b, --full, --update-baseline, --committed`);
  const names = groupArg?.slice('--group='.length).split(',');
  const unknown = names?.filter((n) => !GROUPS.some((g) => g.name === n)) ?? [];
  if (unknown.length) throw new Error(`unknown group ${unknown.join(', ')}: the groups are ${GROUPS.map((g) => g.name).join(', ')}`);
  const chosen = names ? GROUPS.filter((g) => names.includes(g.name)) : GROUPS;
  const onlyCommitted = argv.includes('--committed');
  if (onlyCommitted && argv.includes('--full'))
    throw new Error('--committed starts from the committed results; --full ignores them: use one or the other');
  const groups = onlyCommitted ? chosen.filter(committed) : chosen;
  if (groups.length === 0)
    throw new Error('no group to run: --committed found no committed result (test/mutation/<group>.json) among the groups chosen');
  return {
    groups,
    skipped: chosen.filter((g) => !groups.includes(g)),
    full: argv.includes('--full'),
    updateBaseline: argv.includes('--update-baseline'),
  };
}

/** Where a group's result is kept: committed (CI runs the group) only once every file reaches the threshold. */
export function resultKind(scores: readonly FileScore[]): 'committed' | 'pending' {
  return scores.every((s) => !(s.score < THRESHOLD)) ? 'committed' : 'pending';
}

/** Source by path (relative to the root) of every file the globs match. */
export function sourcesOf(
  globs: readonly string[],
  read: (file: string) => string = (f) => readFileSync(path.join(ROOT, f), 'utf8'),
): Map<string, string> {
  const files = [...new Set(globs.flatMap((glob) => globSync(glob, { cwd: ROOT })))].sort();
  return new Map(files.map((file) => [file, read(file)]));
}

/**
 * What differs between a committed result and the code now: files to mutate and test files added,
 * removed or edited since. Empty when the result still describes the code.
 */
export function changedSince(report: Report, mutated: ReadonlyMap<string, string>, tests: ReadonlyMap<string, string>): string[] {
  const diff = (recorded: Record<string, { source?: string }>, now: ReadonlyMap<string, string>) => [
    ...[...now.keys()].filter((file) => recorded[file]?.source !== now.get(file)),
    ...Object.keys(recorded).filter((file) => !now.has(file)),
  ];
  return [...diff(report.files, mutated), ...diff(report.testFiles ?? {}, tests)];
}

const resultPath = (group: Group, kind: 'committed' | 'pending') =>
  kind === 'committed' ? path.join(BASELINES, `${group.name}.json`) : path.join(BASELINES, 'pending', `${group.name}.json`);

function runGroup(group: Group, full: boolean): Report {
  const incremental = path.join(REPORTS, `${group.name}-incremental.json`);
  // A group below the threshold starts from its pending result, so a long run is not lost.
  const baseline = [resultPath(group, 'committed'), resultPath(group, 'pending')].find((p) => existsSync(p));
  mkdirSync(REPORTS, { recursive: true });
  rmSync(incremental, { force: true });
  if (!full && baseline) {
    copyFileSync(baseline, incremental);
    const recorded = JSON.parse(readFileSync(baseline, 'utf8')) as Report;
    const changed = changedSince(recorded, sourcesOf(group.mutate), sourcesOf(group.tests));
    if (changed.length === 0) {
      console.log(
        `mutation group ${group.name}: its files and tests are as ${path.relative(ROOT, baseline)} recorded them; its result stands (Stryker not run)`,
      );
      return recorded;
    }
    console.log(`mutation group ${group.name}: changed since ${path.relative(ROOT, baseline)}: ${changed.join(', ')}`);
  }
  const started = performance.now();
  const run = spawnSync(
    'npx',
    [
      'stryker',
      'run',
      'stryker.config.mjs',
      '--mutate',
      group.mutate.join(','),
      '--incrementalFile',
      path.relative(ROOT, incremental),
      ...(group.ignoreStatic ? ['--ignoreStatic'] : []),
      ...(full ? ['--force'] : []),
    ],
    { cwd: ROOT, stdio: 'inherit', env: { ...process.env, MUTATION_TESTS: group.tests.join(','), MUTATION_GROUP: group.name } },
  );
  console.log(`mutation group ${group.name}: stryker exited ${run.status} after ${((performance.now() - started) / 1000).toFixed(0)} s`);
  if (run.status !== 0) throw new Error(`stryker failed on group ${group.name} (exit ${run.status ?? run.signal})`);
  return JSON.parse(readFileSync(incremental, 'utf8')) as Report;
}

export function renderScores(scores: readonly FileScore[]): string {
  const header = '| file | score | killed | timeout | survived | no coverage | not compiled |';
  const rows = scores.map(
    (s) =>
      `| \`${s.file}\` | ${Number.isNaN(s.score) ? '–' : `${s.score.toFixed(1)}%`} | ${s.killed} | ${s.timeout} | ${s.survived} | ${s.noCoverage} | ${s.invalid} |`,
  );
  return [header, '|---|---|---|---|---|---|---|', ...rows].join('\n');
}

function main(): void {
  const { groups, skipped, full, updateBaseline } = planRun(process.argv.slice(2), (g) =>
    existsSync(path.join(BASELINES, `${g.name}.json`)),
  );
  if (skipped.length) {
    const names = skipped.map((g) => g.name).join(',');
    console.log(`groups without a committed result, not run here: ${names} (run them with npm run test:mutation -- --group=${names})`);
  }
  const scores: FileScore[] = [];
  for (const group of groups) {
    const report = runGroup(group, full);
    const groupScores = Object.entries(report.files).map(([file, { mutants }]) => scoreOf(file, mutants));
    scores.push(...groupScores);
    if (updateBaseline) {
      const kind = resultKind(groupScores);
      mkdirSync(path.dirname(resultPath(group, kind)), { recursive: true });
      copyFileSync(path.join(REPORTS, `${group.name}-incremental.json`), resultPath(group, kind));
      if (kind === 'committed') rmSync(resultPath(group, 'pending'), { force: true });
      console.log(
        `mutation group ${group.name}: result written to ${path.relative(ROOT, resultPath(group, kind))}${kind === 'pending' ? ' (a file is below the threshold, so CI does not run this group yet)' : ''}`,
      );
    }
  }
  scores.sort((a, b) => a.file.localeCompare(b.file));
  console.log(`\nmutation scores (threshold ${THRESHOLD}% per file):\n${renderScores(scores)}`);
  const below = scores.filter((s) => s.score < THRESHOLD);
  if (below.length) {
    console.error(`\n${below.length} file(s) below ${THRESHOLD}%: ${below.map((s) => `${s.file} ${s.score.toFixed(1)}%`).join(', ')}`);
    process.exitCode = 1;
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();

import { describe, expect, it } from 'vitest';
import { changedSince, planRun, renderScores, resultKind, scoreOf, sourcesOf } from '../../scripts/mutation.js';
import { GROUPS } from '../../scripts/mutation/groups.js';

const mutants = (counts: Record<string, number>) =>
  Object.entries(counts).flatMap(([status, n]) => Array.from({ length: n }, () => ({ status }) as Parameters<typeof scoreOf>[1][number]));

describe('the mutation score per file', () => {
  it('when mutants were killed, timed out, survived, went uncovered or did not compile, then the score is detected over those that ran, as Stryker counts it', () => {
    const score = scoreOf('src/x.ts', mutants({ Killed: 6, Timeout: 2, Survived: 1, NoCoverage: 1, CompileError: 5, Ignored: 1 }));

    expect(score).toEqual({ file: 'src/x.ts', killed: 6, timeout: 2, survived: 1, noCoverage: 1, invalid: 6, score: 80 });
  });

  it('when no mutant of a file compiled, then it has no score rather than 0% or 100%', () => {
    expect(scoreOf('src/types.ts', mutants({ CompileError: 3 })).score).toBeNaN();
  });

  it('when rendered, then each file is a Markdown row with its score to one decimal', () => {
    const table = renderScores([scoreOf('src/a.ts', mutants({ Killed: 2, Survived: 1 })), scoreOf('src/b.ts', [])]);

    expect(table.split('\n').slice(2)).toEqual(['| `src/a.ts` | 66.7% | 2 | 0 | 1 | 0 | 0 |', '| `src/b.ts` | – | 0 | 0 | 0 | 0 | 0 |']);
  });
});

describe('where a group\'s result is kept', () => {
  it('when every file reaches 80% (or has no mutant to test), then it is committed, and CI runs the group', () => {
    expect(resultKind([scoreOf('src/a.ts', mutants({ Killed: 4, Survived: 1 })), scoreOf('src/types.ts', [])])).toBe('committed');
  });

  it('when one file is below 80%, then it is pending, and CI does not run the group', () => {
    expect(resultKind([scoreOf('src/a.ts', mutants({ Killed: 10 })), scoreOf('src/b.ts', mutants({ Killed: 79, Survived: 21 }))])).toBe('pending');
  });
});

describe('which groups a run mutates', () => {
  const committed = new Set(['outbox', 'messaging']);
  const hasResult = (g: { name: string }) => committed.has(g.name);
  const names = (argv: string[]) => planRun(argv, hasResult).groups.map((g) => g.name);

  it('when no group is named, then every group runs, with or without a committed result', () => {
    expect(names([])).toEqual(GROUPS.map((g) => g.name));
  });

  it('when --committed is given, then only the groups with a committed result run and the others are named as skipped', () => {
    const plan = planRun(['--committed'], hasResult);

    expect(plan.groups.map((g) => g.name)).toEqual(GROUPS.map((g) => g.name).filter((n) => committed.has(n)));
    expect(plan.skipped.map((g) => g.name)).toEqual(GROUPS.map((g) => g.name).filter((n) => !committed.has(n)));
  });

  it('when --committed and --group are both given, then it runs the named groups that have a result', () => {
    expect(names(['--committed', '--group=orders,outbox'])).toEqual(['outbox']);
  });

  it('when --committed finds no committed result among the chosen groups, then it refuses rather than passing with nothing run', () => {
    expect(() => planRun(['--committed', '--group=orders'], hasResult)).toThrow(/no group to run/);
  });

  it('when --committed is given with --full, then it refuses the contradiction', () => {
    expect(() => planRun(['--committed', '--full'], hasResult)).toThrow(/one or the other/);
  });

  it('when an argument or a group is unknown, then it says which', () => {
    expect(() => planRun(['--fast'], hasResult)).toThrow(/unknown argument --fast/);
    expect(() => planRun(['--group=payments'], hasResult)).toThrow(/unknown group payments/);
  });

  it('when --full and --update-baseline are given, then the plan says so', () => {
    expect(planRun(['--full', '--update-baseline'], hasResult)).toMatchObject({ full: true, updateBaseline: true, skipped: [] });
  });
});

describe('whether a committed result still describes the code', () => {
  const report = {
    files: { 'src/a.ts': { mutants: [], source: 'a' }, 'src/b.ts': { mutants: [], source: 'b' } },
    testFiles: { 'test/a.test.ts': { source: 'ta' } },
  };
  const now = (entries: Record<string, string>) => new Map(Object.entries(entries));

  it('when every file to mutate and every test file has the source the result recorded, then nothing changed and the group is not run', () => {
    expect(changedSince(report, now({ 'src/a.ts': 'a', 'src/b.ts': 'b' }), now({ 'test/a.test.ts': 'ta' }))).toEqual([]);
  });

  it('when a file to mutate or a test was edited, added or removed, then each is named', () => {
    expect(changedSince(report, now({ 'src/a.ts': 'a2', 'src/b.ts': 'b' }), now({ 'test/a.test.ts': 'ta' }))).toEqual(['src/a.ts']);
    expect(changedSince(report, now({ 'src/a.ts': 'a', 'src/b.ts': 'b', 'src/c.ts': 'c' }), now({ 'test/a.test.ts': 'ta' }))).toEqual(['src/c.ts']);
    expect(changedSince(report, now({ 'src/a.ts': 'a' }), now({ 'test/a.test.ts': 'ta' }))).toEqual(['src/b.ts']);
    expect(changedSince(report, now({ 'src/a.ts': 'a', 'src/b.ts': 'b' }), now({ 'test/a.test.ts': 'ta!' }))).toEqual(['test/a.test.ts']);
    expect(changedSince(report, now({ 'src/a.ts': 'a', 'src/b.ts': 'b' }), now({}))).toEqual(['test/a.test.ts']);
  });

  it('when a result recorded no test files (an older report), then any test file counts as changed', () => {
    expect(changedSince({ files: report.files }, now({ 'src/a.ts': 'a', 'src/b.ts': 'b' }), now({ 'test/a.test.ts': 'ta' }))).toEqual(['test/a.test.ts']);
  });

  it('when the globs of every group are read, then they name the files its committed result recorded, so CI compares like with like', () => {
    for (const group of GROUPS) {
      const files = [...sourcesOf(group.mutate, () => '').keys()];
      const tests = [...sourcesOf(group.tests, () => '').keys()];
      expect(files.length, group.name).toBeGreaterThan(0);
      expect(tests.length, group.name).toBeGreaterThan(0);
      expect(files.every((f) => f.startsWith('src/')) && tests.every((f) => f.startsWith('test/') && f.endsWith('.test.ts')), group.name).toBe(true);
    }
  });
});

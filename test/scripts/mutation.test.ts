import { describe, expect, it } from 'vitest';
import { renderScores, scoreOf } from '../../scripts/mutation.js';

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

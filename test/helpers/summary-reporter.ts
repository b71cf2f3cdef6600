import type { RunnerTestFile, RunnerTask } from 'vitest';
import type { Reporter } from 'vitest/reporters';

/** Ends the run with one plain line, "tests: N passed, N failed, N skipped", that any CI can read. */
export default class SummaryReporter implements Reporter {
  onFinished(files: RunnerTestFile[] = []): void {
    const counts = { pass: 0, fail: 0, skip: 0 };
    const visit = (task: RunnerTask) => {
      if (task.type === 'suite') {
        // A failed beforeAll leaves its tests skipped: then the suite itself is the failure.
        if (task.result?.state === 'fail' && !hasFailedTest(task)) counts.fail++;
        task.tasks.forEach(visit);
        return;
      }
      const state = task.result?.state;
      if (state === 'pass') counts.pass++;
      else if (state === 'fail') counts.fail++;
      else counts.skip++;
    };
    for (const file of files) {
      if (file.result?.state === 'fail' && !hasFailedTest(file) && !file.tasks.some((t) => t.result?.state === 'fail')) counts.fail++;
      file.tasks.forEach(visit);
    }
    process.stdout.write(`\ntests: ${counts.pass} passed, ${counts.fail} failed, ${counts.skip} skipped\n`);
  }
}

function hasFailedTest(task: RunnerTask): boolean {
  return task.type === 'suite' ? task.tasks.some(hasFailedTest) : task.result?.state === 'fail';
}

import type { Reporter, TestModule, TestSuite } from 'vitest/node';

/** Ends the run with one plain line, "tests: N passed, N failed, N skipped", that any CI can read. */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const counts = { pass: 0, fail: 0, skip: 0 };
    const failedTests = (within: TestModule | TestSuite) => [...within.children.allTests('failed')].length;
    for (const module of modules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') counts.pass++;
        else if (state === 'failed') counts.fail++;
        else counts.skip++;
      }
      // A failed beforeAll leaves its tests skipped: then the suite itself is the failure.
      const failedSuites = [...module.children.allSuites()].filter((suite) => suite.state() === 'failed' && failedTests(suite) === 0).length;
      counts.fail += failedSuites;
      // A file that failed with no failed test or suite in it (it did not load, or its own hook threw).
      const failedChild = [...module.children].some((child) => (child.type === 'suite' ? child.state() === 'failed' : child.result().state === 'failed'));
      if (module.state() === 'failed' && failedTests(module) === 0 && !failedChild) counts.fail++;
    }
    process.stdout.write(`\ntests: ${counts.pass} passed, ${counts.fail} failed, ${counts.skip} skipped\n`);
  }
}

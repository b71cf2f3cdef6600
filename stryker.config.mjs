// @ts-check
/**
 * Mutation testing (StrykerJS 9.6, Node 24 through npm). `npm run test:mutation` (scripts/mutation.ts) runs this
 * once per group of modules (scripts/mutation/groups.ts), naming the files to mutate, the tests to
 * run and the incremental file; `npx stryker run` alone mutates everything below against the whole
 * mutation test selection (vitest.mutation.config.mjs), which takes hours on two cores.
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
import process from 'node:process';

const group = process.env.MUTATION_GROUP ?? 'mutation';

export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutation.config.mjs', related: true },
  checkers: ['typescript'],
  // Mutants are only made in src: checking the tests too would only slow each check down.
  tsconfigFile: 'tsconfig.mutation.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  coverageAnalysis: 'perTest',
  mutate: [
    'src/http/**/*.ts',
    'src/orders/**/*.ts',
    'src/outbox/**/*.ts',
    'src/changelog/**/*.ts',
    'src/notifications/**/*.ts',
    'src/messaging/**/*.ts',
    'src/events/**/*.ts',
    'src/config.ts',
  ],
  incremental: true,
  incrementalFile: 'reports/mutation/incremental.json',
  reporters: ['clear-text', 'progress', 'html', 'json'],
  // scripts/mutation.ts runs one group at a time and names it, so each group keeps its own report.
  htmlReporter: { fileName: `reports/mutation/${group}.html` },
  jsonReporter: { fileName: `reports/mutation/${group}.json` },
  thresholds: { high: 90, low: 80, break: null },
  concurrency: 2,
  // A mutant that hangs its tests (a back-off removed, a loop that never ends) is given up on after 1.5 times
  // their own time plus 10 s, and counts as detected.
  timeoutMS: 10_000,
  tempDirName: '.stryker-tmp',
  // Other runs' sandboxes (scripts/mutation.ts and people run groups side by side) are not copied into this one,
  // nor the bundle the tests that start processes make (test/helpers/server-build.ts), which Stryker does not run.
  ignorePatterns: ['/.stryker-tmp*', '/.test-build-*'],
  cleanTempDir: 'always',
};

// @ts-check
/**
 * Mutation testing (StrykerJS 9, Node 20): `npm run test:mutation` mutates the modules that guard
 * money, data and access, and runs only the tests that cover each mutant. Incremental: results are
 * kept in reports/mutation/incremental.json, so a run after a change tests only what changed.
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
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
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  thresholds: { high: 90, low: 80, break: null },
  concurrency: 2,
  timeoutMS: 20_000,
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};

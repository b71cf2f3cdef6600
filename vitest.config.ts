import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Most files wait (on timers, faults held for seconds, child processes), so four at a time keep two
    // cores busy; `npx vitest run --maxWorkers=1` runs them one by one.
    maxWorkers: 4,
    // A worker evaluates src and the libraries once for all the files it runs instead of once per file,
    // which took a third of the suite's CPU. Each file still builds its own services and databases, and
    // leaves nothing global behind (fake timers are put back in the file that faked them).
    isolate: false,
    globalSetup: ['test/global-setup.ts', 'test/helpers/openapi-coverage.ts', 'test/helpers/embedded-image.ts', 'test/helpers/server-build.ts'],
    // Every answer a test service sends is checked against its /openapi.json (test/helpers/openapi-validation.ts).
    setupFiles: ['test/helpers/openapi-check.ts'],
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});

// @ts-check
import process from 'node:process';
import { defineConfig } from 'vitest/config';

/**
 * The tests Stryker runs against each mutant (stryker.config.mjs): the whole suite but the ones that
 * start the service as a child process, kill it or drive a browser: they take minutes, and Stryker
 * sees no coverage from another process anyway. `MUTATION_TESTS` (comma-separated globs) narrows it further for a quick look.
 */
const chosen = process.env.MUTATION_TESTS?.split(',').map((glob) => glob.trim()).filter(Boolean);

export default defineConfig({
  test: {
    include: chosen?.length ? chosen : ['test/**/*.test.ts'],
    exclude: [
      'node_modules/**',
      'test/faults/**',
      'test/topology/**',
      'test/deploy/**',
      'test/console/**',
      'test/process.test.ts',
      'test/db/data-dir-lock.process.test.ts',
      'test/notifications/resume-crash.test.ts',
      'test/pipeline/scale-out.test.ts',
      'test/pipeline/faults.test.ts',
      'test/pipeline/changelog-down.test.ts',
      'test/contract/startup.test.ts',
      'test/logs/request-id.test.ts',
    ],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    globalSetup: ['test/global-setup.ts', 'test/helpers/embedded-image.ts'],
    setupFiles: ['test/helpers/openapi-check.ts'],
  },
});

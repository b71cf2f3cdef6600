import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    globalSetup: ['test/global-setup.ts', 'test/helpers/openapi-coverage.ts', 'test/helpers/embedded-image.ts'],
    // Every answer a test service sends is checked against its /openapi.json (test/helpers/openapi-validation.ts).
    setupFiles: ['test/helpers/openapi-check.ts'],
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});

/**
 * What `npm run test:mutation` mutates, in groups, each with the tests that exercise it (the fewer
 * tests Stryker runs per mutant, the faster; vitest.mutation.config.mjs already leaves out the tests
 * that start child processes, kill them or drive a browser).
 */
export interface Group {
  readonly name: string;
  readonly mutate: readonly string[];
  readonly tests: readonly string[];
}

/** Every file must reach this mutation score. */
export const THRESHOLD = 80;

export const GROUPS: readonly Group[] = [
  {
    name: 'changelog',
    mutate: ['src/changelog/*.ts', 'src/messaging/decode.ts', 'src/messaging/logger.ts'],
    tests: ['test/changelog/*.test.ts'],
  },
  {
    name: 'orders',
    mutate: ['src/orders/*.ts'],
    tests: ['test/orders/*.test.ts', 'test/regressions/*.test.ts'],
  },
  {
    name: 'http',
    mutate: ['src/http/*.ts'],
    tests: ['test/security/*.test.ts', 'test/contract/*.test.ts', 'test/http.test.ts'],
  },
  {
    name: 'outbox',
    mutate: ['src/outbox/*.ts', 'src/config.ts'],
    tests: ['test/outbox/*.test.ts', 'test/config.test.ts'],
  },
  {
    name: 'notifications',
    mutate: ['src/notifications/*.ts', 'src/events/*.ts'],
    tests: ['test/notifications/*.test.ts', 'test/events/*.test.ts'],
  },
  {
    name: 'messaging',
    mutate: ['src/messaging/in-process.ts', 'src/messaging/rabbitmq.ts', 'src/messaging/rabbitmq-consumer.ts', 'src/messaging/broker.ts'],
    tests: ['test/messaging/*.test.ts'],
  },
];

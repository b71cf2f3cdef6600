/**
 * What `npm run test:mutation` mutates, in groups, each with the tests that exercise it (the fewer
 * tests Stryker runs per mutant, the faster; vitest.mutation.config.mjs already leaves out the tests
 * that start child processes, kill them or drive a browser).
 */
export interface Group {
  readonly name: string;
  readonly mutate: readonly string[];
  readonly tests: readonly string[];
  /**
   * Leaves out mutants of code that runs once, when a module loads (schemas, tables, route options):
   * Stryker cannot tell which test covers them, so each runs every test of the group, which made
   * half of these groups' mutants take three quarters of the time.
   */
  readonly ignoreStatic?: boolean;
}

/** Every file must reach this mutation score. */
export const THRESHOLD = 80;

const t = (dir: string, ...names: string[]) => names.map((n) => `test/${dir}/${n}.test.ts`);

export const GROUPS: readonly Group[] = [
  {
    name: 'changelog',
    mutate: ['src/changelog/*.ts', 'src/messaging/decode.ts'],
    tests: ['test/changelog/*.test.ts'],
  },
  {
    name: 'orders',
    mutate: ['src/orders/*.ts'],
    tests: t(
      'orders',
      'status',
      'problem-details',
      'idempotency',
      'idempotency-failures',
      'idempotency-lease',
      'order-lifecycle',
      'openapi-docs',
      'orders',
      'etag',
      'money',
      'validation',
    ),
    ignoreStatic: true,
  },
  {
    name: 'http',
    mutate: ['src/http/*.ts'],
    tests: [
      ...t('security', 'keys', 'logs', 'policy', 'rate-limit', 'headers', 'wiring', 'upgrade-refusals'),
      ...t(
        'contract',
        'json-body',
        'json-body-exact',
        'errors',
        'validation',
        'validation-registration',
        'input',
        'health',
        'request-id',
        'openapi',
        'openapi-texts',
        'console-files',
        'problems',
        'problems-handlers',
        'problems-client-errors',
      ),
      'test/http.test.ts',
      // The entity tags and money fields are the http helpers' but their tests are the order routes'.
      ...t('orders', 'etag', 'money'),
    ],
    ignoreStatic: true,
  },
  {
    name: 'outbox',
    mutate: ['src/outbox/*.ts', 'src/backoff.ts', 'src/config.ts'],
    tests: [
      ...t('outbox', 'relay', 'relay-failures', 'relay-wake', 'relay-passes', 'store'),
      'test/backoff.test.ts',
      'test/config.test.ts',
    ],
  },
  {
    name: 'notifications',
    mutate: ['src/notifications/*.ts', 'src/events/*.ts'],
    tests: [
      ...t(
        'notifications',
        'broadcast',
        'resume',
        'robustness',
        'routes',
        'ledger-bounds',
        'failure-paths',
        'admission',
        'socket-errors',
        'client',
        'frame',
        'coalesce',
        'feed',
      ),
      ...t('security', 'upgrade-refusals', 'websocket-caps'),
      'test/events/*.test.ts',
    ],
    ignoreStatic: true,
  },
  {
    name: 'messaging',
    mutate: ['src/messaging/in-process.ts', 'src/messaging/rabbitmq.ts', 'src/messaging/rabbitmq-consumer.ts', 'src/messaging/broker.ts'],
    tests: t('messaging', 'in-process', 'rabbitmq', 'rabbitmq-failures', 'rabbitmq-consumer', 'rabbitmq-reconnect'),
  },
];

/** Keeps the hexagon honest: the order feature never reaches for an adapter. */
module.exports = {
  forbidden: [
    {
      name: 'orders-not-to-adapters',
      comment: 'orders/ and products/ know only the database and event types, never a broker, change log or socket.',
      severity: 'error',
      from: { path: '^src/(orders|products)/' },
      to: { path: '^src/(messaging|changelog|notifications|outbox)/' },
    },
    {
      name: 'adapters-not-to-features',
      comment: 'Adapters depend on event types, not on the order feature.',
      severity: 'error',
      from: { path: '^src/(messaging|changelog|notifications)/' },
      to: { path: '^src/(orders|products)/' },
    },
    {
      name: 'metrics-not-to-parts',
      comment: 'metrics/ defines the figures it reads and imports no part: src/runtime.ts hands each part\'s readers to it.',
      severity: 'error',
      from: { path: '^src/metrics/' },
      to: { path: '^src/', pathNot: '^src/metrics/' },
    },
    {
      name: 'db-not-to-config',
      comment: 'db/ takes its settings as arguments: config.ts reads db/client.ts, so the other way round is a cycle.',
      severity: 'error',
      from: { path: '^src/db/' },
      to: { path: '^src/config\\.ts$' },
    },
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};

/** What one bench run does: the full run, or the tiny `--smoke` form CI uses to keep the machinery alive. */
export interface BenchOptions {
  readonly smoke: boolean;
  /** Writes a .cpuprofile per server process to bench/results/profiles and summarises it. */
  readonly profile: boolean;
  /** Runs only the named sections (comma-separated), for working on one of them. */
  readonly only: ReadonlySet<string> | undefined;
  /** Seconds measured per throughput run, and seconds of warm-up before each. */
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly connections: number;
  readonly notify: readonly NotifyScenario[];
  readonly idleClients: number;
  readonly startupRuns: number;
}

export interface NotifyScenario {
  readonly name: string;
  readonly clients: number;
  readonly ordersPerSecond: number;
  readonly seconds: number;
  readonly p99TargetMs: number;
}

export const SECTIONS = ['postgres', 'embedded', 'notify', 'memory', 'startup'] as const;

export function parseOptions(argv: readonly string[]): BenchOptions {
  const known = new Set(['--smoke', '--profile']);
  const onlyArg = argv.find((a) => a.startsWith('--only='));
  for (const arg of argv) {
    if (!known.has(arg) && arg !== onlyArg) throw new Error(`unknown argument ${arg}: use --smoke, --profile, --only=${SECTIONS.join(',')}`);
  }
  const only = onlyArg ? new Set(onlyArg.slice('--only='.length).split(',')) : undefined;
  for (const name of only ?? []) {
    if (!(SECTIONS as readonly string[]).includes(name)) throw new Error(`--only: unknown section ${name}`);
  }
  const smoke = argv.includes('--smoke');
  return {
    smoke,
    profile: argv.includes('--profile'),
    only,
    seconds: smoke ? 2 : 20,
    warmupSeconds: smoke ? 1 : 2,
    connections: 32,
    notify: smoke
      ? [
          { name: '100 clients @ 500/s', clients: 20, ordersPerSecond: 100, seconds: 2, p99TargetMs: 15 },
          { name: '1,000 clients @ 100/s', clients: 40, ordersPerSecond: 50, seconds: 2, p99TargetMs: 30 },
        ]
      : [
          { name: '100 clients @ 500/s', clients: 100, ordersPerSecond: 500, seconds: 20, p99TargetMs: 15 },
          { name: '1,000 clients @ 100/s', clients: 1000, ordersPerSecond: 100, seconds: 20, p99TargetMs: 30 },
        ],
    idleClients: smoke ? 200 : 10_000,
    startupRuns: smoke ? 3 : 5,
  };
}

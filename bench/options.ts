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
  /** The order rate sweep: clients, the rates tried in turn (until one misses), seconds measured at each. */
  readonly sweep: { readonly clients: number; readonly rates: readonly number[]; readonly seconds: number };
  readonly startupRuns: number;
}

export interface NotifyScenario {
  readonly name: string;
  readonly clients: number;
  readonly ordersPerSecond: number;
  readonly seconds: number;
  /** The p99 may be at most this many times the fan-out floor's p99 in the same run. */
  readonly p99FloorFactor: number;
}

export const SECTIONS = ['postgres', 'embedded', 'notify', 'sweep', 'memory', 'startup'] as const;

export function parseOptions(argv: readonly string[]): BenchOptions {
  const known = new Set(['--smoke', '--profile']);
  const onlyArg = argv.find((a) => a.startsWith('--only='));
  for (const arg of argv) {
    if (!known.has(arg) && arg !== onlyArg)
      throw new Error(`unknown argument ${arg}: use --smoke, --profile, --only=${SECTIONS.join(',')}`);
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
          { name: '100 clients @ 500/s', clients: 20, ordersPerSecond: 100, seconds: 2, p99FloorFactor: 3 },
          { name: '1,000 clients @ 100/s', clients: 40, ordersPerSecond: 50, seconds: 2, p99FloorFactor: 2 },
        ]
      : [
          { name: '100 clients @ 500/s', clients: 100, ordersPerSecond: 500, seconds: 20, p99FloorFactor: 3 },
          { name: '1,000 clients @ 100/s', clients: 1000, ordersPerSecond: 100, seconds: 20, p99FloorFactor: 2 },
        ],
    idleClients: smoke ? 200 : 10_000,
    sweep: smoke ? { clients: 20, rates: [50, 100], seconds: 1 } : { clients: 100, rates: [250, 500, 750, 1000, 1500, 2000], seconds: 5 },
    startupRuns: smoke ? 3 : 5,
  };
}

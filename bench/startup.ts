import { expect, type BenchContext, type SectionResult } from './context.js';
import { tempDir } from './infra.js';
import { ms, type Row } from './report.js';
import { floorCommand, startServer } from './server.js';
import { median } from './stats.js';
import { TARGETS } from './targets.js';

/** `node dist/server.js` on the embedded default, data folder already initialised: spawn to /readyz 200. */
export async function startupSection({ options, profileDir }: BenchContext): Promise<SectionResult> {
  const problems: string[] = [];
  const dataDir = tempDir('startup');
  // The first start creates, migrates and seeds the folder; it is not counted.
  const first = await startServer({ label: 'startup-init', env: { DATA_DIR: dataDir } });
  expect(problems, (await first.stop()) === 0, 'the initialising start did not exit cleanly');
  const times: number[] = [];
  for (let i = 0; i < options.startupRuns; i++) {
    const server = await startServer({ label: `startup-${i + 1}`, env: { DATA_DIR: dataDir }, pollMs: 5 });
    times.push(server.readyMs);
    const exit = await server.stop();
    expect(problems, exit === 0, `start ${i + 1} exited with ${exit}`);
  }
  if (profileDir) {
    // One more start, profiled and not counted: the profiler slows start-up down.
    const profiled = await startServer({ label: 'startup-profiled', env: { DATA_DIR: dataDir }, pollMs: 5, profileDir });
    expect(problems, (await profiled.stop()) === 0, 'the profiled start did not exit cleanly');
  }
  // The floor: node opening PGlite on the same folder and answering /readyz, nothing else.
  const floorTimes: number[] = [];
  for (let i = 0; i < options.startupRuns; i++) {
    const floor = await startServer({
      label: `startup-floor-${i + 1}`,
      command: floorCommand('pglite'),
      env: { DATA_DIR: dataDir },
      pollMs: 5,
    });
    floorTimes.push(floor.readyMs);
    await floor.stop();
  }
  const floorValue = median(floorTimes);
  const value = median(times);
  const row: Row = {
    figure: `start to ready, embedded, initialised data folder (median of ${times.length})`,
    value: `${ms(value)} ms (runs: ${times.map((t) => Math.round(t)).join(', ')})`,
    limit: `node + PGlite alone ${ms(floorValue)} ms`,
    ratio: value / floorValue,
    target: `≤ ${TARGETS.startupRatio}× the floor`,
    pass: value / floorValue <= TARGETS.startupRatio,
  };
  return { rows: [row], problems, details: { runsMs: times, floorRunsMs: floorTimes, firstStartMs: first.readyMs } };
}

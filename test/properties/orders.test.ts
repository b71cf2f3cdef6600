import fc from 'fast-check';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { databaseKinds } from '../helpers/databases.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { sequentialCommands } from './commands.js';
import { concurrentCommands } from './concurrent-commands.js';
import { CommandStats, startRun } from './world.js';

// PROPERTY_SEED (and PROPERTY_PATH, both printed on failure) replays a failing run.
const seed = process.env.PROPERTY_SEED === undefined ? undefined : Number(process.env.PROPERTY_SEED);
const path = process.env.PROPERTY_PATH;
const RUNS = Number(process.env.PROPERTY_RUNS ?? 100);
const MAX_COMMANDS = 40;

for (const { kind, skip } of databaseKinds()) {
  describe.skipIf(skip)(`the order API against its model on ${kind}`, () => {
    let service: TestService;
    beforeAll(async () => {
      service = await startTestService({ database: kind });
    });
    afterAll(() => service?.close());

    it('when random sequences of commands run, some of them concurrent, then every answer is what the model of the contract allows', { timeout: 120_000 }, async () => {
      const stats = new CommandStats();
      const startedAt = performance.now();
      await fc.assert(
        fc.asyncProperty(fc.commands([...sequentialCommands, ...concurrentCommands], { maxCommands: MAX_COMMANDS, size: 'max' }), (commands) =>
          fc.asyncModelRun(() => startRun(service.app, stats), commands),
        ),
        { numRuns: RUNS, ...(seed === undefined ? {} : { seed }), ...(path === undefined ? {} : { path, endOnFailure: true }) },
      );
      process.stdout.write(
        `model-based test on ${kind}: ${stats.runs} runs (${RUNS} generated, the rest shrinking), ${stats.total()} commands in ${((performance.now() - startedAt) / 1000).toFixed(1)} s: ${stats}\n`,
      );
    });
  });
}

import { expect, type BenchContext, type SectionResult } from './context.js';
import { createDatabase, RABBITMQ_URL, RUN_ID, uniqueTopology } from './infra.js';
import { labelProcess } from './machine.js';
import type { NotifyScenario } from './options.js';
import { createUnlimitedProduct, waitForPipeline } from './postgres.js';
import { ms, rate, type Row } from './report.js';
import { floorCommand, startServer, type ServerProcess } from './server.js';
import { TARGETS } from './targets.js';
import { notifyRun } from './websocket.js';

interface Step {
  ordersPerSecond: number;
  p50: number;
  p99: number;
  lost: number;
}

/**
 * The highest order rate at which the clients' p99 stays within TARGETS.sweepP99Ms: the rates are
 * tried in turn, each with its own warm-up, until one misses (or loses an envelope). The fan-out floor
 * is swept the same way, so the figure comes with what the machine allows.
 */
export async function sweepSection({ options, profileDir }: BenchContext): Promise<SectionResult> {
  const problems: string[] = [];
  const { clients, rates, seconds } = options.sweep;

  const floorServer = await startServer({ label: 'sweep-floor', command: floorCommand('fanout'), env: {}, raiseFdLimit: true });
  labelProcess(floorServer.pid, 'server');
  const floorProblems: string[] = [];
  const floor = await sweep(floorServer, 1, 'f', async () => undefined, floorProblems);
  await floorServer.stop();
  problems.push(...floorProblems.map((p) => `fan-out floor: ${p}`));

  const db = await createDatabase('sweep');
  const topology = uniqueTopology();
  const server = await startServer({
    label: 'sweep',
    env: { DATABASE_URL: db.url, RABBITMQ_URL, RABBITMQ_EXCHANGE: topology.exchange, RABBITMQ_CHANGELOG_QUEUE: topology.changelogQueue },
    profileDir,
    raiseFdLimit: true,
  });
  labelProcess(server.pid, 'server');
  const product = await createUnlimitedProduct(server.url);
  const service = await sweep(
    server,
    product,
    's',
    async (step) => {
      const pipeline = await waitForPipeline(db, undefined, 30_000);
      expect(problems, pipeline.complete, `after ${step.ordersPerSecond} orders/s the pipeline is incomplete: ${JSON.stringify(pipeline)}`);
    },
    problems,
  );
  expect(problems, (await server.stop()) === 0, 'the server did not exit cleanly');
  await db.drop();

  const best = (steps: Step[]) => Math.max(0, ...steps.filter(within).map((s) => s.ordersPerSecond));
  const describe = (steps: Step[]) =>
    steps.map((s) => `${rate(s.ordersPerSecond)}/s p99 ${ms(s.p99)}${s.lost ? ` lost ${s.lost}` : ''}`).join(', ');
  const row: Row = {
    figure: `highest order rate with ${clients} WS clients' p99 ≤ ${TARGETS.sweepP99Ms} ms (${seconds} s per rate)`,
    value: `${rate(best(service))} orders/s (${describe(service)})`,
    limit: `fan-out floor ${rate(best(floor))} orders/s (${describe(floor)})`,
    ratio: best(floor) > 0 ? best(service) / best(floor) : undefined,
    target: 'reported',
    pass: undefined,
  };
  return { rows: [row], problems, details: { clients, seconds, service, floor } };

  async function sweep(
    target: ServerProcess,
    productId: number,
    tag: string,
    after: (step: Step) => Promise<void>,
    stepProblems: string[],
  ): Promise<Step[]> {
    const steps: Step[] = [];
    for (const [i, ordersPerSecond] of rates.entries()) {
      const scenario: NotifyScenario = { name: `sweep ${ordersPerSecond}/s`, clients, ordersPerSecond, seconds, p99FloorFactor: Infinity };
      const run = await notifyRun(target, productId, `${RUN_ID}w${tag}${i}`, scenario, options, stepProblems);
      const step = { ordersPerSecond, p50: run.latency.p50, p99: run.latency.p99, lost: run.lost };
      steps.push(step);
      await after(step);
      if (!within(step)) break;
    }
    return steps;
  }
}

const within = (step: Step) => step.p99 <= TARGETS.sweepP99Ms && step.lost === 0;

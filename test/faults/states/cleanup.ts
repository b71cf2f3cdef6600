import type { TestContext } from 'vitest';

type Step = () => Promise<unknown>;

/**
 * What tests must undo, kept per test so that concurrent tests never undo each other's: each test's steps run in
 * reverse when it finishes, and afterAll runs whatever is still left (a test that was cut short).
 */
export function cleanups() {
  const pending = new Set<Step[]>();
  const run = async (steps: Step[]) => {
    for (const step of steps.splice(0).reverse()) await step().catch((error: unknown) => console.error('cleanup failed:', error));
    pending.delete(steps);
  };
  return {
    /** Registers a test; returns how it defers an undo step. */
    forTest(context: TestContext): (step: Step) => void {
      const steps: Step[] = [];
      pending.add(steps);
      context.onTestFinished(() => run(steps));
      return (step) => void steps.push(step);
    },
    async all(): Promise<void> {
      for (const steps of [...pending]) await run(steps);
    },
  };
}

import { cpSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { TestProject } from 'vitest/node';
import { BUNDLE_OPTIONS } from '../../scripts/bundle.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
/**
 * One folder below the root, as src/ and dist/ are, so the paths in src/paths.ts resolve the same from it;
 * one per run, so two runs at once in one checkout never start each other's half-written bundle.
 */
const PREFIX = '.test-build-';
const folder = path.join(root, `${PREFIX}${process.pid}`);

/** Removes the folders of runs that ended without their teardown (killed). */
function removeLeftovers(): void {
  for (const name of readdirSync(root)) {
    const pid = Number(name.slice(PREFIX.length));
    if (name.startsWith(PREFIX) && !isAlive(pid)) rmSync(path.join(root, name), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * vitest globalSetup: bundles src/server.ts once per run, as `npm run build` bundles it into dist/server.js
 * (scripts/bundle.ts), for the tests that run the service as its own process (test/helpers/process.ts).
 * A process then starts in about 0.5 s and 0.7 s of CPU instead of 1.3 s and 1.8 s through tsx, which
 * compiles every module again in each process; there are about a hundred such starts a run.
 */
export default async function setup(project: TestProject): Promise<() => void> {
  removeLeftovers();
  // Copied, not linked: tools that copy the project (Stryker's sandboxes) refuse a link to a folder.
  cpSync(path.join(root, 'src', 'db', 'migrations'), path.join(folder, 'db', 'migrations'), { recursive: true });
  const server = path.join(folder, 'server.js');
  await build({ ...BUNDLE_OPTIONS, absWorkingDir: root, outfile: server });
  project.provide('serverBuild', server);
  return () => rmSync(folder, { recursive: true, force: true });
}

declare module 'vitest' {
  export interface ProvidedContext {
    serverBuild: string;
  }
}

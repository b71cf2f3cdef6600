import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * A built console as `npm run build` lays it out (a page and content-named assets), for tests of how its
 * files are served: `npm test` on a fresh clone runs before any build.
 */
export function builtConsoleFixture(): { root: string; asset: string; remove(): void } {
  const root = mkdtempSync(path.join(tmpdir(), 'console-fixture-'));
  const asset = 'index-Ab12Cd34.js';
  mkdirSync(path.join(root, 'assets'));
  writeFileSync(path.join(root, 'index.html'), `<!doctype html><title>Orders</title><script type="module" src="/assets/${asset}"></script>`);
  writeFileSync(path.join(root, 'assets', asset), 'export {};\n');
  return { root, asset, remove: () => rmSync(root, { recursive: true, force: true }) };
}

import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Debian's Chromium: no browser is downloaded (.ci/run installs it with apt-get). */
export const CHROMIUM = '/usr/bin/chromium';

/** Skipped only on a machine without Chromium that is not CI; in CI a missing browser fails the tests. */
export const skipBrowser = !existsSync(CHROMIUM) && !process.env.CI;
if (skipBrowser) console.error(`note: ${CHROMIUM} is missing, so the console's browser tests are skipped (apt-get install chromium; CI installs it and runs them)`);

/** Screenshots kept as test artifacts (gitignored). */
export const ARTIFACTS = path.join(root, 'test-artifacts', 'console');

/** Builds the console as `npm run build` does, into a folder of this test's own. */
export async function buildConsole(): Promise<{ dir: string; remove(): void }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'console-'));
  await promisify(execFile)(process.execPath, [path.join(root, 'node_modules/vite/bin/vite.js'), 'build', 'web', '--outDir', dir, '--emptyOutDir', '--logLevel', 'warn'], { cwd: root });
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Headless Chromium on a fresh profile (--user-data-dir), removed on close. */
export async function launchChromium(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'chromium-profile-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1360, height: 900 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/** Fails the test on any error the page throws or logs. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // A refused or cut request is the browser reporting what the test did on purpose.
    if (message.type() === 'error' && !/Failed to load resource|WebSocket connection/.test(message.text())) errors.push(`console: ${message.text()}`);
  });
  return errors;
}

export async function screenshot(page: Page, name: string, fullPage = true): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  // From the top: a full-page shot of a scrolled page draws the sticky bar in the middle.
  await page.evaluate('window.scrollTo(0, 0)');
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage });
}

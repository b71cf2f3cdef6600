import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { CONSOLE_CSP } from '../../src/http/console.js';
import { securityOptions } from '../../src/http/security.js';
import { builtConsoleFixture } from '../helpers/console-fixture.js';

let app: Awaited<ReturnType<typeof buildApp>> | undefined;
let emptyRoot: string | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
  if (emptyRoot) rmSync(emptyRoot, { recursive: true, force: true });
  emptyRoot = undefined;
});

const start = async (consoleRoot: string, logger = pino({ level: 'silent' })) => {
  app = await buildApp({ logger, security: securityOptions(loadConfig({ API_KEYS: 'k1' })), readiness: {}, consoleRoot });
  return app;
};

describe('the console\'s files', () => {
  it('when the console is built, then its files are served without a key, the page checked each time and assets kept for a year, under the console\'s policy', async () => {
    const built = builtConsoleFixture();
    onTestFinished(() => built.remove());
    await start(built.root);
    const { asset } = built;

    const page = await app!.inject({ method: 'GET', url: '/' });
    const file = await app!.inject({ method: 'GET', url: `/assets/${asset}` });

    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.headers['cache-control']).toBe('no-cache');
    expect(page.headers['content-security-policy']).toBe(CONSOLE_CSP);
    expect(file.statusCode).toBe(200);
    expect(file.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(file.headers['content-security-policy']).toBe(CONSOLE_CSP);
    expect((await app!.inject({ method: 'GET', url: '/assets/no-such-file.js' })).statusCode).toBe(401);
  });

  it('when the console folder holds a dot file, or gets a file after start, then neither is served: only what was built is public', async () => {
    const built = builtConsoleFixture();
    onTestFinished(() => built.remove());
    writeFileSync(path.join(built.root, '.env'), 'SECRET=1');
    await start(built.root);
    writeFileSync(path.join(built.root, 'assets', 'late.js'), 'alert(1)');

    const answers = await Promise.all(['/.env', '/assets/late.js'].map((url) => app!.inject({ method: 'GET', url })));

    expect(answers.map((a) => a.statusCode)).toEqual([401, 401]);
    expect(answers.map((a) => a.json().code)).toEqual(['unauthorized', 'unauthorized']);
  });

  it('when the console is not built, then GET / is 503 saying how to build it, and a warning says so at start', async () => {
    emptyRoot = mkdtempSync(path.join(tmpdir(), 'no-console-'));
    let logged = '';
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logged += chunk.toString();
        done();
      },
    });
    await start(emptyRoot, pino({ level: 'warn' }, sink));

    const page = await app!.inject({ method: 'GET', url: '/' });

    expect(page.statusCode).toBe(503);
    // The page is not part of the API: the OpenAPI document does not list it.
    expect(Object.keys((await app!.inject({ method: 'GET', url: '/openapi.json' })).json().paths)).not.toContain('/');
    expect(page.json()).toMatchObject({ code: 'service_unavailable', detail: 'The console is not built: run `npm run build` (npm start does it).' });
    const warnings = logged.trim().split('\n').map((line) => JSON.parse(line) as { level: number; msg: string; root?: string });
    expect(warnings).toContainEqual(
      expect.objectContaining({ level: 40, root: emptyRoot, msg: 'the console is not built: GET / answers 503 until `npm run build` has run' }),
    );
  });
});

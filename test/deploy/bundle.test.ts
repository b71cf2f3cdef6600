import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { BUNDLE_OPTIONS, EXTERNAL } from '../../scripts/bundle.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const manifest = JSON.parse(readFileSync(`${root}/package.json`, 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
/** Loaded only inside a try (pretty logs in a terminal, ws's native add-ons) or by pg when asked for its native binding: an image without them still starts. */
const OPTIONAL = new Set(['pino-pretty', 'pg-native', 'bufferutil', 'utf-8-validate']);
const packageOf = (specifier: string) => specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/');

describe('the bundled server (npm run build → dist/server.js)', () => {
  it('when a package is left to node_modules, then the production image has it: it is a dependency, or one the server can start without', () => {
    for (const specifier of EXTERNAL) {
      const name = packageOf(specifier);
      if (OPTIONAL.has(name)) expect(manifest.dependencies[name], name).toBeUndefined();
      else expect(manifest.dependencies[name], `${name} is left out of the bundle but is not a production dependency`).toBeDefined();
    }
  });

  it('when the server is bundled, then there is no warning, and everything it imports at run time is node\'s own or a package left out on purpose', async () => {
    const result = await build({ ...BUNDLE_OPTIONS, absWorkingDir: root, write: false, metafile: true, logLevel: 'silent' });

    expect(result.errors).toEqual([]);
    expect(result.warnings.map((w) => w.text)).toEqual([]);
    const imported = new Set(
      Object.values(result.metafile.outputs).flatMap((output) => output.imports.filter((i) => i.external).map((i) => i.path)),
    );
    const node = new Set(builtinModules);
    const unexpected = [...imported].filter((path) => !path.startsWith('node:') && !node.has(path) && !EXTERNAL.some((e) => packageOf(e) === packageOf(path)));
    expect(unexpected).toEqual([]);
    // The dynamic imports stay dynamic: the embedded default starts without the MongoDB or RabbitMQ driver's code.
    expect([...imported]).toEqual(expect.arrayContaining(['@electric-sql/pglite', 'mongodb', 'amqplib']));
  }, 60_000);
});

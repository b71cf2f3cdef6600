// Bundles the server into one file, dist/server.js: Node then reads one file instead of about a thousand,
// which takes a fifth off the time to start (npm run bench's start-up row). tsc has already type-checked
// and emitted dist/ (dist/cli.js and the rest stay as they are); this only replaces its dist/server.js.
import { build, type BuildOptions } from 'esbuild';
import { pathToFileURL } from 'node:url';

/**
 * Left to node_modules: packages that load files or WebAssembly beside their own code (PGlite, the docs
 * UI's assets), optional ones loaded only when configured (MongoDB, RabbitMQ, pretty logs), and pg's
 * and ws's optional native add-ons (each loaded inside a try; bundled, their prebuilt binaries would not be found).
 */
export const EXTERNAL = [
  '@electric-sql/pglite',
  'drizzle-orm/pglite',
  'drizzle-orm/pglite/*',
  '@fastify/swagger-ui',
  'mongodb',
  'amqplib',
  'pino-pretty',
  'pg-native',
  'bufferutil',
  'utf-8-validate',
];

export const BUNDLE_OPTIONS: BuildOptions = {
  entryPoints: ['src/server.ts'],
  outfile: 'dist/server.js',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  // dist/server.js.map puts profiles (bench/profile.ts) and, with node --enable-source-maps, stack traces back in their own files.
  sourcemap: true,
  logLevel: 'warning',
  external: EXTERNAL,
  // The CommonJS packages inside the bundle call require().
  banner: { js: "import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);" },
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await build(BUNDLE_OPTIONS);

import { defineConfig } from 'vite';

// Built by `vite build web` (npm run build) into dist/console, which the service serves at /.
export default defineConfig({
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: { outDir: '../dist/console', emptyOutDir: true, target: 'es2022', reportCompressedSize: false },
  // `npm run console:dev`: the page with hot reload, the API from a service on the default port.
  server: {
    proxy: Object.fromEntries(
      ['/orders', '/products', '/metrics', '/readyz'].map((path) => [path, 'http://127.0.0.1:8001']).concat([['/ws', { target: 'ws://127.0.0.1:8001', ws: true } as never]]),
    ),
  },
});

import { fileURLToPath } from 'node:url';

// This module sits at the top of src/ and of dist/, where the bundled dist/server.js sits too, so these
// addresses hold whether the code runs from src (tsx), from tsc's output (dist/cli.js) or from the bundle.

/** The SQL migrations: src/db/migrations, copied to dist/db/migrations by `npm run build`. */
export const MIGRATIONS_FOLDER = fileURLToPath(new URL('./db/migrations', import.meta.url));

/** Where `npm run build` puts the console. */
export const CONSOLE_ROOT = fileURLToPath(new URL('../dist/console/', import.meta.url));

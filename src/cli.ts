import dotenv from 'dotenv';
import { loadConfig } from './config.js';
import { openDatabase } from './db/client.js';
import { lockDataDir } from './db/data-dir-lock.js';
import { migrate } from './db/migrate.js';
import { ConfigError } from './errors.js';
import { seedDemoCatalog } from './products/repository.js';

const COMMANDS = ['migrate', 'seed'] as const;

/** Operator commands: `migrate` brings the schema up to date; `seed` loads the demo catalog. */
async function main(command: string | undefined): Promise<void> {
  if (!COMMANDS.includes(command as (typeof COMMANDS)[number])) {
    throw new ConfigError(`usage: cli <${COMMANDS.join('|')}>`);
  }
  dotenv.config({ quiet: true });
  const config = loadConfig(process.env);
  // The embedded folder is the running service's while it runs: wait for it to stop, never write beside it.
  const lock = config.DATABASE_URL || config.DATA_DIR === ':memory:' ? undefined : await lockDataDir(config.DATA_DIR);
  const db = await openDatabase({ url: config.DATABASE_URL, dataDir: config.DATA_DIR, poolSize: 2 });
  try {
    await migrate(db);
    if (command === 'seed') {
      const added = await seedDemoCatalog(db.drizzle);
      process.stdout.write(`demo catalog: ${added} product(s) added\n`);
    } else {
      process.stdout.write(`schema is up to date (${db.kind})\n`);
    }
  } finally {
    await db.close();
    lock?.release();
  }
}

main(process.argv[2]).catch((error: unknown) => {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
});

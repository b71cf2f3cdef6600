import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { BenchDatabase } from './infra.js';
import { Samples, type LatencySummary } from './stats.js';
import type { Statement } from './statements.js';

export interface PgbenchRun {
  tps: number;
  transactions: number;
  failed: number;
  latency: LatencySummary;
  script: string;
}

/**
 * The order-creation statement as a pgbench script, prepared like the API's: parameters become pgbench
 * variables. pgbench has no string or uuid generator, so the event id is built from two random 63-bit
 * integers in SQL, the timestamp is a constant, and the absent idempotency key is a NULL literal.
 */
export function createOrderScript(statement: Statement): string {
  const uuid = `(lpad(to_hex(:h::bigint), 16, '0') || lpad(to_hex(:l::bigint), 16, '0'))`;
  const byParam: Record<string, (cast: string) => string> = {
    $1: (cast) => `:pid${cast}`,
    $2: (cast) => `:qty${cast}`,
    $3: (cast) => `:name${cast}`,
    $4: (cast) => `:email${cast}`,
    $5: (cast) => `:ts${cast}`,
    $6: (cast) => `${uuid}${cast}`,
    $7: (cast) => `NULL${cast}`,
    // The request id the service records with each order's event.
    $8: (cast) => `'pgbench'${cast}`,
  };
  return [
    '\\set qty random(1, 5)',
    '\\set h random(0, 9223372036854775806)',
    '\\set l random(0, 9223372036854775806)',
    `${toPgbenchSql(statement.text, byParam)};`,
    '',
  ].join('\n');
}

export function getOrderScript(statement: Statement): string {
  return ['\\set id random(:minid, :maxid)', `${toPgbenchSql(statement.text, { $1: (cast) => `:id${cast}` })};`, ''].join('\n');
}

/**
 * pgbench takes every `:word` for a variable, even inside a string literal, so literals holding a colon
 * (the timestamp format) become escape strings with the colon as \x3a: the same value to PostgreSQL.
 */
function toPgbenchSql(text: string, byParam: Record<string, (cast: string) => string>): string {
  const literalsSafe = text.replace(/'([^'\\]*)'/g, (literal, inner: string) =>
    inner.includes(':') ? `E'${inner.replaceAll(':', '\\x3a')}'` : literal,
  );
  return literalsSafe.replace(/\$(\d+)((?:::\w+)?)/g, (_match, n: string, cast: string) => {
    const replace = byParam[`$${n}`];
    if (!replace) throw new Error(`pgbench script: no variable for parameter $${n}`);
    return replace(cast);
  });
}

export interface PgbenchOptions {
  readonly db: BenchDatabase;
  readonly script: string;
  readonly variables: Record<string, string | number>;
  readonly clients: number;
  readonly seconds: number;
  /** Folder for the script and the per-transaction logs. */
  readonly dir: string;
  readonly label: string;
  /** Per-transaction latencies (from pgbench's log); off for warm-ups. */
  readonly log: boolean;
}

/** pgbench -M prepared at a fixed client count for a fixed time. */
export async function runPgbench(o: PgbenchOptions): Promise<PgbenchRun> {
  const scriptFile = path.join(o.dir, `${o.label}.sql`);
  writeFileSync(scriptFile, o.script);
  const logPrefix = path.join(o.dir, `${o.label}-log`);
  const args = [
    '--no-vacuum',
    '--protocol=prepared',
    `--client=${o.clients}`,
    '--jobs=2',
    `--time=${o.seconds}`,
    `--file=${scriptFile}`,
    ...Object.entries(o.variables).map(([k, v]) => `--define=${k}=${v}`),
    ...(o.log ? ['--log', `--log-prefix=${logPrefix}`] : []),
    o.db.url,
  ];
  const output = await run('pgbench', args, o.dir);
  const number = (re: RegExp) => {
    const match = re.exec(output);
    if (!match) throw new Error(`pgbench output has no ${re}:\n${output}`);
    return Number(match[1]);
  };
  const transactions = number(/number of transactions actually processed: (\d+)/);
  const failed = /number of failed transactions: (\d+)/.exec(output);
  const tps = number(/tps = ([\d.]+) \(without initial connection time\)/);
  const samples = new Samples(transactions);
  if (o.log) {
    for (const file of readdirSync(o.dir).filter((f) => f.startsWith(`${o.label}-log.`))) {
      for (const line of readFileSync(path.join(o.dir, file), 'utf8').split('\n')) {
        // client_id transaction_no time(us) script_no time_epoch time_us
        const us = Number(line.split(' ')[2]);
        if (line && Number.isFinite(us)) samples.add(us / 1000);
      }
    }
  }
  return { tps, transactions, failed: failed ? Number(failed[1]) : 0, latency: samples.summary(), script: o.script };
}

function run(command: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code === 0 && !/aborted/.test(output)) resolve(output);
      else reject(new Error(`${command} exited ${code}:\n${output}`));
    });
  });
}

import { randomUUID } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError } from '../errors.js';

export const LOCK_FILE = 'order-service.lock';

/** Who holds a data folder; `token` names this one holding, so a takeover can tell holdings apart. */
export interface LockHolder {
  pid: number;
  /** The process's start time (/proc/<pid>/stat field 22), so a reused pid is not mistaken for the holder. */
  started: string | null;
  host: string;
  token: string;
  since: string;
}

export interface DataDirLock {
  readonly holder: LockHolder;
  /** Removes the lock if it is still ours. */
  release(): void;
}

/** A start-up refusal naming DATA_DIR and its holder, which the server prints as one line. */
export class DataDirLockedError extends ConfigError {
  override name = 'DataDirLockedError';
  constructor(
    dataDir: string,
    readonly holder: LockHolder,
    lockPath: string,
  ) {
    const here = holder.host === hostname();
    const where = here ? '' : ` on host ${holder.host}`;
    super(
      `DATA_DIR=${dataDir} is in use by another order service process (pid ${holder.pid}${where}, since ${holder.since}): ` +
        `stop it or set DATA_DIR to another folder${here ? '' : `; if that process is gone, delete ${lockPath}`}`,
    );
  }
}

export interface LockOptions {
  /** How long to wait for another process that is taking over the same dead holding (default 5 s). */
  waitMs?: number;
  /** Runs between finding the holder dead and taking over: tests line racing processes up here. */
  beforeTakeover?: (dead: LockHolder) => Promise<void>;
}

type Takeover = { kind: 'taken' } | { kind: 'changed' } | { kind: 'busy'; breaker: LockHolder };

/**
 * Makes this process the only one using `dataDir`. The lock is a file created atomically (a
 * complete temporary file hard-linked into place, which fails if the name exists), never "check,
 * then write". A lock whose holder is dead (no such pid, or the pid now belongs to a process that
 * started at another time) is taken over. So that two processes taking over one dead holding
 * cannot both win, each must first create a "breaker" file named after that holding's token,
 * which only one can, and the breaker replaces the lock only if it still holds that token. A
 * breaker that dies mid-way is dead too, and the next level's breaker file may then be taken.
 */
export async function lockDataDir(dataDir: string, options: LockOptions = {}): Promise<DataDirLock> {
  mkdirSync(dataDir, { recursive: true });
  const lockPath = path.join(dataDir, LOCK_FILE);
  const me: LockHolder = {
    pid: process.pid,
    started: startTime(process.pid),
    host: hostname(),
    token: randomUUID(),
    since: new Date().toISOString(),
  };
  const deadline = Date.now() + (options.waitMs ?? 5000);
  for (;;) {
    if (createExclusive(lockPath, me)) break;
    const holder = readHolder(lockPath);
    if (holder === undefined) continue; // released in between
    if (isAlive(holder)) throw new DataDirLockedError(dataDir, holder, lockPath);
    await options.beforeTakeover?.(holder);
    const takeover = takeOver(lockPath, holder, me);
    if (takeover.kind === 'taken') break;
    // A live process is taking the same dead holding over; once it has, it is the holder we name.
    if (takeover.kind === 'busy' && Date.now() > deadline) throw new DataDirLockedError(dataDir, takeover.breaker, lockPath);
    await sleep(10);
  }
  removeBreakers(dataDir);
  return {
    holder: me,
    release() {
      // Only we, or a breaker once we are dead, change a lock that holds our token.
      if (readHolder(lockPath)?.token === me.token) unlinkSync(lockPath);
    },
  };
}

function takeOver(lockPath: string, dead: LockHolder, me: LockHolder): Takeover {
  for (let level = 0; ; level++) {
    const breaker = `${lockPath}.break-${dead.token}-${level}`;
    if (createExclusive(breaker, me)) {
      if (readHolder(lockPath)?.token !== dead.token) return { kind: 'changed' };
      writeComplete(`${lockPath}.${me.token}.new`, me, (file) => renameSync(file, lockPath));
      return { kind: 'taken' };
    }
    const other = readHolder(breaker);
    if (other === undefined) return { kind: 'changed' };
    if (isAlive(other)) return { kind: 'busy', breaker: other };
  }
}

/** Creates `file` holding `holder`, or returns false if it exists; readers never see it half-written. */
function createExclusive(file: string, holder: LockHolder): boolean {
  try {
    writeComplete(`${file}.${holder.token}.tmp`, holder, (tmp) => linkSync(tmp, file));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

function writeComplete(tmp: string, holder: LockHolder, publish: (tmp: string) => void): void {
  const fd = openSync(tmp, 'wx');
  try {
    writeSync(fd, JSON.stringify(holder));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    publish(tmp);
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // renamed into place
    }
  }
}

function readHolder(file: string): LockHolder | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const holder = JSON.parse(text) as Partial<LockHolder>;
  if (typeof holder.pid !== 'number' || typeof holder.token !== 'string' || typeof holder.host !== 'string') {
    throw new Error(`${file} is not an order service lock; remove it if no order service uses this folder`);
  }
  return holder as LockHolder;
}

/** Whether the holder may still run. A process on another host cannot be checked, so it counts as alive. */
export function isAlive(holder: LockHolder): boolean {
  if (holder.host !== hostname()) return true;
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const started = startTime(holder.pid);
  return holder.started === null || started === null || started === holder.started;
}

/** Field 22 of /proc/<pid>/stat, the process's start in clock ticks since boot; null where there is no /proc. */
export function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

const BREAKER = /^order-service\.lock\.break-[0-9a-f-]{36}-\d+$/;

/** Breaker files of holdings that are gone: harmless, since a breaker re-checks the lock, but litter. Never another's temporary file. */
function removeBreakers(dataDir: string): void {
  for (const name of readdirSync(dataDir)) {
    if (!BREAKER.test(name)) continue;
    try {
      unlinkSync(path.join(dataDir, name));
    } catch {
      // another process removed it first
    }
  }
}

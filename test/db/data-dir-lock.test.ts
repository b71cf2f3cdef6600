import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DataDirLockedError, LOCK_FILE, lockDataDir, startTime, type LockHolder } from '../../src/db/data-dir-lock.js';

const dirs: string[] = [];
const children: ChildProcess[] = [];
const dataDir = () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'order-service-lock-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => children.splice(0).forEach((c) => c.kill('SIGKILL')));
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A pid that was a process a moment ago and is not any more. */
function deadPid(): number {
  const { pid } = spawnSync(process.execPath, ['-e', '']);
  return pid!;
}

function liveProcess(): number {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
  children.push(child);
  return child.pid!;
}

const holder = (pid: number, overrides: Partial<LockHolder> = {}): LockHolder => ({
  pid,
  started: startTime(pid),
  host: hostname(),
  token: randomUUID(),
  since: '2026-11-26T00:00:00.000Z',
  ...overrides,
});

const leave = (file: string, h: LockHolder) => writeFileSync(file, JSON.stringify(h));

describe('the data folder lock', () => {
  it('when the folder is free, then the lock is taken; a second taker is refused naming DATA_DIR and the holder; after release it is free again', async () => {
    const dir = dataDir();
    const lock = await lockDataDir(dir);
    const refused = await lockDataDir(dir).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(DataDirLockedError);
    expect((refused as Error).message).toBe(
      `DATA_DIR=${dir} is in use by another order service process (pid ${process.pid}, since ${lock.holder.since}): stop it or set DATA_DIR to another folder`,
    );
    lock.release();
    expect(existsSync(path.join(dir, LOCK_FILE))).toBe(false);
    (await lockDataDir(dir)).release();
  });

  it('when the lock was left by a process that is gone, then it is taken over', async () => {
    const dir = dataDir();
    leave(path.join(dir, LOCK_FILE), holder(deadPid(), { started: '1' }));
    const lock = await lockDataDir(dir);
    expect(lock.holder.pid).toBe(process.pid);
    await expect(lockDataDir(dir)).rejects.toThrow(`pid ${process.pid}`);
    lock.release();
  });

  it.skipIf(!existsSync('/proc/self/stat'))('when the lock names a live pid that started at another time, then the pid was reused and the lock is taken over', async () => {
    const dir = dataDir();
    const other = liveProcess();
    leave(path.join(dir, LOCK_FILE), holder(other, { started: String(Number(startTime(other)) - 100) }));
    const lock = await lockDataDir(dir);
    expect(lock.holder.pid).toBe(process.pid);
    lock.release();
  });

  it('when the lock names a live process, then it is refused naming that pid', async () => {
    const dir = dataDir();
    const other = liveProcess();
    leave(path.join(dir, LOCK_FILE), holder(other));
    await expect(lockDataDir(dir)).rejects.toThrow(`(pid ${other}, since`);
  });

  it('when the lock was left on another host, then it is refused naming the host and the file to delete if that process is gone', async () => {
    const dir = dataDir();
    leave(path.join(dir, LOCK_FILE), holder(deadPid(), { host: 'elsewhere' }));
    await expect(lockDataDir(dir)).rejects.toThrow(`on host elsewhere, since 2026-11-26T00:00:00.000Z): stop it or set DATA_DIR to another folder; if that process is gone, delete ${path.join(dir, LOCK_FILE)}`);
  });

  it('when a process died half-way through taking over a dead lock, then the next one still takes it over and the leftovers go', async () => {
    const dir = dataDir();
    const dead = holder(deadPid());
    leave(path.join(dir, LOCK_FILE), dead);
    leave(path.join(dir, `${LOCK_FILE}.break-${dead.token}-0`), holder(deadPid()));
    const lock = await lockDataDir(dir);
    expect(lock.holder.pid).toBe(process.pid);
    expect(readdirSync(dir)).toEqual([LOCK_FILE]);
    lock.release();
  });

  it('when a live process is taking over the same dead lock, then this one waits, and is refused naming that process', async () => {
    const dir = dataDir();
    const dead = holder(deadPid());
    const breaker = liveProcess();
    leave(path.join(dir, LOCK_FILE), dead);
    leave(path.join(dir, `${LOCK_FILE}.break-${dead.token}-0`), holder(breaker));
    const started = Date.now();
    await expect(lockDataDir(dir, { waitMs: 300 })).rejects.toThrow(`(pid ${breaker}, since`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
  });
});

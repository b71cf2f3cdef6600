import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { LOCK_FILE } from '../../src/db/data-dir-lock.js';
import { orderInput } from '../helpers/factories.js';
import { spawnService, type ServiceProcess } from '../helpers/process.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dirs: string[] = [];
const dataDir = () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'order-service-lock-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const postOrder = async (url: string) => {
  const response = await fetch(`${url}/orders/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(orderInput()) });
  expect(response.status).toBe(201);
  return (await response.json()) as { id: number };
};

/** Starts a service that must refuse to start; resolves with what it printed. */
async function refusedStart(DATA_DIR: string): Promise<string> {
  const started = await spawnService({ DATA_DIR }).then(
    (service) => service,
    (error: unknown) => (error as Error).message,
  );
  if (typeof started !== 'string') {
    await started.kill('SIGKILL');
    throw new Error('a second process started on a data folder in use');
  }
  return started;
}

/** The one line a refused start prints, without spawnService's preamble. */
const refusal = (message: string) => message.split('\n').filter((line) => line.startsWith('order service: '));

describe('one process per embedded data folder', () => {
  it('when a second service starts on a folder in use, then it exits naming DATA_DIR and the holder; the first keeps serving, and keeps what it acknowledged', async () => {
    const DATA_DIR = dataDir();
    const first = await spawnService({ DATA_DIR });
    let restarted: ServiceProcess | undefined;
    try {
      const before = await postOrder(first.url);
      const message = await refusedStart(DATA_DIR);
      expect(message).toMatch(/service exited \(1\) before listening/);
      expect(refusal(message)).toEqual([`order service: DATA_DIR=${DATA_DIR} is in use by another order service process (pid ${first.child.pid}, since ${sinceOf(message)}): stop it or set DATA_DIR to another folder`]);
      const after = await postOrder(first.url);
      expect(await first.stop()).toBe(0);
      expect(existsSync(path.join(DATA_DIR, LOCK_FILE))).toBe(false);

      restarted = await spawnService({ DATA_DIR });
      for (const order of [before, after]) expect((await fetch(`${restarted.url}/orders/${order.id}`)).status).toBe(200);
    } finally {
      await first.stop();
      await restarted?.stop();
    }
  });

  it('when the holder is SIGKILLed, then the next service takes the folder over, and a third is refused naming the new holder', async () => {
    const DATA_DIR = dataDir();
    const first = await spawnService({ DATA_DIR });
    const order = await postOrder(first.url);
    await first.kill('SIGKILL');
    const second = await spawnService({ DATA_DIR });
    try {
      expect((await fetch(`${second.url}/orders/${order.id}`)).status).toBe(200);
      expect(refusal(await refusedStart(DATA_DIR))).toEqual([expect.stringContaining(`(pid ${second.child.pid}, since`)]);
    } finally {
      await second.stop();
    }
  });

  it('when several processes find a killed service\'s lock at the same moment, then exactly one takes it over, and the others name it', async () => {
    const DATA_DIR = dataDir();
    const killed = await spawnService({ DATA_DIR });
    await killed.kill('SIGKILL');
    for (let round = 0; round < 3; round++) {
      const barrier = mkdtempSync(path.join(tmpdir(), 'order-service-race-'));
      dirs.push(barrier);
      const racers = Array.from({ length: 3 }, () => race(DATA_DIR, barrier, 3));
      const results = await Promise.all(racers.map((r) => r.result));
      const winners = results.filter((r) => r.won);
      expect(winners).toHaveLength(1);
      for (const loser of results.filter((r) => !r.won)) expect(loser.message).toContain(`(pid ${winners[0]!.pid}, since`);
      // The winner dies holding the lock: the next round races for a dead holder's lock again.
      await Promise.all(racers.map((r) => r.kill()));
    }
  });
});

function sinceOf(message: string): string {
  return /since ([^)]+)\)/.exec(message)?.[1] ?? '(none)';
}

interface RaceResult {
  won: boolean;
  pid: number;
  message?: string;
}

/**
 * A process that tries to lock `dir`; once it has found the holder dead it waits until all
 * `racers` have, so that they take over at the same moment. If it wins, it holds the lock until killed.
 */
function race(dir: string, barrier: string, racers: number): { result: Promise<RaceResult>; kill(): Promise<void> } {
  const code = `
    import { readdirSync, writeFileSync } from 'node:fs';
    import { lockDataDir } from './src/db/data-dir-lock.ts';
    const barrier = ${JSON.stringify(barrier)};
    const lineUp = async () => {
      writeFileSync(barrier + '/' + process.pid, '');
      while (readdirSync(barrier).length < ${racers}) await new Promise((resolve) => setTimeout(resolve, 1));
    };
    try {
      await lockDataDir(${JSON.stringify(dir)}, { beforeTakeover: lineUp });
      console.log(JSON.stringify({ won: true, pid: process.pid }));
      setInterval(() => {}, 60_000);
    } catch (error) {
      console.log(JSON.stringify({ won: false, pid: process.pid, message: error.message }));
    }`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const result = new Promise<RaceResult>((resolve, reject) => {
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('\n')) resolve(JSON.parse(output) as RaceResult);
    });
    void exited.then(() => reject(new Error(`racer ${child.pid} exited without an answer: ${output}`)));
  });
  return {
    result,
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

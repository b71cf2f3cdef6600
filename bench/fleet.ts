import type { ChildProcess } from 'node:child_process';
import { labelProcess } from './machine.js';
import { onCleanup } from './infra.js';
import { terminate, spawnNode } from './process.js';
import { ROOT } from './server.js';
import type { LatencySummary } from './stats.js';

export type FleetCommand =
  /** `measureFrom`: epoch ms from which envelopes count for latency; Infinity (sent as null) for not yet. */
  | { cmd: 'connect'; url: string; count: number; concurrency: number; capacity: number; measureFrom: number }
  | { cmd: 'measure-from'; at: number }
  | { cmd: 'status' }
  | { cmd: 'report' }
  | { cmd: 'close' };

export interface FleetReply {
  open?: number;
  failed?: number;
  ms?: number;
  unexpectedCloses?: number;
  received?: number;
  duplicates?: number;
  checked?: number;
  problems?: string[];
  latency?: LatencySummary;
  perSeq?: number[];
  worstBySecond?: number[];
  error?: string;
}

/** WebSocket clients in a process of their own (bench/ws-clients.ts), so they do not share the bench's event loop. */
export interface Fleet {
  readonly pid: number;
  send(command: FleetCommand): Promise<FleetReply>;
  close(): Promise<void>;
}

export async function startFleet(label: string): Promise<Fleet> {
  const child: ChildProcess = spawnNode({
    args: ['--import', 'tsx', 'bench/ws-clients.ts'],
    cwd: ROOT,
    env: {},
    raiseFdLimit: true,
    ipc: true,
  });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  labelProcess(child.pid!, 'ws clients');
  const stop = onCleanup(`stop ${label}`, async () => void (await terminate(child, 5000)));
  let asked = 0;
  const pending = new Map<number, { resolve: (r: FleetReply) => void; reject: (e: Error) => void }>();
  child.on('message', (message: FleetReply & { id: number }) => {
    const waiter = pending.get(message.id);
    pending.delete(message.id);
    if (message.error) waiter?.reject(new Error(`${label}: ${message.error}`));
    else waiter?.resolve(message);
  });
  child.once('exit', (code) => {
    for (const waiter of pending.values()) waiter.reject(new Error(`${label} exited (${code}):\n${output}`));
    pending.clear();
  });
  return {
    pid: child.pid!,
    send(command) {
      const id = ++asked;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        child.send({ ...command, id });
      });
    },
    async close() {
      if (child.connected) {
        child.send({ cmd: 'close', id: ++asked });
      }
      await stop();
    },
  };
}

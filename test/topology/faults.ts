import { seededRandom, sleep } from '../faults/crash/http.js';
import { waitReady, type Member, type Role, type Topology } from './harness.js';

export const FAULT_KINDS = ['kill api', 'kill notifier', 'kill changelog', 'RabbitMQ cut for all', 'PostgreSQL cut for all', "notifier's RabbitMQ cut"] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface Fault {
  kind: FaultKind;
  /** Which process, for kills. */
  target?: string;
  /** From the start of the load. */
  atMs: number;
  /** How long it lasted: the cut, or kill to ready again. */
  tookMs: number;
}

const MAX_FAULTS = 200;
const KILLS: readonly FaultKind[] = ['kill api', 'kill notifier', 'kill changelog'];
const CUTS: readonly FaultKind[] = ['RabbitMQ cut for all', 'PostgreSQL cut for all', "notifier's RabbitMQ cut"];

/**
 * Two lanes at once, kills and cuts, so that a kill's restart (seconds of start-up) may meet a cut.
 * Each lane applies its kinds once per round in a seeded order, one at a time, with seeded gaps and
 * lengths; the first round always completes, so that every kind happens in a short run, and later
 * rounds start only while `untilMs` has not passed since `startedAt`. A killed role is started again
 * (on a new port) and waited for; each cut is restored before the lane's next fault.
 */
export async function runFaults(topology: Topology, random: () => number, startedAt: number, untilMs: number): Promise<Fault[]> {
  const faults: Fault[] = [];
  const elapsed = () => performance.now() - startedAt;
  const lane = async (kinds: readonly FaultKind[], laneRandom: () => number) => {
    const pick = <T>(items: readonly T[]): T => items[Math.floor(laneRandom() * items.length)]!;
    for (let round = 0; faults.length < MAX_FAULTS && (round === 0 || elapsed() < untilMs); round++) {
      for (const kind of shuffle([...kinds], laneRandom)) {
        await sleep(300 + laneRandom() * 1_200);
        if (round > 0 && elapsed() > untilMs) return;
        const atMs = elapsed();
        const target = kind.startsWith('kill ') ? pick(topology.byRole(kind.slice(5) as Role)) : undefined;
        await apply(topology, kind, target, laneRandom);
        faults.push({ kind, ...(target ? { target: target.name } : {}), atMs, tookMs: elapsed() - atMs });
      }
    }
  };
  // Each lane has its own sequence, so that one lane's timing never shifts the other's choices.
  const [killSeed, cutSeed] = [random(), random()].map((r) => Math.floor(r * 2 ** 31));
  await Promise.all([lane(KILLS, seededRandom(killSeed!)), lane(CUTS, seededRandom(cutSeed!))]);
  return faults.sort((a, b) => a.atMs - b.atMs);
}

async function apply(topology: Topology, kind: FaultKind, target: Member | undefined, random: () => number): Promise<void> {
  const members = [...topology.members.values()];
  const notifiers = topology.byRole('notifier');
  switch (kind) {
    case 'kill api':
    case 'kill notifier':
    case 'kill changelog':
      await target!.kill();
      await sleep(random() * 500);
      await target!.start();
      await waitReady(target!, 30_000);
      return;
    case 'RabbitMQ cut for all':
      return cutFor(members.map((m) => m.rabbitmq), 2_000 + random() * 2_000);
    case 'PostgreSQL cut for all':
      return cutFor(members.map((m) => m.postgres), 1_500 + random() * 1_500);
    case "notifier's RabbitMQ cut":
      // The api processes keep shipping meanwhile: what the notifier's queue misses, it must fill from the log.
      return cutFor(notifiers.map((m) => m.rabbitmq), 2_000 + random() * 2_000);
  }
}

async function cutFor(proxies: { cut(): void; restore(): Promise<void> }[], ms: number): Promise<void> {
  proxies.forEach((p) => p.cut());
  await sleep(ms);
  for (const p of proxies) await p.restore();
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

export function faultSummary(faults: readonly Fault[]): string {
  const byKind = new Map<string, number>();
  for (const f of faults) byKind.set(f.kind, (byKind.get(f.kind) ?? 0) + 1);
  return `${faults.length} faults (${[...byKind].map(([k, n]) => `${k} ×${n}`).join(', ')})`;
}

export function faultTimeline(faults: readonly Fault[]): string {
  return faults.map((f) => `${(f.atMs / 1000).toFixed(1)}s ${f.kind}${f.target ? ` (${f.target})` : ''} ${(f.tookMs / 1000).toFixed(1)}s`).join('; ');
}

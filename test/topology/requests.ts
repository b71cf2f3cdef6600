import { call, CutOff, sleep, type Reply } from '../faults/crash/http.js';
import type { Member } from './harness.js';

/** Past this an answer breaks invariant (8), whatever its status. */
export const SLOW_MS = 5_000;
const EXAMPLES = 10;

/**
 * Every request the writers send goes through here: it picks a live `api` process, times the
 * answer and holds it to invariant (8): no 5xx but 503, and none slower than 5 s.
 */
export class Requests {
  total = 0;
  /** Requests that got no status: the process died under them, or its port was gone. */
  cutOff = 0;
  readonly byStatus = new Map<number, number>();
  readonly byApi = new Map<string, number>();
  serverErrors = 0;
  slow = 0;
  slowestMs = 0;
  readonly problems: string[] = [];

  constructor(
    private readonly apis: readonly Member[],
    private readonly random: () => number,
  ) {}

  get unavailable(): number {
    return this.byStatus.get(503) ?? 0;
  }

  /** A live api process at random; waits (bounded by `halted`) while every one is down. */
  async pickApi(halted: Promise<void>): Promise<Member | undefined> {
    const up = this.apis.filter((m) => m.url !== undefined);
    if (up.length > 0) return up[Math.floor(this.random() * up.length)];
    const first = await Promise.race([...this.apis.map((m) => m.whenUp().then(() => m)), halted.then(() => undefined)]);
    return first;
  }

  /** Sends one request to a live api; undefined when it was cut off (no status). */
  async send(halted: Promise<void>, method: 'GET' | 'POST' | 'PATCH', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply | undefined> {
    const api = await this.pickApi(halted);
    const base = api?.url;
    if (!api || !base) {
      await sleep(50);
      return undefined;
    }
    this.total++;
    this.byApi.set(api.name, (this.byApi.get(api.name) ?? 0) + 1);
    const started = performance.now();
    let reply: Reply | undefined;
    try {
      reply = await call(base, method, path, body, headers);
    } catch (error) {
      if (!(error instanceof CutOff)) throw error;
      this.cutOff++;
    }
    const ms = performance.now() - started;
    this.slowestMs = Math.max(this.slowestMs, ms);
    const label = `${method} ${path.replace(/\d+/g, '{id}')} on ${api.name}`;
    if (ms > SLOW_MS) {
      this.slow++;
      this.problem(`${label} took ${(ms / 1000).toFixed(1)} s (${reply ? reply.status : 'no answer'})`);
    }
    if (!reply) return undefined;
    this.byStatus.set(reply.status, (this.byStatus.get(reply.status) ?? 0) + 1);
    if (reply.status >= 500 && reply.status !== 503) {
      this.serverErrors++;
      this.problem(`${label} answered ${reply.status} ${problemCode(reply) ?? reply.body?.slice(0, 120)}`);
    }
    return reply;
  }

  summary(): string {
    const statuses = [...this.byStatus].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`).join(' ');
    return `${this.total} requests (${[...this.byApi].map(([a, n]) => `${a} ${n}`).join(', ')}): ${statuses}; ${this.cutOff} cut off; slowest ${(this.slowestMs / 1000).toFixed(2)} s`;
  }

  private problem(message: string): void {
    if (this.problems.length < EXAMPLES) this.problems.push(message);
  }
}

export const problemCode = (reply: Reply): string | undefined => {
  try {
    return reply.body?.startsWith('{') ? (JSON.parse(reply.body) as { code?: string }).code : undefined;
  } catch {
    return undefined;
  }
};

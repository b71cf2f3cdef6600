/** Every request is bounded, so a hung service fails the test instead of stalling it. */
const REQUEST_TIMEOUT_MS = 10_000;

export interface Reply {
  status: number;
  headers: Headers;
  /** undefined when the status arrived but the body was cut off by a kill. */
  body: string | undefined;
}

/** The request never got a status: the process died (or hung) before answering. */
export class CutOff extends Error {
  override name = 'CutOff';
}

export async function call(base: string, method: 'GET' | 'POST' | 'PATCH', path: string, payload?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  let response: Response;
  try {
    response = await fetch(`${base}${path}`, {
      method,
      headers: { ...(payload === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      ...(payload === undefined ? {} : { body: JSON.stringify(payload) }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (error) {
    throw new CutOff(`${method} ${path}: ${error instanceof Error ? (error.cause as Error | undefined)?.message ?? error.message : String(error)}`);
  }
  const body = await response.text().catch(() => undefined);
  return { status: response.status, headers: response.headers, body };
}

/** Mulberry32: a small seeded generator, so a failing run's choices can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

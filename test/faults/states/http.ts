/** One answer as a client saw it: status (-1 when none came within the bound), the problem's code, Retry-After, time taken. */
export interface Answer {
  readonly status: number;
  readonly code?: string;
  readonly retryAfter: string | null;
  readonly contentType: string;
  readonly ms: number;
  readonly body: Record<string, unknown>;
}

const BOUND_MS = 8_000;

/** A request bounded in time; a network error or no answer within the bound is status -1, never a throw. */
export async function send(url: string, init: RequestInit = {}): Promise<Answer> {
  const startedAt = performance.now();
  try {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(BOUND_MS) });
    const text = await response.text();
    const body = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
    return {
      status: response.status,
      ...(typeof body.code === 'string' ? { code: body.code } : {}),
      retryAfter: response.headers.get('retry-after'),
      contentType: response.headers.get('content-type') ?? '',
      ms: performance.now() - startedAt,
      body,
    };
  } catch (error) {
    // fetch's TypeError says only "fetch failed": its cause says what the socket saw (ECONNRESET, ECONNREFUSED, ...).
    const cause = (error as Error).cause as { code?: string; message?: string } | undefined;
    const code = [(error as Error).name, cause?.code ?? cause?.message].filter(Boolean).join(' ');
    return { status: -1, code, retryAfter: null, contentType: '', ms: performance.now() - startedAt, body: {} };
  }
}

const json = (method: string, body: unknown): RequestInit => ({ method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

export const postOrder = (base: string, input: Record<string, unknown>) => send(`${base}/orders/`, json('POST', input));
export const patchOrder = (base: string, id: number, status: string) => send(`${base}/orders/${id}`, json('PATCH', { status }));
export const readyz = (base: string) => send(`${base}/readyz`);

/** The state of each dependency /readyz reports. */
export const checks = (answer: Answer) => (answer.body.checks ?? {}) as Record<string, string | undefined>;
export const databaseCheck = (answer: Answer) => checks(answer).database;
export const brokerCheck = (answer: Answer) => checks(answer).broker;

/** `status code (Retry-After)` for answers that are not what a test expects, so a failure names them. */
export const describeAnswer = (a: Answer) => `${a.status} ${a.code ?? ''} (Retry-After ${a.retryAfter ?? 'none'}, ${Math.round(a.ms)} ms)`;

/** A 503 as docs/api.md promises it: problem+json, the given code, a Retry-After of whole seconds. */
export function isUnavailable(answer: Answer, code: string): boolean {
  return (
    answer.status === 503 &&
    answer.code === code &&
    answer.contentType.startsWith('application/problem+json') &&
    /^[1-9]\d*$/.test(answer.retryAfter ?? '')
  );
}

/** Calls `fn` until `done` says yes or `timeoutMs` passes; returns the last result and how long it took. */
export async function until<T>(fn: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number, intervalMs = 100): Promise<{ value: T; ms: number; met: boolean }> {
  const startedAt = performance.now();
  for (;;) {
    const value = await fn();
    const ms = performance.now() - startedAt;
    if (done(value)) return { value, ms, met: true };
    if (ms > timeoutMs) return { value, ms, met: false };
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

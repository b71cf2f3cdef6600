import { apiKey } from './session';

/** An error answer of the API (RFC 9457), or a network failure dressed as one. */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly code: string,
    readonly errors: { field: string; message: string }[] = [],
  ) {
    super(`${title}: ${detail}`);
  }
}

/** Called when the API asks for a key, so the page can ask the operator for one. */
let onUnauthorized: () => void = () => {};
export const whenUnauthorized = (listener: () => void): void => void (onUnauthorized = listener);

export interface Answer<T> {
  body: T;
  headers: Headers;
}

export async function call<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer<T>> {
  const key = apiKey.get();
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers: {
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch {
    throw new ApiProblem(
      0,
      'The service cannot be reached',
      'Check the network or whether the service is running, then try again.',
      'network',
    );
  }
  if (response.ok) {
    const text = await response.text();
    return { body: (text ? JSON.parse(text) : undefined) as T, headers: response.headers };
  }
  if (response.status === 401) onUnauthorized();
  throw await problemOf(response);
}

export const get = async <T>(path: string): Promise<T> => (await call<T>('GET', path)).body;

async function problemOf(response: Response): Promise<ApiProblem> {
  const text = await response.text();
  try {
    const p = JSON.parse(text) as Partial<ApiProblem>;
    if (typeof p.title === 'string') return new ApiProblem(response.status, p.title, p.detail ?? '', p.code ?? '', p.errors ?? []);
  } catch {
    // Not problem+json (a proxy's page, say): fall through to the status line.
  }
  return new ApiProblem(response.status, `${response.status} ${response.statusText}`, 'The service answered with an error.', 'http');
}

/** The text of a Prometheus scrape (not JSON), with the key. */
export async function metricsText(): Promise<string> {
  const key = apiKey.get();
  const response = await fetch('/metrics', { headers: key ? { authorization: `Bearer ${key}` } : {} });
  if (!response.ok) throw await problemOf(response);
  return response.text();
}

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from '../helpers/databases.js';
import { orderInput } from '../helpers/factories.js';
import { startTestService, type TestService } from '../helpers/service.js';

const REQUESTS = 2500;

/** A small seeded generator, so a failing case can be replayed from its seed. */
function generator(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const strings = ['', ' ', 'a', '\u0000', '\ud800', '😀'.repeat(100), '<script>', "'; DROP TABLE orders; --", 'x'.repeat(5000), '%00', '../..', '1e309', 'null', '\n\r\t'];
  const numbers = [0, -1, 1, 1.5, 2 ** 31, 2 ** 53, -(2 ** 63), 1e308, Number.MIN_VALUE, 10_000, 10_001];
  const value = (depth: number): unknown => {
    switch (int(depth > 3 ? 5 : 8)) {
      case 0: return pick(strings);
      case 1: return pick(numbers);
      case 2: return pick([true, false, null]);
      case 3: return int(1000);
      case 4: return String.fromCharCode(...Array.from({ length: int(20) }, () => int(0xffff)));
      case 5: return Array.from({ length: int(4) }, () => value(depth + 1));
      default: return Object.fromEntries(Array.from({ length: int(5) }, () => [pick(['product_id', 'quantity', 'client_name', 'client_email', 'status', 'name', 'price', 'stock', '__proto__', 'constructor', pick(strings)]), value(depth + 1)]));
    }
  };
  const mutated = () => {
    const body: Record<string, unknown> = { ...orderInput() };
    const field = pick(['product_id', 'quantity', 'client_name', 'client_email', 'extra']);
    if (next() < 0.2) delete body[field];
    else body[field] = value(2);
    return body;
  };
  const idSegment = () => pick(['1', '0', '-5', 'abc', '1.5', '99999999999999999999999', '%00', '%F0%9F%98%80', '1e3', ' 1', 'null', String(int(100))]);
  return { next, int, pick, value, mutated, idSegment, strings };
}

/** Percent-encodes a value; one that cannot be (a lone surrogate) becomes a broken escape, a case worth sending too. */
function queryValue(value: unknown): string {
  try {
    return encodeURIComponent(String(value));
  } catch {
    return '%E0%A4%A';
  }
}

for (const { kind, skip } of databaseKinds()) {
  describe.skipIf(skip)(`fuzzing the API on ${kind}`, () => {
    let service: TestService;
    beforeAll(async () => {
      service = await startTestService({ database: kind });
    });
    afterAll(() => service?.close());

    it(`when ${REQUESTS} generated malformed requests arrive, then none is answered with a 5xx and errors are problem+json`, async () => {
      const g = generator(kind === 'pglite' ? 1 : 2);
      const seen = new Map<number, number>();
      for (let i = 0; i < REQUESTS; i++) {
        const method = g.pick(['GET', 'POST', 'PATCH', 'PUT', 'DELETE'] as const);
        const path = g.pick([
          '/orders/', '/orders', `/orders/${g.idSegment()}`, `/orders/${g.idSegment()}/history`,
          '/products', `/products/${g.idSegment()}`, `/orders?${g.pick(['status', 'limit', 'cursor', 'product_id', 'client_email'])}=${queryValue(g.value(3))}`,
        ]);
        const bodyKind = g.int(4);
        const payload =
          bodyKind === 0 ? JSON.stringify(g.mutated())
          : bodyKind === 1 ? JSON.stringify(g.value(0))
          : bodyKind === 2 ? JSON.stringify(g.mutated()).slice(0, g.int(60))
          : Buffer.from(Array.from({ length: g.int(200) }, () => g.int(256)));
        const headers: Record<string, string> = {
          'content-type': g.pick(['application/json', 'application/json; charset=utf-8', 'text/plain', 'application/problem+json', 'application/json; charset=latin1', '']),
        };
        if (g.next() < 0.2) headers['idempotency-key'] = g.pick(['k', 'same-key', 'x'.repeat(300), ' ', 'é']);
        const hasBody = method !== 'GET' && method !== 'DELETE';
        const response = await service.app.inject({ method, url: path, headers, ...(hasBody ? { payload } : {}) });
        seen.set(response.statusCode, (seen.get(response.statusCode) ?? 0) + 1);
        const where = `#${i} ${method} ${path} ${String(payload).slice(0, 120)} → ${response.statusCode} ${response.body.slice(0, 200)}`;
        expect(response.statusCode, where).toBeLessThan(500);
        if (response.statusCode >= 400) {
          expect(response.headers['content-type'], where).toMatch(/^application\/problem\+json/);
          expect(response.json(), where).toMatchObject({ status: response.statusCode, code: expect.any(String) });
        }
      }
      expect(seen.get(422)).toBeGreaterThan(REQUESTS / 10);
      const healthy = await service.app.inject({ method: 'POST', url: '/orders/', payload: orderInput() });
      expect(healthy.statusCode).toBe(201);
    });
  });
}

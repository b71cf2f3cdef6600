import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Backoff, jittered } from '../src/backoff.js';

const delays = (backoff: Backoff, n: number) => Array.from({ length: n }, () => backoff.next());

describe('back-off between attempts', () => {
  it('when attempts fail, then the delays start at the minimum, double per attempt and stay at the maximum', () => {
    expect(delays(new Backoff({ minMs: 100, maxMs: 5000 }), 9)).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    expect(delays(new Backoff({ minMs: 50, maxMs: 500 }), 6)).toEqual([50, 100, 200, 400, 500, 500]);
  });

  it('when the minimum is above the maximum, then every delay is the maximum', () => {
    expect(delays(new Backoff({ minMs: 400, maxMs: 100 }), 3)).toEqual([100, 100, 100]);
  });

  it('when it is reset, then the next delay is the minimum again and no failure is counted', () => {
    const backoff = new Backoff({ minMs: 100, maxMs: 5000 });
    delays(backoff, 4);
    expect(backoff.failures).toBe(4);
    backoff.reset();
    expect(backoff.failures).toBe(0);
    expect(delays(backoff, 2)).toEqual([100, 200]);
    expect(backoff.failures).toBe(2);
  });

  it('when attempts fail for a very long time, then the delay stays at the maximum, a finite number', () => {
    const backoff = new Backoff({ minMs: 100, maxMs: 60_000 });
    expect(delays(backoff, 2000).at(-1)).toBe(60_000);
  });

  it('when the outbox relay backs off (100 ms first), then its delays are those it waited before it used this helper', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 51_200 }), fc.integer({ min: 1, max: 40 }), (maxBackoffMs, attempts) => {
        const before = Array.from({ length: attempts }, (_, i) => Math.min(maxBackoffMs, 50 * 2 ** Math.min(i + 1, 10)));
        expect(delays(new Backoff({ minMs: 100, maxMs: maxBackoffMs }), attempts)).toEqual(before);
      }),
    );
  });

  it('when any sequence of failures and resets runs, then each delay is within [min, max], and they never shrink until a reset', () => {
    const limits = fc
      .tuple(fc.integer({ min: 1, max: 60_000 }), fc.integer({ min: 1, max: 600_000 }))
      .map(([a, b]) => ({ minMs: Math.min(a, b), maxMs: Math.max(a, b) }));
    fc.assert(
      fc.property(limits, fc.array(fc.constantFrom('fail', 'reset'), { maxLength: 100 }), (options, steps) => {
        const backoff = new Backoff(options);
        let previous = 0;
        for (const step of steps) {
          if (step === 'reset') {
            backoff.reset();
            previous = 0;
            continue;
          }
          const delay = backoff.next();
          expect(delay).toBeGreaterThanOrEqual(options.minMs);
          expect(delay).toBeLessThanOrEqual(options.maxMs);
          expect(delay).toBeGreaterThanOrEqual(previous);
          previous = delay;
        }
      }),
    );
  });
});

describe('jitter', () => {
  it('when a delay is jittered, then it falls in its upper half', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 600_000 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (delay, random) => {
        const value = jittered(delay, () => random);
        expect(value).toBeGreaterThanOrEqual(delay / 2);
        expect(value).toBeLessThanOrEqual(delay);
      }),
    );
    expect(jittered(1000, () => 0)).toBe(500);
    expect(jittered(1000, () => 0.5)).toBe(750);
  });

  it('when no source is given, then Math.random spreads the delays', () => {
    const values = new Set(Array.from({ length: 20 }, () => jittered(1000)));
    expect(values.size).toBeGreaterThan(1);
    for (const value of values) expect(value).toBeGreaterThanOrEqual(500);
  });
});
